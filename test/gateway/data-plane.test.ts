/**
 * The data plane (server/gateway/http/data-plane.ts) serves `POST /v1/chat/completions` and `POST /v1/embeddings`
 * by their exact paths without express; any other spelling of those paths (here: a query string) still goes
 * through express's chain. Both must answer alike, so every case below is sent both ways and compared: status,
 * header names and values (the date, the request id and the salted receipt aside), the error JSON byte for byte,
 * and for served calls the answer, the receipt's counts and its request hash over the exact bytes sent.
 */
import http from "node:http";
import { expect } from "chai";
import { getAddress, keccak256, toBytes } from "viem";
import { parseReceiptHeader } from "../../server/chain/receipt-envelope";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

const ROUTING = {
  levels: ["small", "large"],
  tiers: { "small-model": "small", "large-model": "large" },
  policies: { auto: { candidates: ["large-model", "small-model"], rules: { promptTokens: [{ atLeast: 200, tier: "large" }], tools: "large" } } },
};
const VIA_EXPRESS = "?via=express";
/** Headers whose values differ per call by design. */
const VOLATILE = new Set(["date", "x-request-id", "x-tollgate-receipt"]);

interface Answer {
  status: number;
  /** [name, value] in the order sent, names lowercased. */
  headers: Array<[string, string]>;
  body: string;
}

