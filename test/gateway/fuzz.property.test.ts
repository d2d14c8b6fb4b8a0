/**
 * Invariant 6 by property: hostile HTTP requests to every endpoint (wrong types, huge and negative
 * numbers, nested garbage, prototype-pollution keys, random bytes, random content types and encodings,
 * random Authorization headers) get a 4xx in OpenAI's error JSON with `content-type: application/json`,
 * and change nothing: no usage record, no open reservation, no key created, no nonce consumed, no
 * polluted prototype. After each property the gateway still serves a valid call.
 *
 * Issue 13's endpoints too: outcomes, the usage summary, budgets (created by wallet signature) and the call
 * attribution headers, with outcomes and budgets counted in "changes nothing".
 *
 * Every generated request is invalid by construction (at least one field is drawn from a "bad"
 * arbitrary), so a 2xx is always a bug. Runs: ~260 in all; FUZZ_RUNS scales them.
 *
 * Also: a tokenizer-hostile prompt (1,000,000 characters, no spaces) from one buyer while another
 * buyer's normal calls keep being served, and a prompt past the tokenizer's limit.
 */
import { expect } from "chai";
import Database from "better-sqlite3";
import fc from "fast-check";
import { getAddress } from "viem";
import { recordCost } from "../../server/chain/pricing";
import { reservedInputTokens } from "../../server/gateway/metering/usage-counts";
import { SMALL_PRICES, USD } from "../../scripts/lib/marketplace-fixtures";
import { budgetMessage, nonce, startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

const MODELS = ["small-model", "large-model", "embed-model"];
const ERROR_FIELDS = ["code", "message", "param", "type"];
const HTML_OR_STACK = /<html|<!doctype|<body|\n\s+at \S+ \(|at [\w.<>]+ \([^)]*\.(?:js|ts):\d+/i;

// ---------------------------------------------------------------------------------------------
// Arbitraries

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
const json = fc.jsonValue({ maxDepth: 3 });
const protoKey = fc.constantFrom("__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "__defineGetter__", "then");

/** Values that can never be a JSON integer in 1..1_000_000: what a count field must refuse. */
const badCount = fc.oneof(
  fc.constantFrom(0, -1, -0.5, 1.5, 1e308, -1e308, 2 ** 53 + 2, 2 ** 64, 1e21, 1_000_001, 4_294_967_296),
  fc.integer({ min: -(2 ** 31), max: 0 }),
  fc.integer({ min: 1_000_001, max: 2 ** 31 - 1 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.array(json, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), json, { maxKeys: 3 }),
);
/** Anything but a string. */
const notString = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.array(json, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 6 }), json, { maxKeys: 3 }));
/** Anything but a boolean or null. */
const notBoolean = fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.array(json, { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 6 }), json, { maxKeys: 2 }));
/** Anything but an array (or null). */
const notArray = fc.oneof(fc.integer(), fc.string({ maxLength: 20 }), fc.boolean(), fc.dictionary(fc.string({ maxLength: 6 }), json, { maxKeys: 3 }));

/** An object with own keys, `__proto__` included as an own property (as JSON.parse makes it). */
function ownObject(entries: [string, unknown][]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of entries) Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  return object;
}
const pollution = fc.oneof(
  fc.constant(ownObject([["__proto__", { polluted: "yes", isAdmin: true }]])),
  fc.constant(ownObject([["constructor", { prototype: { polluted: "yes" } }]])),
  fc.constant(ownObject([["prototype", { polluted: "yes" }]])),
  json,
);
/** Extra garbage fields, many of them with prototype-pollution names. */
const garbageFields = fc.array(fc.tuple(fc.oneof(protoKey, fc.string({ maxLength: 10 })), pollution), { maxLength: 4 });

interface Field {
  ok: boolean;
  value?: unknown;
}
const good = (arbitrary: fc.Arbitrary<unknown>): fc.Arbitrary<Field> => arbitrary.map((value) => ({ ok: true, value }));
const bad = (arbitrary: fc.Arbitrary<unknown>): fc.Arbitrary<Field> => arbitrary.map((value) => ({ ok: false, value }));
const absent: fc.Arbitrary<Field> = fc.constant({ ok: true });

const validMessage = fc.record({ role: fc.constantFrom("user", "system", "assistant"), content: fc.string({ maxLength: 40 }) });
const badMessage = fc.oneof(
  notString.filter((v) => v === null || typeof v !== "object" || Array.isArray(v)),
  fc.record({ content: fc.string({ maxLength: 10 }) }),
  fc.record({ role: notString, content: fc.string({ maxLength: 10 }) }),
);

