/**
 * Invariant 6 over HTTP: bad input gets a clear error in OpenAI's error JSON (never HTML, never a stack
 * trace) and changes nothing: no usage record, no open reservation, no key spend. Invariant 4: a call
 * that failed upstream, or was refused, costs nothing.
 *
 * Requests an OpenAI client can send go through the official `openai` client, and its typed errors
 * are checked; what no client sends (broken JSON, wrong content type, oversized bodies, odd URLs)
 * goes through raw `fetch`.
 *
 * Upstream failures use the simulated upstream's `x-simulate-failure` modes through the real
 * OpenAI-compatible adapter. The gateway never forwards client headers upstream, so the test installs
 * a router as the gateway's upstream that picks the failure mode from the request id the client sent
 * (`x-request-id: fail.<mode>.<n>`, which the gateway forwards); other requests go to the harness's
 * own adapter unchanged. Its stall adapter times out after 500 ms (→ 504); `hang` waits a minute.
 */
import net from "node:net";
import zlib from "node:zlib";
import { expect } from "chai";
import OpenAI from "openai";
import { getAddress } from "viem";
import { generateApiKey } from "../../server/gateway/api-keys/key-material";
import type { ModelOnSale } from "../../server/gateway/marketplace-state";
import { createOpenAICompatibleUpstream } from "../../server/upstream/openai-compatible";
import type { UpstreamAdapter, UpstreamRequest } from "../../server/upstream/types";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { nonce, startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

type Buyer = GatewayHarness["market"]["buyers"][number];
interface ErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

const ERROR_FIELDS = ["code", "message", "param", "type"];
const HTML_OR_STACK = /<html|<!doctype|<body|\n\s+at \S+ \(|at [\w.<>]+ \([^)]*\.(?:js|ts):\d+/i;
const ask = (content = "Say hello.") => [{ role: "user" as const, content }];

/** The body is `{ error: { message, type, param, code } }` and nothing else. */
function expectErrorShape(body: unknown): ErrorBody {
  expect(body, "error body").to.be.an("object");
  expect(Object.keys(body as object), "top-level keys").to.deep.equal(["error"]);
  const error = (body as { error: unknown }).error as ErrorBody;
  expect(error).to.be.an("object");
  expect(Object.keys(error).sort(), "error keys").to.deep.equal(ERROR_FIELDS);
  expect(error.message).to.be.a("string").and.not.equal("");
  expect(error.message).not.to.match(HTML_OR_STACK);
  expect(error.type).to.be.a("string").and.not.equal("");
  expect(error.param === null || typeof error.param === "string", "param is a string or null").to.equal(true);
  expect(error.code === null || typeof error.code === "string", "code is a string or null").to.equal(true);
  return error;
}

/** A raw HTTP error response: status, JSON content type, request id, OpenAI error body. */
async function expectHttpError(
  response: Response,
  status: number,
  code: string | null,
  expected: { type?: string; param?: string | null } = {},
): Promise<{ error: ErrorBody; text: string }> {
  const text = await response.text();
  expect(response.status, text).to.equal(status);
  expect(response.headers.get("content-type")).to.match(/^application\/json\b/);
  expect(response.headers.get("x-request-id"), "x-request-id").to.be.a("string").and.not.equal("");
  expect(text).not.to.match(HTML_OR_STACK);
  const error = expectErrorShape(JSON.parse(text));
  expect(error.code).to.equal(code);
  if (expected.type !== undefined) expect(error.type).to.equal(expected.type);
  if (expected.param !== undefined) expect(error.param).to.equal(expected.param);
  return { error, text };
}

/** Awaits a call that must fail with the given typed client error, and checks what the client parsed. */
async function expectClientError<C extends abstract new (...args: never[]) => InstanceType<typeof OpenAI.APIError>>(
  call: Promise<unknown>,
  errorClass: C,
  expected: { status: number; code: string; type: string; param?: string | null | RegExp },
): Promise<InstanceType<C>> {
  let caught: unknown;
  try {
    await call;
  } catch (error) {
    caught = error;
  }
  expect(caught, "the call should have failed").to.be.instanceOf(errorClass);
  const error = caught as InstanceType<C>;
  expect(error.status, error.message).to.equal(expected.status);
  expect(error.code).to.equal(expected.code);
  expect(error.type).to.equal(expected.type);
  if (expected.param instanceof RegExp) expect(error.param).to.match(expected.param);
  else if (expected.param !== undefined) expect(error.param).to.equal(expected.param);
  expect(error.headers?.get("content-type")).to.match(/^application\/json\b/);
  expect(error.requestID, "x-request-id").to.be.a("string").and.not.equal("");
  expectErrorShape({ error: error.error });
  return error;
}

interface LedgerView {
  records: number;
  nextSequence: bigint;
  spent: Record<string, string>;
}

/** What a refused call must not change: usage records, sequence, every key's spend. */
function ledgerView(h: GatewayHarness): LedgerView {
  const spent: Record<string, string> = {};
  for (const buyer of h.market.buyers) {
    for (const key of h.gateway.ctx.store.listApiKeys(getAddress(buyer.address))) spent[key.id] = key.spent.toString();
  }
  return { records: h.gateway.ctx.store.recordCount(), nextSequence: h.gateway.ctx.store.nextSequence(), spent };
}

function expectUnchanged(h: GatewayHarness, before: LedgerView): void {
  expect(h.gateway.ctx.ledger.openReservations(), "open reservations").to.equal(0);
  const after = ledgerView(h);
  expect(after.records, "usage records").to.equal(before.records);
  expect(after.nextSequence, "next sequence").to.equal(before.nextSequence);
  expect(after.spent, "key spend").to.deep.equal(before.spent);
}

function post(h: GatewayHarness, path: string, body: BodyInit | undefined, headers: Record<string, string>): Promise<Response> {
  return fetch(`${h.url}${path}`, { method: "POST", headers, body });
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const jsonHeaders = (key: string) => ({ "content-type": "application/json", ...bearer(key) });

async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

/**
 * Routes `fail.<mode>.*` request ids to a real adapter that asks the simulated upstream for that
 * failure (`down` goes to a closed port); everything else to the gateway's own adapter.
 */
async function installFailureRouter(h: GatewayHarness): Promise<() => Promise<void>> {
  const ctx = h.gateway.ctx;
  const original = ctx.upstreamFor.bind(ctx);
  const downUrl = await closedPortUrl();
  const adapters = new Map<string, UpstreamAdapter>();
  const adapterFor = (mode: string): UpstreamAdapter => {
    let adapter = adapters.get(mode);
    if (!adapter) {
      adapter =
        mode === "down"
          ? createOpenAICompatibleUpstream({ name: "sim", baseUrl: downUrl, timeoutMs: 5_000 })
          : mode === "hang" // a stall the gateway waits out for a minute: only the client ends it
            ? createOpenAICompatibleUpstream({ name: "sim", baseUrl: h.sim.url, timeoutMs: 60_000, extraHeaders: { "x-simulate-failure": "stall" } })
            : createOpenAICompatibleUpstream({ name: "sim", baseUrl: h.sim.url, timeoutMs: 500, extraHeaders: { "x-simulate-failure": mode } });
      adapters.set(mode, adapter);
    }
    return adapter;
  };
  ctx.upstreamFor = (model: ModelOnSale): UpstreamAdapter => {
    const fallback = original(model);
    return {
      name: fallback.name,
      send(request: UpstreamRequest) {
        const mode = /^fail\.([a-z0-9]+)\./.exec(request.requestId)?.[1];
        return mode ? adapterFor(mode).send(request) : fallback.send(request);
      },
      close: () => Promise.resolve(),
    };
  };
  return async () => {
    ctx.upstreamFor = original;
    await Promise.all([...adapters.values()].map((adapter) => adapter.close()));
  };
}

/** Waits for a condition the gateway reaches asynchronously; fails after 10 s rather than hang. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition(), what).to.equal(true);
}

let failureCounter = 0;
const failWith = (mode: string) => ({ headers: { "x-request-id": `fail.${mode}.${++failureCounter}` } });

describe("gateway errors: OpenAI error JSON, and a refused or failed call changes nothing", function () {
  let h: GatewayHarness;
  let buyer: Buyer;
  let key: string;
  let client: OpenAI;
  let uninstallRouter: () => Promise<void>;

  before(async () => {
    // A short simulated context window, so the upstream itself rejects a long prompt with a 4xx.
    h = await startGatewayHarness({ simulator: { maxContextChars: 20_000 } });
    buyer = h.market.buyers[0];
    await h.deposit(buyer, USD(100));
    ({ key } = await h.createKey(buyer));
    client = h.openai(key);
    uninstallRouter = await installFailureRouter(h);
    // The happy path works, so every refusal below is about the input.
    const ok = await client.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 16 });
    expect(ok.choices[0].message.content).to.be.a("string");
  });

  after(async () => {
    await uninstallRouter?.();
    await h?.close();
  });

  describe("bodies a client cannot send (raw fetch)", () => {
    it("malformed JSON → 400 invalid_json", async () => {
      const before = ledgerView(h);
      for (const body of ['{"model": "small-model", "messages": [', "{'model': 1}", "nul", '{"a":1}}']) {
        await expectHttpError(await post(h, "/v1/chat/completions", body, jsonHeaders(key)), 400, "invalid_json", { type: "invalid_request_error", param: null });
      }
      await expectHttpError(await post(h, "/v1/embeddings", "[1,", jsonHeaders(key)), 400, "invalid_json");
      await expectHttpError(await post(h, "/v1/keys", "{", { "content-type": "application/json" }), 400, "invalid_json");
      expectUnchanged(h, before);
    });

    it("valid JSON that is not an object → 400 invalid_body", async () => {
      const before = ledgerView(h);
      for (const body of ["[]", "42", '"small-model"', "null", "true"]) {
        await expectHttpError(await post(h, "/v1/chat/completions", body, jsonHeaders(key)), 400, "invalid_body", { param: null });
      }
      expectUnchanged(h, before);
    });

    it("a body that is not JSON by content type → 415, for every JSON endpoint", async () => {
      const before = ledgerView(h);
      const valid = JSON.stringify({ model: "small-model", messages: ask() });
      for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"]) {
        await expectHttpError(await post(h, "/v1/chat/completions", valid, { ...bearer(key), "content-type": type }), 415, "unsupported_media_type", { type: "invalid_request_error" });
      }
      await expectHttpError(await post(h, "/v1/chat/completions", undefined, bearer(key)), 415, "unsupported_media_type");
      for (const path of ["/v1/embeddings", "/v1/keys", "/v1/keys/list", "/v1/keys/revoke"]) {
        await expectHttpError(await post(h, path, "{}", { ...bearer(key), "content-type": "text/plain" }), 415, "unsupported_media_type");
      }
      // JSON in another charset.
      await expectHttpError(await post(h, "/v1/chat/completions", valid, { ...bearer(key), "content-type": "application/json; charset=latin1" }), 415, "unsupported_encoding");
      expectUnchanged(h, before);
    });

    it("a body that does not decompress, or a path that does not decode → 400, not a 500", async () => {
      const before = ledgerView(h);
      for (const encoding of ["gzip", "deflate", "br"]) {
        await expectHttpError(await post(h, "/v1/chat/completions", "this is not compressed", { ...jsonHeaders(key), "content-encoding": encoding }), 400, "invalid_request", {
          type: "invalid_request_error",
        });
      }
      await expectHttpError(await post(h, "/v1/chat/completions", "x", { ...jsonHeaders(key), "content-encoding": "snappy" }), 415, "unsupported_encoding");
      // A well-formed compressed body is read (and then refused for what it says).
      await expectHttpError(await post(h, "/v1/chat/completions", zlib.gzipSync('{"model": 7}'), { ...jsonHeaders(key), "content-encoding": "gzip" }), 400, "invalid_value", {
        param: "model",
      });
      await expectHttpError(await fetch(`${h.url}/v1/models/%E0%A4%A`), 400, "invalid_request");
      expectUnchanged(h, before);
    });

    it("unknown URLs and methods → 404 unknown_url in JSON", async () => {
      const cases: [string, string][] = [
        ["GET", "/"],
        ["GET", "/v2/chat/completions"],
        ["GET", "/v1/chat/completions"],
        ["POST", "/v1/models"],
        ["DELETE", "/v1/keys"],
        ["PUT", "/v1/embeddings"],
        ["GET", "/v1/completions"],
      ];
      for (const [method, path] of cases) {
        const { error } = await expectHttpError(await fetch(`${h.url}${path}`, { method, headers: bearer(key) }), 404, "unknown_url", { type: "invalid_request_error" });
        expect(error.message).to.include(path);
      }
    });

    it("GET /v1/usage with bad query parameters → 400 naming the parameter", async () => {
      const cases: [string, string][] = [
        ["limit=0", "limit"],
        ["limit=10001", "limit"],
        ["limit=abc", "limit"],
        ["limit=1&limit=2", "limit"],
        ["format=xml", "format"],
        ["after=-1", "after"],
        ["after=1e3", "after"],
        ["from=-5", "from"],
        ["to=1.5", "to"],
        [`tag=${"t".repeat(65)}`, "tag"],
        ["key_id=a&key_id=b", "key_id"],
      ];
      for (const [query, param] of cases) {
        await expectHttpError(await fetch(`${h.url}/v1/usage?${query}`, { headers: bearer(key) }), 400, "invalid_value", { type: "invalid_request_error", param });
      }
      // The same endpoint answers a good query.
      const ok = await fetch(`${h.url}/v1/usage?limit=5&format=json`, { headers: bearer(key) });
      expect(ok.status).to.equal(200);
    });
  });

  describe("through the openai client", () => {
    it("unknown model → 404 model_not_found, param model (chat, embeddings, models)", async () => {
      const before = ledgerView(h);
      await expectClientError(client.chat.completions.create({ model: "no-such-model", messages: ask() }), OpenAI.NotFoundError, {
        status: 404,
        code: "model_not_found",
        type: "not_found_error",
        param: "model",
      });
      // An embeddings model is not a chat model, and the other way round.
      await expectClientError(client.chat.completions.create({ model: "embed-model", messages: ask() }), OpenAI.NotFoundError, {
        status: 404,
        code: "model_not_found",
        type: "not_found_error",
        param: "model",
      });
      await expectClientError(client.embeddings.create({ model: "small-model", input: "hi" }), OpenAI.NotFoundError, {
        status: 404,
        code: "model_not_found",
        type: "not_found_error",
        param: "model",
      });
      await expectClientError(client.models.retrieve("no-such-model"), OpenAI.NotFoundError, { status: 404, code: "model_not_found", type: "not_found_error", param: "model" });
      expectUnchanged(h, before);
    });

    it("missing or invalid fields → 400 with the param named", async () => {
      const before = ledgerView(h);
      const cases: [Record<string, unknown>, string][] = [
        [{ messages: ask() }, "model"],
        [{ model: 42, messages: ask() }, "model"],
        [{ model: "", messages: ask() }, "model"],
        [{ model: "small-model" }, "messages"],
        [{ model: "small-model", messages: [] }, "messages"],
        [{ model: "small-model", messages: "hello" }, "messages"],
        [{ model: "small-model", messages: [{ content: "no role" }] }, "messages.0.role"],
        [{ model: "small-model", messages: ask(), max_tokens: -1 }, "max_tokens"],
        [{ model: "small-model", messages: ask(), max_tokens: 0 }, "max_tokens"],
        [{ model: "small-model", messages: ask(), max_tokens: 2.5 }, "max_tokens"],
        [{ model: "small-model", messages: ask(), max_tokens: "16" }, "max_tokens"],
        [{ model: "small-model", messages: ask(), stream: "yes" }, "stream"],
        [{ model: "small-model", messages: ask(), n: 0 }, "n"],
        [{ model: "small-model", messages: ask(), n: 9 }, "n"],
        [{ model: "small-model", messages: ask(), tools: {} }, "tools"],
      ];
      for (const [body, param] of cases) {
        await expectClientError(client.chat.completions.create(body as never), OpenAI.BadRequestError, { status: 400, code: "invalid_value", type: "invalid_request_error", param });
      }
      // The param names the field, or the element inside it that is wrong.
      const embeddingCases: [Record<string, unknown>, RegExp][] = [
        [{ model: "embed-model" }, /^input$/],
        [{ model: "embed-model", input: "" }, /^input(\.|$)/],
        [{ model: "embed-model", input: [] }, /^input(\.|$)/],
        [{ model: "embed-model", input: [-1, 2] }, /^input(\.|$)/],
        [{ model: "embed-model", input: ["ok", 3] }, /^input(\.|$)/],
        [{ model: "embed-model", input: { text: "hi" } }, /^input(\.|$)/],
      ];
      for (const [body, param] of embeddingCases) {
        await expectClientError(client.embeddings.create(body as never), OpenAI.BadRequestError, { status: 400, code: "invalid_value", type: "invalid_request_error", param });
      }
      expectUnchanged(h, before);
    });

    it("max_tokens above the model's limit → 400 max_tokens_too_large", async () => {
      const before = ledgerView(h);
      const error = await expectClientError(client.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 513 }), OpenAI.BadRequestError, {
        status: 400,
        code: "max_tokens_too_large",
        type: "invalid_request_error",
        param: "max_tokens",
      });
      expect(error.message).to.include("513").and.include("512");
      await expectClientError(client.chat.completions.create({ model: "large-model", messages: ask(), max_completion_tokens: 1025 }), OpenAI.BadRequestError, {
        status: 400,
        code: "max_tokens_too_large",
        type: "invalid_request_error",
        param: "max_completion_tokens",
      });
      expectUnchanged(h, before);
      // At the limit it is served.
      const ok = await client.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 512 });
      expect(ok.usage!.completion_tokens).to.be.at.most(512);
    });

    it("a bad, malformed, unknown, revoked or expired key → 401 with byte-identical bodies", async () => {
      const owner = h.market.buyers[1];
      const revoked = await h.createKey(owner);
      const revokeMessage = { buyer: owner.address, keyId: revoked.id, issuedAt: Math.floor(Date.now() / 1000).toString(), nonce: nonce() };
      const revokeResponse = await post(h, "/v1/keys/revoke", JSON.stringify({ message: revokeMessage, signature: await h.signKeyMessage(owner, "RevokeApiKey", revokeMessage) }), {
        "content-type": "application/json",
      });
      expect(revokeResponse.status).to.equal(200);

      const expired = generateApiKey();
      const now = Math.floor(Date.now() / 1000);
      h.gateway.ctx.store.insertApiKey({
        id: expired.id,
        buyer: getAddress(owner.address),
        keyHash: expired.keyHash,
        label: "expired",
        spendCap: null,
        models: null,
        tags: [],
        expiresAt: now - 60,
        createdAt: now - 120,
      });
      const unknown = generateApiKey().key;

      const presented: Record<string, Record<string, string>> = {
        "no header": {},
        "empty bearer": { authorization: "Bearer " },
        "basic auth": { authorization: `Basic ${Buffer.from(`user:${key}`).toString("base64")}` },
        "other scheme": { authorization: `Token ${key}` },
        "garbage": { authorization: "Bearer not-a-key" },
        "key with junk": { authorization: `Bearer ${key}x` },
        "truncated key": { authorization: `Bearer ${key.slice(0, -1)}` },
        "unknown key": bearer(unknown),
        "revoked key": bearer(revoked.key),
        "expired key": bearer(expired.key),
      };
      const before = ledgerView(h);
      const texts = new Set<string>();
      const body = JSON.stringify({ model: "small-model", messages: ask(), max_tokens: 8 });
      for (const [label, headers] of Object.entries(presented)) {
        const response = await post(h, "/v1/chat/completions", body, { "content-type": "application/json", ...headers });
        const { text } = await expectHttpError(response, 401, "invalid_api_key", { type: "authentication_error", param: null });
        texts.add(text);
        expect(texts.size, `${label} answers like the others`).to.equal(1);
        for (const path of ["/v1/usage", "/v1/balance"]) {
          texts.add((await expectHttpError(await fetch(`${h.url}${path}`, { headers }), 401, "invalid_api_key")).text);
        }
        expect(texts.size, `${label} on usage and balance`).to.equal(1);
      }
      for (const bad of [unknown, revoked.key, expired.key, "sk-not-ours"]) {
        await expectClientError(h.openai(bad).chat.completions.create({ model: "small-model", messages: ask() }), OpenAI.AuthenticationError, {
          status: 401,
          code: "invalid_api_key",
          type: "authentication_error",
          param: null,
        });
      }
      expectUnchanged(h, before);
    });

    it("a key limited to other models → 403 model_not_allowed", async () => {
      const limited = await h.createKey(buyer, { models: ["large-model", "embed-model"] });
      const limitedClient = h.openai(limited.key);
      const before = ledgerView(h);
      const error = await expectClientError(limitedClient.chat.completions.create({ model: "small-model", messages: ask() }), OpenAI.PermissionDeniedError, {
        status: 403,
        code: "model_not_allowed",
        type: "permission_error",
        param: "model",
      });
      expect(error.message).to.include("small-model").and.include(limited.id);
      expectUnchanged(h, before);
      const ok = await limitedClient.chat.completions.create({ model: "large-model", messages: ask(), max_tokens: 8 });
      expect(ok.model).to.equal("large-model");
    });

    it("over a key's spend cap → 402 key_spend_cap_reached, x-should-retry: false, nothing spent", async () => {
      const capped = await h.createKey(buyer, { spendCap: 100n }); // 0.0001 tUSD
      const cappedClient = h.openai(capped.key);
      const before = ledgerView(h);
      const error = await expectClientError(cappedClient.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 512 }), OpenAI.APIError, {
        status: 402,
        code: "key_spend_cap_reached",
        type: "insufficient_funds",
      });
      expect(error.headers!.get("x-should-retry")).to.equal("false");
      expect(error.message).to.include(capped.id).and.include("0.0001 tUSD");
      expectUnchanged(h, before);
      // A call that fits under the cap is served and charged within it.
      await cappedClient.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 8 });
      const spent = h.gateway.ctx.store.listApiKeys(getAddress(buyer.address)).find((k) => k.id === capped.id)!.spent;
      expect(spent > 0n && spent <= 100n, `spent ${spent}`).to.equal(true);
    });

    it("insufficient funds → 402 insufficient_funds naming the amounts, x-should-retry: false", async () => {
      const poor = h.market.buyers[2];
      await h.deposit(poor, 100n); // 0.0001 tUSD
      const { key: poorKey } = await h.createKey(poor);
      const before = ledgerView(h);
      const error = await expectClientError(h.openai(poorKey).chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 512 }), OpenAI.APIError, {
        status: 402,
        code: "insufficient_funds",
        type: "insufficient_funds",
        param: null,
      });
      expect(error.headers!.get("x-should-retry")).to.equal("false");
      const cost = /may cost up to (\d+(?:\.\d+)?) tUSD/.exec(error.message);
      expect(cost, error.message).to.not.equal(null);
      // 512 output tokens at 0.60 tUSD per million alone are 0.0003072 tUSD.
      expect(Number(cost![1])).to.be.greaterThan(0.0003072);
      expect(error.message).to.include("512 output tokens").and.include("you can spend 0.0001 tUSD").and.include("balance 0.0001 tUSD");
      expectUnchanged(h, before);
    });

    it("upstream down, 500, 503, 429 or reset → 502 upstream_unavailable, nothing charged", async () => {
      for (const mode of ["down", "500", "503", "429", "reset"]) {
        const before = ledgerView(h);
        const error = await expectClientError(client.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 16 }, failWith(mode)), OpenAI.InternalServerError, {
          status: 502,
          code: "upstream_unavailable",
          type: "upstream_error",
          param: null,
        });
        expect(error.message, mode).to.include("Nothing was charged");
        expect(error.requestID).to.match(new RegExp(`^fail\\.${mode}\\.`));
        expectUnchanged(h, before);
      }
      const before = ledgerView(h);
      await expectClientError(client.embeddings.create({ model: "embed-model", input: "hello" }, failWith("500")), OpenAI.InternalServerError, {
        status: 502,
        code: "upstream_unavailable",
        type: "upstream_error",
      });
      expectUnchanged(h, before);
    });

    it("upstream cut off mid-body (non-streamed) → 502, nothing charged", async () => {
      const before = ledgerView(h);
      await expectClientError(client.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 64 }, failWith("midstream")), OpenAI.InternalServerError, {
        status: 502,
        code: "upstream_unavailable",
        type: "upstream_error",
      });
      expectUnchanged(h, before);
    });

    it("upstream stall → 504 upstream_timeout with retry-after, nothing charged", async () => {
      const before = ledgerView(h);
      const error = await expectClientError(client.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 16 }, failWith("stall")), OpenAI.InternalServerError, {
        status: 504,
        code: "upstream_timeout",
        type: "upstream_error",
      });
      expect(Number(error.headers!.get("retry-after"))).to.be.greaterThan(0);
      expectUnchanged(h, before);
    });

    it("a client that gives up on a stalled upstream is not charged, and its reservation is released", async () => {
      const before = ledgerView(h);
      const controller = new AbortController();
      const call = client.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 16 }, { ...failWith("hang"), signal: controller.signal });
      // Abort once the gateway holds the call's reservation, i.e. the call is waiting on the upstream.
      await until(() => h.gateway.ctx.ledger.openReservations() === 1, "the reservation is taken");
      controller.abort();
      let caught: unknown;
      try {
        await call;
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(OpenAI.APIUserAbortError);
      await until(() => h.gateway.ctx.ledger.openReservations() === 0, "the reservation is released");
      expectUnchanged(h, before);
    });

    it("an upstream 4xx passes its status through, nothing charged", async () => {
      const before = ledgerView(h);
      const long = "The quick brown fox jumps over the lazy dog. ".repeat(600); // > 20 000 characters
      const error = await expectClientError(client.chat.completions.create({ model: "small-model", messages: ask(long), max_tokens: 16 }), OpenAI.BadRequestError, {
        status: 400,
        code: "upstream_rejected",
        type: "invalid_request_error",
      });
      expect(error.message).to.include("maximum context length");
      expectUnchanged(h, before);
    });

    it("a stream the upstream cuts mid-way ends with an error event and leaves no record", async () => {
      const before = ledgerView(h);
      const stream = await client.chat.completions.create(
        { model: "small-model", messages: ask("Tell me a long story."), max_tokens: 200, stream: true },
        failWith("midstream"),
      );
      let chunks = 0;
      let caught: unknown;
      try {
        for await (const chunk of stream) {
          expect(chunk.object).to.equal("chat.completion.chunk");
          chunks++;
        }
      } catch (error) {
        caught = error;
      }
      expect(chunks, "chunks before the cut").to.be.greaterThan(0);
      expect(caught, "the stream must end in an error").to.be.instanceOf(OpenAI.APIError);
      const error = caught as InstanceType<typeof OpenAI.APIError>;
      expect(error.code).to.equal("upstream_unavailable");
      expect(error.type).to.equal("upstream_error");
      expectErrorShape({ error: error.error });
      expectUnchanged(h, before);

      // The same on the wire: the last event is the error object, with no receipt and no [DONE].
      const response = await post(h, "/v1/chat/completions", JSON.stringify({ model: "small-model", messages: ask("Tell me a long story."), max_tokens: 200, stream: true }), {
        ...jsonHeaders(key),
        "x-request-id": `fail.midstream.raw${++failureCounter}`,
      });
      expect(response.status).to.equal(200);
      const text = await response.text();
      const events = text
        .split("\n\n")
        .filter((event) => event.startsWith("data: "))
        .map((event) => event.slice(6));
      expect(events.length).to.be.greaterThan(1);
      expect(events).not.to.include("[DONE]");
      expect(text).not.to.include("tollgate_receipt");
      const last = expectErrorShape(JSON.parse(events[events.length - 1]));
      expect(last.code).to.equal("upstream_unavailable");
      expectUnchanged(h, before);
    });
  });

  describe("limits: a small body limit and 2 requests per minute", () => {
    let limited: GatewayHarness;
    before(async () => {
      limited = await startGatewayHarness({ config: { limits: { maxBodyBytes: 4096, requestsPerMinute: 2 } } });
      await limited.deposit(limited.market.buyers[0], USD(10));
    });
    after(async () => limited?.close());

    it("an oversized body → 413 request_too_large, before authentication, nothing recorded", async () => {
      const { key: limitedKey } = await limited.createKey(limited.market.buyers[0]);
      const before = ledgerView(limited);
      const big = JSON.stringify({ model: "small-model", messages: ask("x".repeat(5000)) });
      const { error } = await expectHttpError(await post(limited, "/v1/chat/completions", big, jsonHeaders(limitedKey)), 413, "request_too_large", {
        type: "invalid_request_error",
        param: null,
      });
      expect(error.message).to.include("4096");
      await expectHttpError(await post(limited, "/v1/chat/completions", big, { "content-type": "application/json" }), 413, "request_too_large");
      await expectHttpError(await post(limited, "/v1/embeddings", JSON.stringify({ model: "embed-model", input: "y".repeat(5000) }), jsonHeaders(limitedKey)), 413, "request_too_large");
      await expectHttpError(await post(limited, "/v1/keys", JSON.stringify({ message: { label: "z".repeat(5000) } }), { "content-type": "application/json" }), 413, "request_too_large");
      // Through the client too: a plain APIError with the status.
      await expectClientError(limited.openai(limitedKey).chat.completions.create({ model: "small-model", messages: ask("x".repeat(5000)) }), OpenAI.APIError, {
        status: 413,
        code: "request_too_large",
        type: "invalid_request_error",
      });
      expectUnchanged(limited, before);
    });

    it("rate limited → 429 rate_limit_exceeded with retry-after, nothing recorded", async () => {
      const { key: limitedKey, id } = await limited.createKey(limited.market.buyers[0]);
      const limitedClient = limited.openai(limitedKey);
      for (let i = 0; i < 2; i++) await limitedClient.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 8 });
      const before = ledgerView(limited);
      const error = await expectClientError(limitedClient.chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 8 }), OpenAI.RateLimitError, {
        status: 429,
        code: "rate_limit_exceeded",
        type: "rate_limit_error",
        param: null,
      });
      const retryAfter = Number(error.headers!.get("retry-after"));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1, `retry-after ${retryAfter}`).to.equal(true);
      expect(error.message).to.include(id);
      expectUnchanged(limited, before);
      // The limit is per key: another key of the same buyer is served.
      const other = await limited.createKey(limited.market.buyers[0]);
      await limited.openai(other.key).chat.completions.create({ model: "small-model", messages: ask(), max_tokens: 8 });
      expect(limited.gateway.ctx.store.recordCount()).to.equal(before.records + 1);
    });
  });
});