function send(url: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${url}${path}`, { method: "POST", headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const pairs: Array<[string, string]> = [];
        for (let i = 0; i < response.rawHeaders.length; i += 2) pairs.push([response.rawHeaders[i].toLowerCase(), response.rawHeaders[i + 1]]);
        resolve({ status: response.statusCode!, headers: pairs, body: Buffer.concat(chunks).toString("utf8") });
      });
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

const header = (answer: Answer, name: string) => answer.headers.find(([key]) => key === name)?.[1];
const stable = (answer: Answer) => answer.headers.filter(([name]) => !VOLATILE.has(name)).sort(([a], [b]) => a.localeCompare(b));

describe("gateway: the data plane answers as express does", function () {
  let h: GatewayHarness;
  let key: string;
  let smallOnly: string;
  let unfunded: string;
  const json = (bearer: string, more: Record<string, string> = {}) => ({ "content-type": "application/json", authorization: `Bearer ${bearer}`, ...more });
  const chat = (model = "small-model", more: Record<string, unknown> = {}) => JSON.stringify({ model, messages: [{ role: "user", content: "Hello there." }], max_tokens: 8, ...more });

  /** The same request via the plane and via express; both answers, after checking what must be equal. */
  async function both(path: string, headers: Record<string, string>, body?: string | Buffer): Promise<[Answer, Answer]> {
    const plane = await send(h.url, path, headers, body);
    const viaExpress = await send(h.url, path + VIA_EXPRESS, headers, body);
    expect(plane.status, "status").to.equal(viaExpress.status);
    expect(stable(plane), "headers").to.deep.equal(stable(viaExpress));
    expect(header(plane, "x-request-id"), "a request id").to.match(/^[\w.:-]{1,128}$/);
    return [plane, viaExpress];
  }

  /** An error: the same OpenAI error JSON, byte for byte, and the same headers in the same order. */
  async function sameError(status: number, code: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<void> {
    const [plane, viaExpress] = await both(path, headers, body);
    expect(plane.status).to.equal(status);
    expect(plane.body).to.equal(viaExpress.body);
    expect((JSON.parse(plane.body) as { error: { code: string } }).error.code).to.equal(code);
    const names = (answer: Answer) => answer.headers.map(([name]) => name);
    expect(names(plane), "header order").to.deep.equal(names(viaExpress));
  }

  before(async function () {
    h = await startGatewayHarness({ config: { routing: ROUTING, limits: { requestsPerMinute: 0, maxBodyBytes: 4096 } } });
    await h.deposit(h.market.buyers[0], USD(20));
    ({ key } = await h.createKey(h.market.buyers[0]));
    ({ key: smallOnly } = await h.createKey(h.market.buyers[0], { models: ["small-model"] }));
    ({ key: unfunded } = await h.createKey(h.market.buyers[1]));
  });
  after(async () => h?.close());

  it("serves a chat call alike: the answer, the receipt's counts, its request hash over the exact bytes sent, one record each", async function () {
    const records = h.gateway.ctx.store.recordCount();
    // Odd spacing and a byte-order mark: the hash is over these bytes, not a re-serialisation.
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`{ "model": "small-model",  "messages": [{"role":"user","content":"Hello there."}], "max_tokens": 8 }`)]);
    const [plane, viaExpress] = await both("/v1/chat/completions", json(key), body);
    expect(plane.status).to.equal(200);
    const answer = (a: Answer) => {
      const parsed = JSON.parse(a.body) as { choices: unknown; usage: unknown; model: string };
      return { choices: parsed.choices, usage: parsed.usage, model: parsed.model };
    };
    expect(answer(plane)).to.deep.equal(answer(viaExpress));
    for (const a of [plane, viaExpress]) {
      const envelope = parseReceiptHeader(header(a, "x-tollgate-receipt")!);
      expect(envelope.content.requestHash).to.equal(keccak256(body));
      expect(envelope.content.responseHash).to.equal(keccak256(toBytes(a.body)));
      expect(envelope.receipt.buyer).to.equal(getAddress(h.market.buyers[0].address));
    }
    const [p, e] = [plane, viaExpress].map((a) => parseReceiptHeader(header(a, "x-tollgate-receipt")!).receipt);
    expect([p.inputTokens, p.outputTokens, p.cost]).to.deep.equal([e.inputTokens, e.outputTokens, e.cost]);
    expect(BigInt(e.sequence)).to.equal(BigInt(p.sequence) + 1n);
    expect(h.gateway.ctx.store.recordCount()).to.equal(records + 2);
  });

  it("echoes the client's x-request-id and forwards it upstream, on both paths", async function () {
    // One id per call: a request id names one usage record.
    for (const [path, id] of [["/v1/chat/completions", "client-id.1"], [`/v1/chat/completions${VIA_EXPRESS}`, "client-id.2"]]) {
      const answer = await send(h.url, path, json(key, { "x-request-id": id }), chat());
      expect(answer.status).to.equal(200);
      expect(header(answer, "x-request-id")).to.equal(id);
      expect(h.upstreamRequests.at(-1)!.requestId).to.equal(id);
    }
  });

  it("routes the `auto` alias alike, with the routing headers first", async function () {
    const [plane] = await both("/v1/chat/completions", json(key), chat("auto"));
    expect(plane.status).to.equal(200);
    expect(plane.headers.map(([name]) => name).slice(0, 4)).to.deep.equal(["x-request-id", "x-tollgate-routed-from", "x-tollgate-route-reason", "x-tollgate-route-fallbacks"]);
    expect(header(plane, "x-tollgate-routed-from")).to.equal("auto");
  });

  it("stores the attribution headers and fields alike", async function () {
    const [plane, viaExpress] = await both(
      "/v1/chat/completions",
      json(key, { "x-tollgate-trace-id": "run-7", "x-tollgate-step": "plan", "idempotency-key": "idem-7" }),
      chat("small-model", { user: "u-7", metadata: { team: "a" } }),
    );
    const sequences = [plane, viaExpress].map((a) => BigInt(parseReceiptHeader(header(a, "x-tollgate-receipt")!).receipt.sequence));
    const rows = (await (await fetch(`${h.url}/v1/usage?trace_id=run-7`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
      data: Array<{ sequence: string } & Record<string, unknown>>;
    };
    expect(rows.data.map((row) => BigInt(row.sequence)).sort()).to.deep.equal(sequences.sort());
    for (const row of rows.data) expect(row).to.deep.include({ trace_id: "run-7", step: "plan", user: "u-7", metadata: { team: "a" }, idempotency_key: "idem-7" });
  });

  it("streams alike: the same events, then the receipt chunk and [DONE]", async function () {
    const [plane, viaExpress] = await both("/v1/chat/completions", json(key), chat("small-model", { stream: true }));
    const events = (a: Answer) =>
      a.body
        .split("\n\n")
        .filter(Boolean)
        .map((event) => (event === "data: [DONE]" ? "[DONE]" : Object.keys(JSON.parse(event.slice(6)) as object).join(",")));
    expect(events(plane)).to.deep.equal(events(viaExpress));
    expect(events(plane).at(-1)).to.equal("[DONE]");
    expect(plane.body).to.contain('"tollgate_receipt"');
  });

  it("serves embeddings alike", async function () {
    const [plane, viaExpress] = await both("/v1/embeddings", json(key), JSON.stringify({ model: "embed-model", input: ["a", "b"], metadata: { team: "a" } }));
    expect(plane.status).to.equal(200);
    expect(JSON.parse(plane.body)).to.deep.equal(JSON.parse(viaExpress.body));
  });

  it("refuses alike, in OpenAI's error JSON, byte for byte", async function () {
    const records = h.gateway.ctx.store.recordCount();
    await sameError(400, "invalid_json", "/v1/chat/completions", json(key), "{nope");
    await sameError(400, "invalid_body", "/v1/chat/completions", json(key), "[1,2]");
    await sameError(400, "invalid_value", "/v1/chat/completions", json(key), "");
    await sameError(413, "request_too_large", "/v1/chat/completions", json(key), chat("small-model", { pad: "x".repeat(5000) }));
    await sameError(413, "request_too_large", "/v1/embeddings", { "content-type": "application/json", "transfer-encoding": "chunked" }, "x".repeat(5000));
    await sameError(401, "invalid_api_key", "/v1/chat/completions", { "content-type": "application/json" }, chat());
    await sameError(401, "session_not_api_key", "/v1/chat/completions", json(`tgs_${"a".repeat(43)}`), chat());
    await sameError(404, "model_not_found", "/v1/chat/completions", json(key), chat("no-such-model"));
    await sameError(403, "model_not_allowed", "/v1/chat/completions", json(smallOnly), chat("large-model"));
    await sameError(400, "max_tokens_too_large", "/v1/chat/completions", json(key), chat("small-model", { max_tokens: 100_000 }));
    await sameError(400, "invalid_attribution", "/v1/chat/completions", json(key, { "x-tollgate-step": "alone" }), chat());
    await sameError(402, "insufficient_funds", "/v1/chat/completions", json(unfunded), chat());
    await sameError(400, "invalid_value", "/v1/embeddings", json(key), JSON.stringify({ model: "embed-model", input: "" }));
    // Media types the plane leaves to express: the same 415 whichever path was asked.
    await sameError(415, "unsupported_media_type", "/v1/chat/completions", json(key, { "content-type": "text/plain" }), chat());
    expect(h.gateway.ctx.store.recordCount()).to.equal(records);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
  });

  it("counts its calls in tollgate_http_request_duration_seconds under the route's label", async function () {
    const count = async () => {
      const text = await (await fetch(`${h.url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith('tollgate_http_request_duration_seconds_count{route="embeddings"}'));
      return Number(line?.split(" ")[1] ?? 0);
    };
    const before = await count();
    const answer = await send(h.url, "/v1/embeddings", json(key), JSON.stringify({ model: "embed-model", input: "a" }));
    expect(answer.status).to.equal(200);
    expect(await count()).to.equal(before + 1);
  });
});