/** A chat body with at least one field that must be refused. */
const hostileChatBody = fc
  .record({
    model: fc.oneof(
      good(fc.constantFrom("small-model", "large-model")),
      bad(notString),
      bad(fc.constant("")),
      bad(fc.constantFrom("embed-model", "gpt-4o", "__proto__", "constructor", "toString", "small-model ", "SMALL-MODEL")),
      bad(fc.string({ maxLength: 30 }).filter((s) => !MODELS.includes(s))),
    ),
    messages: fc.oneof(
      good(fc.array(validMessage, { minLength: 1, maxLength: 3 })),
      bad(notArray),
      bad(fc.constant([])),
      bad(fc.tuple(fc.array(validMessage, { maxLength: 2 }), badMessage, fc.nat(2)).map(([ok, wrong, at]) => [...ok.slice(0, at), wrong, ...ok.slice(at)])),
    ),
    max_tokens: fc.oneof(absent, good(fc.integer({ min: 1, max: 16 })), bad(badCount)),
    max_completion_tokens: fc.oneof(absent, absent, bad(badCount)),
    stream: fc.oneof(absent, good(fc.boolean()), bad(notBoolean)),
    n: fc.oneof(absent, good(fc.integer({ min: 1, max: 2 })), bad(fc.oneof(badCount, fc.integer({ min: 9, max: 1000 })))),
    tools: fc.oneof(absent, absent, bad(notArray)),
    garbage: garbageFields,
  })
  .filter((body) => [body.model, body.messages, body.max_tokens, body.max_completion_tokens, body.stream, body.n, body.tools].some((field) => !field.ok))
  .map(({ garbage, ...fields }) => {
    const entries: [string, unknown][] = garbage;
    for (const [name, field] of Object.entries(fields)) if ("value" in field) entries.push([name, field.value]);
    return ownObject(entries);
  });

/** An embeddings body with at least one field that must be refused. */
const hostileEmbeddingsBody = fc
  .record({
    model: fc.oneof(good(fc.constant("embed-model")), bad(notString), bad(fc.constantFrom("small-model", "", "__proto__")), bad(fc.string({ maxLength: 20 }).filter((s) => !MODELS.includes(s)))),
    input: fc.oneof(
      good(fc.string({ minLength: 1, maxLength: 30 })),
      bad(fc.constantFrom("", [], [[]], [""], [-1], [1.5], [[1, -2]], [1, "a"], { text: "hi" }, null, 7, true)),
      bad(fc.array(fc.oneof(fc.integer({ max: -1 }), fc.constant(null), fc.dictionary(fc.string({ maxLength: 4 }), json, { maxKeys: 2 })), { minLength: 1, maxLength: 4 })),
    ),
    garbage: garbageFields,
  })
  .filter((body) => !body.model.ok || !body.input.ok)
  .map(({ garbage, model, input }) => {
    const entries: [string, unknown][] = [...garbage];
    if ("value" in model) entries.push(["model", model.value]);
    if ("value" in input) entries.push(["input", input.value]);
    return ownObject(entries);
  });

const hexString = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => `0x${Buffer.from(b).toString("hex")}`);
const address = hexString(20);
const uintLike = fc.oneof(fc.nat().map(String), fc.nat(), fc.constantFrom("-1", "1.5", "0x10", "", "1e3", (2n ** 256n).toString()), notString);

/** Key-management bodies: wrong shapes, wrong types, or well-formed messages with signatures nobody made. */
const hostileKeyBody = fc.oneof(
  json,
  fc.record({ message: json, signature: fc.oneof(printable, notString) }),
  fc.record(
    {
      message: fc.record(
        {
          buyer: fc.oneof(address, printable, notString),
          label: fc.oneof(fc.string({ maxLength: 120 }), notString),
          spendCap: uintLike,
          models: fc.oneof(fc.array(fc.oneof(fc.constantFrom(...MODELS), fc.string({ maxLength: 70 })), { maxLength: 3 }), notArray),
          tags: fc.oneof(fc.array(fc.oneof(fc.constantFrom("team:search", "a:b"), printable), { maxLength: 3 }), notArray),
          expiresAt: uintLike,
          issuedAt: fc.oneof(fc.constant(String(Math.floor(Date.now() / 1000))), uintLike),
          nonce: fc.oneof(hexString(32), printable, notString),
          keyId: fc.oneof(fc.string({ maxLength: 70 }), notString),
        },
        { requiredKeys: [] },
      ),
      signature: fc.oneof(hexString(65), hexString(64), hexString(1), printable, notString),
    },
    { requiredKeys: ["message"] },
  ),
);