describe("gateway: the data plane and express share one rate limit per key", function () {
  let h: GatewayHarness;
  before(async function () {
    h = await startGatewayHarness({ config: { limits: { requestsPerMinute: 3 } } });
    await h.deposit(h.market.buyers[0], USD(5));
  });
  after(async () => h?.close());

  it("the fourth call in a minute gets 429 with retry-after, whichever path the first three took", async function () {
    const { key } = await h.createKey(h.market.buyers[0]);
    const headers = { "content-type": "application/json", authorization: `Bearer ${key}` };
    const body = JSON.stringify({ model: "small-model", messages: [{ role: "user", content: "Hi" }], max_tokens: 4 });
    const statuses = [];
    for (const path of ["/v1/chat/completions", "/v1/chat/completions?via=express", "/v1/chat/completions"]) statuses.push((await send(h.url, path, headers, body)).status);
    expect(statuses).to.deep.equal([200, 200, 200]);
    for (const path of ["/v1/chat/completions?via=express", "/v1/chat/completions"]) {
      const limited = await send(h.url, path, headers, body);
      expect(limited.status).to.equal(429);
      expect(Number(header(limited, "retry-after"))).to.be.greaterThan(0);
      expect((JSON.parse(limited.body) as { error: { code: string } }).error.code).to.equal("rate_limit_exceeded");
    }
  });
});

describe("gateway: a client's x-request-id names one call only", function () {
  let h: GatewayHarness;
  let key: string;
  before(async function () {
    h = await startGatewayHarness();
    await h.deposit(h.market.buyers[0], USD(5));
    ({ key } = await h.createKey(h.market.buyers[0]));
  });
  after(async () => h?.close());

  it("a reused id, in sequence or in parallel and on either path, is served under a fresh id the answer names, each call recorded once", async function () {
    const headers = { "content-type": "application/json", authorization: `Bearer ${key}`, "x-request-id": "client-run-7" };
    const body = JSON.stringify({ model: "small-model", messages: [{ role: "user", content: "Hi" }], max_tokens: 4 });
    const before = h.gateway.ctx.store.recordCount();
    const first = await send(h.url, "/v1/chat/completions", headers, body);
    expect(first.status, first.body).to.equal(200);
    expect(header(first, "x-request-id")).to.equal("client-run-7");
    // Again, after it was recorded (either path), then eight at once.
    const again = [await send(h.url, "/v1/chat/completions", headers, body), await send(h.url, `/v1/chat/completions${VIA_EXPRESS}`, headers, body)];
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => send(h.url, i % 2 ? `/v1/chat/completions${VIA_EXPRESS}` : "/v1/chat/completions", { ...headers, "x-request-id": "client-burst" }, body)));
    const answers = [first, ...again, ...burst];
    for (const answer of answers) expect(answer.status, answer.body).to.equal(200);
    const ids = answers.map((answer) => header(answer, "x-request-id")!);
    expect(new Set(ids).size, "distinct ids").to.equal(answers.length);
    for (const id of ids.slice(1, 3)) expect(id).to.not.equal("client-run-7");
    expect(ids.filter((id) => id === "client-burst").length, "the offered id goes to at most one call of the burst").to.be.at.most(1);
    // One record per answer, under the id that answer names.
    expect(h.gateway.ctx.store.recordCount()).to.equal(before + answers.length);
    const buyer = getAddress(h.market.buyers[0].address);
    const recorded = new Set(h.gateway.ctx.store.recordsOf(buyer, {}).map((record) => record.requestId));
    for (const id of ids) expect(recorded.has(id), id).to.equal(true);
  });
});