const authorization = (validKey: string) =>
  fc.oneof(
    { arbitrary: fc.constant(`Bearer ${validKey}`), weight: 4 },
    fc.constant(undefined),
    printable,
    printable.map((s) => `Bearer ${s}`),
    fc.stringMatching(/^[A-Za-z0-9_-]{43}$/).map((s) => `Bearer tg_${s}`),
    fc.constantFrom(`Bearer  ${validKey}x`, `Basic ${validKey}`, `Bearer ${validKey.slice(0, -2)}`, "Bearer", "Bearer tg_", validKey),
  );

const contentType = fc.oneof(
  { arbitrary: fc.constant("application/json"), weight: 6 },
  fc.constantFrom(
    "application/json; charset=utf-8",
    "application/json; charset=latin1",
    "application/json; charset=utf-16",
    "text/plain",
    "text/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=zz",
    "application/xml",
    "application/jsonx",
    "json",
    "",
  ),
  fc.stringMatching(/^[a-z]{1,8}\/[a-z0-9+.-]{1,12}(; ?[a-z]{1,6}=[a-z0-9-]{0,8})?$/),
);
const contentEncoding = fc.oneof({ arbitrary: fc.constant(undefined), weight: 6 }, fc.constantFrom("gzip", "deflate", "br", "identity", "compress", "x-unknown", "gzip, br"));

// ---------------------------------------------------------------------------------------------

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Blob;
}

describe("gateway fuzz: hostile HTTP requests get OpenAI errors and change nothing", function () {
  let h: GatewayHarness;
  let key: string;
  let baseline: { records: number; keys: number; nonces: number; spent: string; outcomes: number; budgets: number };
  /** A trace the fuzzed buyer's calls carry, and one only another buyer's calls carry. */
  const OWN_TRACE = "fuzz-run-1";
  const OTHER_TRACE = "someone-elses-run";
  let db: Database.Database;

  const describeRequest = (sent: Sent) =>
    `${sent.method} ${sent.path} ${JSON.stringify(sent.headers)} ${typeof sent.body === "string" ? sent.body.slice(0, 400) : sent.body ? `<${sent.body.size} bytes>` : ""}`;

  const counts = () => ({
    records: h.gateway.ctx.store.recordCount(),
    keys: (db.prepare("SELECT count(*) AS n FROM api_keys").get() as { n: number }).n,
    nonces: (db.prepare("SELECT count(*) AS n FROM used_nonces").get() as { n: number }).n,
    spent: h.gateway.ctx.store
      .listApiKeys(getAddress(h.market.buyers[0].address))
      .map((k) => `${k.id}:${k.spent}`)
      .join(","),
    outcomes: (db.prepare("SELECT count(*) AS n FROM outcomes").get() as { n: number }).n,
    budgets: (db.prepare("SELECT count(*) AS n FROM budgets").get() as { n: number }).n,
  });

  /** Sends one hostile request and checks the answer is a clean 4xx refusal that changed nothing. */
  async function expectRefused(sent: Sent): Promise<void> {
    const context = describeRequest(sent);
    const headers = Object.fromEntries(Object.entries(sent.headers).filter(([, value]) => value !== undefined));
    const response = await fetch(`${h.url}${sent.path}`, { method: sent.method, headers, body: sent.body });
    const text = await response.text();
    expect(response.status, `${context}\n→ ${response.status} ${text}`).to.be.within(400, 499);
    expect(response.headers.get("content-type"), context).to.match(/^application\/json\b/);
    expect(response.headers.get("x-request-id"), context).to.be.a("string").and.not.equal("");
    expect(text, context).not.to.match(HTML_OR_STACK);
    const body = JSON.parse(text) as { error: Record<string, unknown> };
    expect(Object.keys(body), context).to.deep.equal(["error"]);
    expect(Object.keys(body.error).sort(), context).to.deep.equal(ERROR_FIELDS);
    expect(body.error.message, context).to.be.a("string").and.not.equal("");
    expect(body.error.type, context).to.be.a("string").and.not.equal("");
    for (const field of ["param", "code"]) expect(body.error[field] === null || typeof body.error[field] === "string", `${context}: ${field}`).to.equal(true);

    expect(h.gateway.ctx.ledger.openReservations(), `${context}: open reservations`).to.equal(0);
    expect(counts(), `${context}: records, keys, nonces, spend`).to.deep.equal(baseline);
    expect(({} as Record<string, unknown>).polluted, "Object.prototype polluted").to.equal(undefined);
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, "isAdmin"), "Object.prototype polluted").to.equal(false);
  }

  /** A valid call is still served after the storm, and makes exactly one record. */
  async function expectStillServing(): Promise<void> {
    const before = h.gateway.ctx.store.recordCount();
    const completion = await h.openai(key).chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "still there?" }], max_tokens: 8 });
    expect(completion.choices[0].message.content).to.be.a("string");
    expect(h.gateway.ctx.store.recordCount()).to.equal(before + 1);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
    baseline = counts();
  }

  before(async () => {
    h = await startGatewayHarness({ config: { limits: { maxBodyBytes: 8 * 1024 * 1024, requestsPerMinute: 0 } } });
    await h.deposit(h.market.buyers[0], USD(100));
    ({ key } = await h.createKey(h.market.buyers[0]));
    db = new Database(h.config.store.path, { readonly: true, fileMustExist: true });
    // One run of this buyer's and one of another buyer's, so outcome posts can name a trace that exists.
    await h.openai(key).chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "a step" }], max_tokens: 4 }, { headers: { "x-tollgate-trace-id": OWN_TRACE } });
    const other = h.market.buyers[1];
    await h.deposit(other, USD(10));
    const { key: otherKey } = await h.createKey(other);
    await h.openai(otherKey).chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "theirs" }], max_tokens: 4 }, { headers: { "x-tollgate-trace-id": OTHER_TRACE } });
    await expectStillServing();
  });

  after(async () => {
    db?.close();
    await h?.close();
  });

  it("POST /v1/chat/completions: hostile JSON bodies, content types, encodings and keys", async () => {
    await fc.assert(
      fc.asyncProperty(hostileChatBody, authorization(key), contentType, contentEncoding, async (body, auth, type, encoding) => {
        const headers: Record<string, string> = { "content-type": type };
        if (auth !== undefined) headers.authorization = auth;
        if (encoding !== undefined) headers["content-encoding"] = encoding;
        await expectRefused({ method: "POST", path: "/v1/chat/completions", headers, body: JSON.stringify(body) });
      }),
      { numRuns: runs(80) },
    );
    await expectStillServing();
  });

  it("POST /v1/embeddings: hostile JSON bodies and keys", async () => {
    await fc.assert(
      fc.asyncProperty(hostileEmbeddingsBody, authorization(key), async (body, auth) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (auth !== undefined) headers.authorization = auth;
        await expectRefused({ method: "POST", path: "/v1/embeddings", headers, body: JSON.stringify(body) });
      }),
      { numRuns: runs(40) },
    );
    await expectStillServing();
  });

  it("random bytes and random JSON values as the body of every POST endpoint", async () => {
    const path = fc.constantFrom("/v1/chat/completions", "/v1/embeddings", "/v1/keys", "/v1/keys/list", "/v1/keys/revoke");
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 600 }).map((bytes) => new Blob([bytes])),
      json.map((value) => JSON.stringify(value) ?? "null"),
      printable,
      fc.constantFrom("", "{", "[", '{"model":', "\u0000", "{}", "[]", "null", '{"__proto__":{"polluted":"yes"}}', '{"constructor":{"prototype":{"polluted":"yes"}}}'),
    );
    await fc.assert(
      fc.asyncProperty(path, body, authorization(key), contentType, async (target, payload, auth, type) => {
        const headers: Record<string, string> = { "content-type": type };
        if (auth !== undefined) headers.authorization = auth;
        await expectRefused({ method: "POST", path: target, headers, body: payload });
      }),
      { numRuns: runs(40) },
    );
    await expectStillServing();
  });

  it("POST /v1/keys, /v1/keys/list, /v1/keys/revoke: hostile shapes and forged signatures", async () => {
    const path = fc.constantFrom("/v1/keys", "/v1/keys/list", "/v1/keys/revoke");
    await fc.assert(
      fc.asyncProperty(path, hostileKeyBody, garbageFields, async (target, body, garbage) => {
        const payload = body !== null && typeof body === "object" && !Array.isArray(body) ? ownObject([...Object.entries(body), ...garbage]) : body;
        await expectRefused({ method: "POST", path: target, headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });
      }),
      { numRuns: runs(50) },
    );
    // A well-formed message for a real buyer with someone else's signature is refused too, and
    // the buyer's own signature of the same message (same nonce) is still accepted afterwards.
    const buyer = h.market.buyers[0];
    const message = { buyer: buyer.address, issuedAt: String(Math.floor(Date.now() / 1000)), nonce: nonce() };
    const forged = await h.signKeyMessage(h.market.buyers[1], "ListApiKeys", message);
    await expectRefused({ method: "POST", path: "/v1/keys/list", headers: { "content-type": "application/json" }, body: JSON.stringify({ message, signature: forged }) });
    const genuine = await fetch(`${h.url}/v1/keys/list`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message, signature: await h.signKeyMessage(buyer, "ListApiKeys", message) }),
    });
    expect(genuine.status).to.equal(200);
    await expectStillServing();
  });

  it("GET /v1/usage: hostile query strings and keys", async () => {
    const badParam = fc.oneof(
      fc.tuple(fc.constantFrom("limit"), fc.oneof(fc.constantFrom("0", "-1", "abc", "10001", "1.5", "1e400", "NaN", "Infinity", ""), fc.integer({ min: 10_001 }).map(String))),
      fc.tuple(fc.constantFrom("from", "to"), fc.oneof(fc.constantFrom("-1", "abc", "1.5", "1e400", "NaN", "--1"), fc.integer({ max: -1 }).map(String))),
      fc.tuple(fc.constant("after"), fc.oneof(fc.constantFrom("-1", "1.5", "0x10", "1e3", "", "123456789012345678901"), printable.filter((s) => !/^\d{1,20}$/.test(s)))),
      fc.tuple(fc.constant("format"), printable.filter((s) => s !== "json" && s !== "csv")),
      fc.tuple(fc.constantFrom("key_id", "tag", "model"), fc.string({ minLength: 65, maxLength: 100 })),
    );
    const extraParam = fc.oneof(
      fc.tuple(fc.constant("limit"), fc.integer({ min: 1, max: 50 }).map(String)),
      fc.tuple(fc.constant("format"), fc.constantFrom("json", "csv")),
      fc.tuple(fc.oneof(protoKey, fc.string({ maxLength: 8 })), fc.string({ maxLength: 20 })),
    );
    const duplicated = fc.constantFrom("limit", "format", "key_id", "tag", "after").map((name): [string, string][] => [
      [name, "1"],
      [name, "2"],
    ]);
    const query = fc.oneof(
      fc.tuple(fc.array(extraParam, { maxLength: 3 }), badParam, fc.nat(3)).map(([extra, wrong, at]): [string, string][] => [...extra.slice(0, at), wrong, ...extra.slice(at)]),
      duplicated,
    );
    await fc.assert(
      fc.asyncProperty(query, authorization(key), fc.boolean(), async (params, auth, junk) => {
        const search = new URLSearchParams(params).toString() + (junk ? "&%%%=%ZZ&=&&" : "");
        const headers: Record<string, string> = {};
        if (auth !== undefined) headers.authorization = auth;
        await expectRefused({ method: "GET", path: `/v1/usage?${search}`, headers });
      }),
      { numRuns: runs(30) },
    );
    await expectStillServing();
  });

  it("GET /v1/models/:id: unknown, hostile and badly encoded ids", async () => {
    const id = fc.oneof(
      fc.string({ minLength: 1, maxLength: 40 }).map((s) => encodeURIComponent(s)),
      fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "small-model%00", "%E0%A4%A", "%", "%zz", "a/b/c", "small-model/extra", "%2e%2e%2fetc", "..%2f..%2f"),
    );
    await fc.assert(
      fc.asyncProperty(
        id.filter((s) => !MODELS.includes(decodeURIComponentSafe(s)) && !/^(\.|%2e)*$/i.test(s)),
        async (modelId) => {
          await expectRefused({ method: "GET", path: `/v1/models/${modelId}`, headers: {} });
        },
      ),
      { numRuns: runs(30) },
    );
    await expectStillServing();
  });

  it("valid calls carrying prototype-pollution keys are served once each and pollute nothing", async () => {
    await fc.assert(
      fc.asyncProperty(garbageFields, fc.boolean(), async (garbage, stream) => {
        const before = h.gateway.ctx.store.recordCount();
        const body = ownObject([...garbage.filter(([name]) => !["model", "messages", "max_tokens", "max_completion_tokens", "stream", "n", "tools", "stream_options"].includes(name)), ["model", "small-model"], ["messages", [ownObject([...garbage.filter(([name]) => !["role", "content", "name", "tool_calls", "tool_call_id"].includes(name)), ["role", "user"], ["content", "hi"]])]], ["max_tokens", 4], ["stream", stream]]);
        const response = await fetch(`${h.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
        const text = await response.text();
        expect(response.status, `${JSON.stringify(body)} → ${text}`).to.equal(200);
        expect(h.gateway.ctx.store.recordCount()).to.equal(before + 1);
        expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
        expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
        expect(Object.prototype.hasOwnProperty.call(Object.prototype, "isAdmin")).to.equal(false);
      }),
      { numRuns: runs(20) },
    );
    baseline = counts();
  });

  it("POST /v1/outcomes: hostile bodies, unknown and foreign traces, and keys", async () => {
    const body = fc
      .record({
        trace_id: fc.oneof(
          good(fc.constant(OWN_TRACE)),
          bad(fc.constantFrom(OTHER_TRACE, "never-sent", "FUZZ-RUN-1", `${OWN_TRACE} `, "", "a".repeat(129), "run/1", "__proto__")),
          bad(notString),
        ),
        type: fc.oneof(good(fc.constantFrom("ticket_resolved", "lead.qualified")), bad(fc.constantFrom("", "has space", "x".repeat(65), "emoji🙂")), bad(notString)),
        success: fc.oneof(good(fc.boolean()), bad(fc.constantFrom("true", 1, 0, "yes")), bad(fc.constant(null)), bad(fc.constant(undefined))),
        value: fc.oneof(absent, good(fc.constantFrom("12.5", "-3", null)), bad(fc.constantFrom(12.5, "1e3", "12,5", "NaN", "0x10", "1.1234567890123456789", "")), bad(fc.array(json, { maxLength: 2 }))),
        extra: fc.oneof(
          { arbitrary: fc.constant([] as [string, unknown][]), weight: 3 },
          garbageFields.map((fields) => fields.filter(([name]) => !["trace_id", "type", "success", "value"].includes(name))).filter((fields) => fields.length > 0),
        ),
      })
      // Invalid by construction: a bad field, an unknown field, or a trace this buyer never sent.
      .filter((b) => [b.trace_id, b.type, b.success, b.value].some((field) => !field.ok) || b.extra.length > 0)
      .map(({ extra, ...fields }) => {
        const entries: [string, unknown][] = [...extra];
        for (const [name, field] of Object.entries(fields)) if ("value" in field && field.value !== undefined) entries.push([name, field.value]);
        return ownObject(entries);
      });
    await fc.assert(
      fc.asyncProperty(body, authorization(key), async (payload, auth) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (auth !== undefined) headers.authorization = auth;
        await expectRefused({ method: "POST", path: "/v1/outcomes", headers, body: JSON.stringify(payload) });
      }),
      { numRuns: runs(40) },
    );
    // A genuine outcome is recorded once; its repeat is a 409 that changes nothing.
    const genuine = JSON.stringify({ trace_id: OWN_TRACE, type: "fuzz_done", success: true });
    const first = await fetch(`${h.url}/v1/outcomes`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: genuine });
    expect(first.status, await first.text()).to.equal(201);
    baseline = counts();
    await expectRefused({ method: "POST", path: "/v1/outcomes", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: genuine });
    await expectStillServing();
  });

  it("GET /v1/usage/summary: hostile query strings and keys", async () => {
    const badParam = fc.oneof(
      fc.tuple(fc.constant("group_by"), fc.oneof(fc.constantFrom("team", "key,key", "day,,Day", "__proto__", "model;tag", "x".repeat(101)), printable.filter((s) => !s.split(",").every((name) => ["key", "tag", "model", "trace", "day", "month", ""].includes(name.trim()))))),
      fc.tuple(fc.constantFrom("from", "to"), fc.constantFrom("-1", "abc", "1.5", "1e400", "NaN", "--1")),
      fc.tuple(fc.constant("format"), printable.filter((s) => s !== "json" && s !== "csv")),
      fc.tuple(fc.constant("view"), printable.filter((s) => s !== "summary" && s !== "log")),
      fc.tuple(fc.constantFrom("key_id", "tag", "model"), fc.string({ minLength: 65, maxLength: 100 })),
      fc.tuple(fc.oneof(protoKey, fc.constantFrom("groupby", "trace", "limit ", "formats")), fc.string({ maxLength: 10 })),
    );
    const contradictory = fc.constantFrom<[string, string][]>(
      [["from", "200"], ["to", "100"]],
      [["from", "100"], ["to", "100"]],
      [["view", "log"], ["group_by", "model"]],
      [["view", "summary"], ["after", "3"]],
      [["view", "log"], ["limit", "0"]],
      [["view", "log"], ["limit", "10001"]],
      [["view", "log"], ["after", "-1"]],
      [["group_by", "day"], ["group_by", "model"]],
    );
    const query = fc.oneof(fc.tuple(fc.array(fc.tuple(fc.constant("format"), fc.constantFrom("json", "csv")), { maxLength: 1 }), badParam).map(([extra, wrong]) => [...extra, wrong]), contradictory);
    await fc.assert(
      fc.asyncProperty(query, authorization(key), async (params, auth) => {
        const headers: Record<string, string> = {};
        if (auth !== undefined) headers.authorization = auth;
        await expectRefused({ method: "GET", path: `/v1/usage/summary?${new URLSearchParams(params).toString()}`, headers });
      }),
      { numRuns: runs(30) },
    );
    await expectStillServing();
  });

  it("POST /v1/budgets, /v1/budgets/list, /v1/budgets/delete: hostile shapes, bad fields and forged signatures", async () => {
    const buyer = h.market.buyers[0];
    const validBudget = () => budgetMessage(buyer.address, { target: "team:search" });
    // Exactly one field made wrong, the message signed by its buyer: only the field's check can refuse it.
    const wrongField = fc.oneof(
      fc.tuple(fc.constant("scope"), fc.oneof(fc.constantFrom("team", "", "TAG", "key"), notString)),
      fc.tuple(fc.constant("target"), fc.constantFrom("", "no-colon", "t".repeat(129))),
      fc.tuple(fc.constant("period"), fc.oneof(fc.constantFrom("year", "hour", "", "Day"), notString)),
      fc.tuple(fc.constant("limit"), fc.constantFrom("0", "-5", "1.5", "abc", "", (2n ** 256n).toString(), "0x10")),
      fc.tuple(fc.constant("thresholdsBps"), fc.constantFrom([0], [10_001], [9000, 8000], [5000, 5000], [-1], [1.5], Array.from({ length: 9 }, (_, i) => (i + 1) * 1000), "8000")),
      fc.tuple(fc.constant("webhookUrl"), fc.constantFrom("not a url", "ftp://example.com/hook", "javascript:alert(1)", "file:///etc/passwd", `https://example.com/${"p".repeat(2050)}`)),
      // Private networks are off by default: a buyer's webhook may not reach what only the gateway can.
      fc.tuple(fc.constant("webhookUrl"), fc.constantFrom("http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/hook", "http://localhost:8080/hook", "http://10.0.0.5/hook", "http://[::ffff:192.168.1.1]/")),
      fc.tuple(fc.constant("degradeModel"), fc.constantFrom("no-such-model", "small-model")),
      fc.tuple(fc.constant("degradeThresholdBps"), fc.constantFrom(5000, 10_001, -1, "50%")),
      fc.tuple(fc.constant("label"), fc.constant("l".repeat(101))),
    );
    await fc.assert(
      fc.asyncProperty(wrongField, async ([name, value]) => {
        const message: Record<string, unknown> = { ...validBudget(), [name]: value };
        let signature: string;
        try {
          signature = await h.signKeyMessage(buyer, "CreateBudget", message);
        } catch {
          signature = `0x${"11".repeat(65)}`; // a value EIP-712 cannot even encode: refused before any signature check
        }
        await expectRefused({ method: "POST", path: "/v1/budgets", headers: { "content-type": "application/json" }, body: JSON.stringify({ message, signature }) });
      }),
      { numRuns: runs(40) },
    );
    const path = fc.constantFrom("/v1/budgets", "/v1/budgets/list", "/v1/budgets/delete");
    await fc.assert(
      fc.asyncProperty(path, hostileKeyBody, garbageFields, async (target, body, garbage) => {
        const payload = body !== null && typeof body === "object" && !Array.isArray(body) ? ownObject([...Object.entries(body), ...garbage]) : body;
        await expectRefused({ method: "POST", path: target, headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });
      }),
      { numRuns: runs(30) },
    );
    // A valid budget signed by another wallet, and the deletion of a budget nobody has, are refused too.
    const forged = validBudget();
    await expectRefused({ method: "POST", path: "/v1/budgets", headers: { "content-type": "application/json" }, body: JSON.stringify({ message: forged, signature: await h.signKeyMessage(h.market.buyers[1], "CreateBudget", forged) }) });
    const deletion = { buyer: buyer.address, budgetId: "bud_nonexistent", issuedAt: String(Math.floor(Date.now() / 1000)), nonce: nonce() };
    const response = await fetch(`${h.url}/v1/budgets/delete`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ message: deletion, signature: await h.signKeyMessage(buyer, "DeleteBudget", deletion) }) });
    expect(response.status, await response.text()).to.equal(404);
    // The nonce of a signed, well-formed request is spent even when the budget is missing (as for keys).
    baseline = counts();
    await expectStillServing();
  });

  it("chat calls with hostile attribution headers and fields are refused before anything is reserved", async () => {
    const badHeader = fc.oneof(
      fc.tuple(fc.constant("x-tollgate-trace-id"), fc.constantFrom("has space", "t".repeat(129), "run/1", "é", "run;1")),
      fc.tuple(fc.constant("x-tollgate-step"), fc.constantFrom("s".repeat(129), "step\\1", "é")),
      fc.tuple(fc.constant("idempotency-key"), fc.constantFrom("k".repeat(256), "has space", "é")),
    );
    const badField = fc.oneof(
      // null is OpenAI's "not given" for both fields, so it is not among the bad values.
      fc.tuple(fc.constant("user"), fc.oneof(notString.filter((value) => value !== null), fc.constant("u".repeat(513)))),
      fc.tuple(fc.constant("metadata"), fc.oneof(fc.constantFrom("x", 1, [], [["a", "b"]]), fc.constant(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]))), fc.constant({ ["k".repeat(65)]: "v" }), fc.constant({ a: "v".repeat(513) }), fc.constant({ a: 1 }), fc.constant({ a: null }))),
    );
    const wrong = fc.oneof(badHeader.map((header) => ({ header, field: undefined })), badField.map((field) => ({ header: undefined, field })));
    await fc.assert(
      fc.asyncProperty(wrong, fc.boolean(), async ({ header, field }, stream) => {
        const headers: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${key}` };
        // A step without its trace is itself refused; with one, only the bad value can be.
        if (header) Object.assign(headers, header[0] === "x-tollgate-step" ? { "x-tollgate-trace-id": OWN_TRACE } : {}, { [header[0]]: header[1] });
        const body: Record<string, unknown> = { model: "small-model", messages: [{ role: "user", content: "hi" }], max_tokens: 4, stream };
        if (field) body[field[0]] = field[1];
        await expectRefused({ method: "POST", path: "/v1/chat/completions", headers, body: JSON.stringify(body) });
      }),
      { numRuns: runs(30) },
    );
    await expectStillServing();
  });

  it("a 1,000,000-character prompt without spaces from one buyer while another buyer keeps being served", async () => {
    const hog = h.market.buyers[3];
    await h.deposit(hog, USD(100));
    const { key: hogKey, id: hogKeyId } = await h.createKey(hog);
    const hogAddress = getAddress(hog.address);

    // Deterministic letters, digits and punctuation, no whitespace; and one long run of a single letter.
    let seed = 7;
    const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?-_/()[]{}";
    const chars: string[] = [];
    for (let i = 0; i < 1_000_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) >>> 0;
      chars.push(alphabet[seed % alphabet.length]);
    }
    // Plus a 150,000-character slice, under the simulated upstream's 200,000-character context, so
    // one hostile prompt is actually served and metered.
    const prompts = [chars.join(""), "a".repeat(1_000_000), chars.slice(0, 150_000).join("")];
    const MAX_TOKENS = 16;
    const big = prompts.map((content) =>
      fetch(`${h.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${hogKey}` },
        body: JSON.stringify({ model: "small-model", messages: [{ role: "user", content }], max_tokens: MAX_TOKENS }),
      }).then(async (response) => ({ status: response.status, contentType: response.headers.get("content-type"), text: await response.text() })),
    );

    // Another buyer's small calls are served meanwhile.
    const client = h.openai(key);
    const before = h.gateway.ctx.store.recordCount();
    const small = await Promise.all(
      Array.from({ length: 8 }, (_, i) => client.chat.completions.create({ model: "small-model", messages: [{ role: "user", content: `small call ${i}` }], max_tokens: 8 })),
    );
    for (const completion of small) expect(completion.choices[0].message.content).to.be.a("string");

    const answers = await Promise.all(big);
    const hogRecords = h.gateway.ctx.store.recordsOf(hogAddress);
    let served = 0;
    for (const answer of answers) {
      expect(answer.contentType).to.match(/^application\/json\b/);
      expect(answer.text).not.to.match(HTML_OR_STACK);
      const body = JSON.parse(answer.text) as Record<string, unknown>;
      if (answer.status === 200) {
        served++;
        expect(body.object).to.equal("chat.completion");
      } else {
        // A clear refusal in OpenAI's shape (the simulated upstream's context is 200 000 characters).
        expect(answer.status, answer.text).to.be.within(400, 599);
        expect(Object.keys(body)).to.deep.equal(["error"]);
        expect(Object.keys(body.error as object).sort()).to.deep.equal(ERROR_FIELDS);
      }
    }
    // One record per served answer, none for a refused one, and none charged past its reservation.
    expect(answers[2].status, answers[2].text).to.equal(200);
    expect(hogRecords).to.have.length(served);
    for (const record of hogRecords) {
      expect(record.keyId).to.equal(hogKeyId);
      expect(record.outputTokens).to.be.at.most(MAX_TOKENS);
      const reservedInput = reservedInputTokens(record.gatewayInputTokens);
      expect(record.inputTokens).to.be.at.most(reservedInput);
      const ceiling = recordCost({ inputTokens: reservedInput, cachedInputTokens: 0, outputTokens: MAX_TOKENS }, SMALL_PRICES);
      expect(record.cost <= ceiling, `cost ${record.cost} ≤ reserved ${ceiling}`).to.equal(true);
    }
    expect(h.gateway.ctx.store.recordCount()).to.equal(before + small.length + served);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
    if (process.env.FUZZ_VERBOSE) console.log(answers.map((answer) => `${answer.status} ${answer.text.slice(0, 200)}`));
    await expectStillServing();
  });

  it("a prompt past what the gateway will meter (5,000,000 characters) → a clear 4xx, nothing charged", async () => {
    const content = "z".repeat(5_000_000);
    await expectRefused({
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "small-model", messages: [{ role: "user", content }], max_tokens: 8 }),
    });
    await expectStillServing();
  });
});

function decodeURIComponentSafe(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
