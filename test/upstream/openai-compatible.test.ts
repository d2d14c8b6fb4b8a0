import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import OpenAI from "openai";
import { createOpenAICompatibleUpstream } from "../../server/upstream/openai-compatible";
import { parseSse, SseLimitError, SseParser } from "../../server/upstream/sse";
import { startSimulatedUpstream, type SimulatedUpstream } from "../../server/upstream/simulated-upstream";
import { UpstreamError, type UpstreamAdapter, type UpstreamRequest, type UpstreamResponse } from "../../server/upstream/types";

// ---------------------------------------------------------------------------------------------
// helpers

async function waitFor(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Feeds `bytes` to a fresh parser in the given pieces and returns every payload. */
function parseInPieces(bytes: Uint8Array, cuts: number[]): string[] {
  const parser = new SseParser();
  const out: string[] = [];
  let start = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    parser.push(bytes.subarray(start, cut), out);
    start = cut;
  }
  parser.push(bytes.subarray(start), out);
  return parser.end(out);
}

interface TinyServer {
  url: string;
  connections: number;
  requests: { method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string }[];
  closedEarly: number;
  close(): Promise<void>;
}

/** A purpose-built upstream: `handler` answers after the body was read; it records requests and connections. */
async function tinyServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
): Promise<TinyServer> {
  const state: TinyServer = {
    url: "",
    connections: 0,
    requests: [],
    closedEarly: 0,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => {
      state.requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.on("close", () => {
        if (!res.writableFinished) state.closedEarly++;
      });
      handler(req, res, body);
    });
  });
  server.on("connection", () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return state;
}

function chatRequest(body: Record<string, unknown>, signal = new AbortController().signal, requestId = "req-1"): UpstreamRequest {
  return { endpoint: "/chat/completions", body, signal, requestId };
}

async function collect(response: UpstreamResponse): Promise<string[]> {
  if (response.kind !== "stream") throw new Error(`expected a stream, got ${response.kind}`);
  const events: string[] = [];
  for await (const e of response.events) events.push(e);
  return events;
}

async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(UpstreamError);
    return err as UpstreamError;
  }
  throw new Error("expected an UpstreamError, got success");
}

const hello = { model: "sim-chat", messages: [{ role: "user", content: "hello adapter" }] };

// ---------------------------------------------------------------------------------------------

describe("SSE parser", () => {
  it("returns the data payloads of events, in order", () => {
    expect(parseSse('data: {"a":1}\n\ndata: [DONE]\n\n')).to.deep.equal(['{"a":1}', "[DONE]"]);
  });

  it("accepts LF, CRLF and lone CR line endings", () => {
    expect(parseSse("data: a\r\n\r\ndata: b\r\rdata: c\n\n")).to.deep.equal(["a", "b", "c"]);
  });

  it("ignores comments and the other fields", () => {
    const text = ": keep-alive\n\nevent: message\nid: 7\nretry: 100\n: mid-event comment\ndata: x\nfoo: bar\n\n:another\n\n";
    expect(parseSse(text)).to.deep.equal(["x"]);
  });

  it("joins multi-line data with newlines and drops only one space after the colon", () => {
    expect(parseSse("data: line1\ndata:line2\ndata:  indented\n\n")).to.deep.equal(["line1\nline2\n indented"]);
    expect(parseSse("data\n\ndata:\n\n")).to.deep.equal(["", ""]);
  });

  it("does not dispatch events without data, and does not dispatch before the blank line", () => {
    expect(parseSse("event: ping\nid: 1\n\n")).to.deep.equal([]);
    const parser = new SseParser();
    expect(parser.pushText("data: a\n")).to.deep.equal([]);
    expect(parser.pushText("\n")).to.deep.equal(["a"]);
  });

  it("flushes an event left without its blank line when the stream ends", () => {
    expect(parseSse("data: a\n\ndata: [DONE]\n")).to.deep.equal(["a", "[DONE]"]);
    expect(parseSse("data: a\n\ndata: [DONE]")).to.deep.equal(["a", "[DONE]"]);
  });

  it("keeps a CRLF split by an empty piece as one line break", () => {
    const parser = new SseParser();
    const out: string[] = [];
    parser.pushText("data: a\r", out);
    parser.pushText("", out);
    parser.push(new Uint8Array(0), out);
    parser.pushText("\ndata: b\r\n\r\n", out);
    expect(out).to.deep.equal(["a\nb"]);
  });

  it("drops a leading byte-order mark", () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("data: x\n\n")]);
    expect(parseInPieces(bytes, [1, 2])).to.deep.equal(["x"]);
  });

  const tricky = Buffer.from(
    ': hello\r\n\r\ndata: {"content":"héllo 🌍 naïve"}\r\n\r\n' +
      "data: first line\r\ndata: second line\n\n" +
      "event: x\rdata: cr only\r\r" +
      "data: [DONE]\n\n",
    "utf8",
  );
  const trickyEvents = ['{"content":"héllo 🌍 naïve"}', "first line\nsecond line", "cr only", "[DONE]"];

  it("gives the same events however the bytes are split (every single cut)", () => {
    expect(parseInPieces(tricky, [])).to.deep.equal(trickyEvents);
    for (let cut = 0; cut <= tricky.length; cut++) {
      expect(parseInPieces(tricky, [cut]), `cut at ${cut}`).to.deep.equal(trickyEvents);
    }
  });

  it("gives the same events byte by byte (splitting UTF-8 sequences and CRLF pairs)", () => {
    const cuts = Array.from({ length: tricky.length - 1 }, (_, i) => i + 1);
    expect(parseInPieces(tricky, cuts)).to.deep.equal(trickyEvents);
  });

  it("property: any events, any line endings and comments, any chunking", () => {
    const payload = fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));
    const eventArb = fc.array(payload, { minLength: 1, maxLength: 3 });
    const eol = fc.constantFrom("\n", "\r\n", "\r");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(eventArb, eol, fc.boolean(), fc.boolean()), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (events, rawCuts) => {
          let text = "";
          const expected: string[] = [];
          for (const [lines, nl, comment, spaced] of events) {
            if (comment) text += `: comment${nl}`;
            for (const line of lines) text += `data:${spaced ? " " : ""}${line}${nl}`;
            text += nl;
            // One space after the colon is dropped, whether we wrote it or the payload began with it.
            expected.push(lines.map((l) => (spaced ? l : l.replace(/^ /, ""))).join("\n"));
          }
          const bytes = Buffer.from(text, "utf8");
          const cuts = rawCuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1)));
          expect(parseInPieces(bytes, cuts)).to.deep.equal(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refuses an event larger than its limit", () => {
    const parser = new SseParser(100);
    expect(() => parser.pushText(`data: ${"x".repeat(200)}`)).to.throw(SseLimitError);
    const multi = new SseParser(100);
    expect(() => {
      for (let i = 0; i < 20; i++) multi.pushText("data: 0123456789\n");
    }).to.throw(SseLimitError);
    // Complete in one chunk, so never buffered between chunks: still refused.
    expect(() => new SseParser(100).pushText(`data: ${"x".repeat(200)}\n\n`)).to.throw(SseLimitError);
    expect(new SseParser(100).pushText(`data: ${"x".repeat(100)}\n\n`)).to.deep.equal(["x".repeat(100)]);
  });
});

describe("OpenAI-compatible upstream adapter", function () {
  let sim: SimulatedUpstream;
  let adapter: UpstreamAdapter;
  let client: OpenAI;

  before(async () => {
    sim = await startSimulatedUpstream();
    adapter = createOpenAICompatibleUpstream({ name: "sim", baseUrl: sim.url, apiKey: "sk-test" });
    client = new OpenAI({ baseURL: sim.url, apiKey: "x", maxRetries: 0 });
  });
  after(async () => {
    await adapter.close();
    await sim.close();
  });

  describe("against the simulated upstream", () => {
    it("returns the parsed JSON of a non-streamed call, the same answer the openai client gets", async () => {
      expect(adapter.name).to.equal("sim");
      const r = await adapter.send(chatRequest({ ...hello, max_tokens: 12 }));
      expect(r.kind).to.equal("json");
      if (r.kind !== "json") return;
      expect(r.status).to.equal(200);
      const body = r.body as unknown as OpenAI.Chat.ChatCompletion;
      expect(body.object).to.equal("chat.completion");
      const viaClient = await client.chat.completions.create({
        model: "sim-chat",
        messages: [{ role: "user", content: "hello adapter" }],
        max_tokens: 12,
      });
      expect(body.choices[0].message.content).to.equal(viaClient.choices[0].message.content);
      expect(body.usage).to.deep.equal(viaClient.usage);
    });

    it("returns the data payloads of a stream, usage chunk and [DONE] included", async () => {
      const r = await adapter.send(chatRequest({ ...hello, stream: true, stream_options: { include_usage: true } }));
      expect(r.kind).to.equal("stream");
      expect(r.status).to.equal(200);
      const events = await collect(r);
      expect(events[events.length - 1]).to.equal("[DONE]");
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as OpenAI.Chat.ChatCompletionChunk);
      expect(chunks[0].choices[0].delta.role).to.equal("assistant");
      const usageChunk = chunks[chunks.length - 1];
      expect(usageChunk.choices).to.deep.equal([]);
      const content = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
      const json = await adapter.send(chatRequest(hello));
      const body = (json as unknown as { body: OpenAI.Chat.ChatCompletion }).body;
      expect(content).to.equal(body.choices[0].message.content);
      expect(usageChunk.usage).to.deep.equal(body.usage);
    });

    it("forwards embeddings", async () => {
      const r = await adapter.send({
        endpoint: "/embeddings",
        body: { model: "sim-embedding", input: ["a", "b"], dimensions: 8 },
        signal: new AbortController().signal,
        requestId: "emb-1",
      });
      expect(r.kind).to.equal("json");
      const body = (r as unknown as { body: OpenAI.CreateEmbeddingResponse }).body;
      expect(body.data).to.have.length(2);
      expect(body.data[0].embedding).to.have.length(8);
    });

    it("maps a 429 to bad_status with the upstream's message", async () => {
      const a = createOpenAICompatibleUpstream({
        name: "sim",
        baseUrl: sim.url,
        extraHeaders: { "x-simulate-failure": "429" },
      });
      try {
        const err = await failure(a.send(chatRequest(hello)));
        expect(err.reason).to.equal("bad_status");
        expect(err.status).to.equal(429);
        expect(err.message).to.include("Rate limit reached");
        expect((err.cause as { code?: string }).code).to.equal("rate_limit_exceeded");
      } finally {
        await a.close();
      }
    });

    it("maps a header timeout (stall) to timeout, and the sim's request ends", async () => {
      const a = createOpenAICompatibleUpstream({
        name: "sim",
        baseUrl: sim.url,
        timeoutMs: 250,
        extraHeaders: { "x-simulate-failure": "stall" },
      });
      try {
        const before = sim.stats();
        const err = await failure(a.send(chatRequest(hello)));
        expect(err.reason).to.equal("timeout");
        expect(err.status).to.equal(undefined);
        await waitFor("the stalled request to be dropped", () => sim.stats().aborted === before.aborted + 1);
        await waitFor("no active request", () => sim.stats().active === 0);
      } finally {
        await a.close();
      }
    });

    it("maps a reset before the answer to unreachable", async () => {
      const a = createOpenAICompatibleUpstream({
        name: "sim",
        baseUrl: sim.url,
        extraHeaders: { "x-simulate-failure": "reset" },
      });
      try {
        const err = await failure(a.send(chatRequest(hello)));
        expect(err.reason).to.equal("unreachable");
        expect(err.status).to.equal(undefined);
      } finally {
        await a.close();
      }
    });

    it("throws unreachable from the iterator when the stream is cut mid-way, after the events that arrived", async () => {
      const a = createOpenAICompatibleUpstream({
        name: "sim",
        baseUrl: sim.url,
        extraHeaders: { "x-simulate-failure": "midstream" },
      });
      try {
        const r = await a.send(chatRequest({ ...hello, stream: true }));
        const seen: string[] = [];
        const err = await failure(
          (async () => {
            if (r.kind !== "stream") throw new Error("not a stream");
            for await (const e of r.events) seen.push(e);
          })(),
        );
        expect(err.reason).to.equal("unreachable");
        expect(seen.length).to.be.greaterThan(0);
        expect(seen).to.not.include("[DONE]");
        for (const e of seen) expect(() => JSON.parse(e)).to.not.throw();
      } finally {
        await a.close();
      }
    });

    it("maps an abort while waiting for headers to aborted, and the sim sees the abort", async () => {
      const a = createOpenAICompatibleUpstream({
        name: "sim",
        baseUrl: sim.url,
        extraHeaders: { "x-simulate-failure": "stall" },
      });
      try {
        const before = sim.stats();
        const controller = new AbortController();
        const pending = a.send(chatRequest(hello, controller.signal));
        await waitFor("the sim to receive the request", () => sim.stats().requests === before.requests + 1);
        controller.abort();
        const err = await failure(pending);
        expect(err.reason).to.equal("aborted");
        await waitFor("the sim to see the abort", () => sim.stats().aborted === before.aborted + 1);
        await waitFor("no active request", () => sim.stats().active === 0);
      } finally {
        await a.close();
      }
    });

    it("does not send a request whose signal is already aborted", async () => {
      const before = sim.stats().requests;
      const controller = new AbortController();
      controller.abort();
      const err = await failure(adapter.send(chatRequest(hello, controller.signal)));
      expect(err.reason).to.equal("aborted");
      const after = await adapter.send(chatRequest(hello));
      expect(after.kind).to.equal("json");
      expect(sim.stats().requests).to.equal(before + 1);
    });
  });

  describe("streams against a slow simulated upstream", () => {
    let slow: SimulatedUpstream;
    let slowAdapter: UpstreamAdapter;
    before(async () => {
      slow = await startSimulatedUpstream({ interTokenDelayMs: 15 });
      slowAdapter = createOpenAICompatibleUpstream({ name: "slow", baseUrl: slow.url });
    });
    after(async () => {
      await slowAdapter.close();
      await slow.close();
    });

    it("an abort during the stream throws aborted from the iterator and the sim stops", async () => {
      const before = slow.stats();
      const controller = new AbortController();
      const r = await slowAdapter.send(chatRequest({ ...hello, stream: true }, controller.signal));
      const seen: string[] = [];
      const err = await failure(
        (async () => {
          if (r.kind !== "stream") throw new Error("not a stream");
          for await (const e of r.events) {
            seen.push(e);
            if (seen.length === 2) controller.abort();
          }
        })(),
      );
      expect(err.reason).to.equal("aborted");
      expect(seen).to.have.length(2);
      await waitFor("the sim to see the abort", () => slow.stats().aborted === before.aborted + 1);
      await waitFor("no active request", () => slow.stats().active === 0);
    });

    it("breaking out of the iteration early destroys the upstream body; the adapter keeps working", async () => {
      const before = slow.stats();
      const r = await slowAdapter.send(chatRequest({ ...hello, stream: true }));
      let n = 0;
      if (r.kind !== "stream") throw new Error("not a stream");
      for await (const _ of r.events) {
        if (++n === 3) break;
      }
      expect(n).to.equal(3);
      await waitFor("the sim to see the disconnect", () => slow.stats().aborted === before.aborted + 1);
      await waitFor("no active request", () => slow.stats().active === 0);
      // Iterating again yields nothing: the stream is over.
      const again: string[] = [];
      for await (const e of r.events) again.push(e);
      expect(again).to.deep.equal([]);
      const next = await slowAdapter.send(chatRequest({ ...hello, max_tokens: 3 }));
      expect(next.kind).to.equal("json");
    });
  });

  describe("against purpose-built servers", () => {
    let servers: TinyServer[] = [];
    let adapters: UpstreamAdapter[] = [];
    const serve = async (handler: Parameters<typeof tinyServer>[0]) => {
      const s = await tinyServer(handler);
      servers.push(s);
      return s;
    };
    const adapt = (options: Parameters<typeof createOpenAICompatibleUpstream>[0]) => {
      const a = createOpenAICompatibleUpstream(options);
      adapters.push(a);
      return a;
    };
    afterEach(async () => {
      await Promise.all(adapters.map((a) => a.close()));
      await Promise.all(servers.map((s) => s.close()));
      adapters = [];
      servers = [];
    });

    const json = (res: http.ServerResponse, status: number, value: unknown) => {
      const body = JSON.stringify(value);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };

    it("sends the body unchanged to baseUrl + endpoint, with auth, request id and extra headers", async () => {
      const s = await serve((_req, res) => json(res, 200, { ok: true }));
      const a = adapt({
        name: "custom",
        baseUrl: `${s.url.replace(/\/v1$/, "/api/v1/")}?api-version=2024-10-21`,
        apiKey: "sk-secret",
        extraHeaders: { "HTTP-Referer": "https://tollgate.example", "X-Title": "Tollgate" },
      });
      const body = { model: "m", messages: [{ role: "user", content: "ü" }], top_k: 3, custom: { nested: [1, 2] } };
      const r = await a.send(chatRequest(body, undefined, "req-42"));
      expect(r).to.deep.equal({ kind: "json", status: 200, body: { ok: true } });
      const seen = s.requests[0];
      expect(seen.method).to.equal("POST");
      expect(seen.url).to.equal("/api/v1/chat/completions?api-version=2024-10-21");
      expect(JSON.parse(seen.body)).to.deep.equal(body);
      expect(seen.headers.authorization).to.equal("Bearer sk-secret");
      expect(seen.headers["x-request-id"]).to.equal("req-42");
      expect(seen.headers["content-type"]).to.equal("application/json");
      expect(seen.headers["http-referer"]).to.equal("https://tollgate.example");
      expect(seen.headers["x-title"]).to.equal("Tollgate");
      await a.send({ endpoint: "/embeddings", body: { input: "x" }, signal: new AbortController().signal, requestId: "e" });
      expect(s.requests[1].url).to.equal("/api/v1/embeddings?api-version=2024-10-21");
    });

    it("sends no authorization header without a key", async () => {
      const s = await serve((_req, res) => json(res, 200, {}));
      await adapt({ name: "open", baseUrl: s.url }).send(chatRequest(hello));
      expect(s.requests[0].headers.authorization).to.equal(undefined);
      expect(s.requests[0].url).to.equal("/v1/chat/completions");
    });

    it("reuses keep-alive connections across calls, streams that reached [DONE] included", async () => {
      const s = await serve((req, res, body) => {
        if ((JSON.parse(body) as { stream?: boolean }).stream) {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.write('data: {"n":1}\n\n');
          res.end("data: [DONE]\n\n");
        } else json(res, 200, { n: 0 });
      });
      const a = adapt({ name: "ka", baseUrl: s.url });
      for (let i = 0; i < 10; i++) {
        expect((await a.send(chatRequest(hello))).kind).to.equal("json");
        expect(await collect(await a.send(chatRequest({ ...hello, stream: true })))).to.deep.equal(['{"n":1}', "[DONE]"]);
      }
      expect(s.requests).to.have.length(20);
      // undici frees a connection a microtask after the body ends, so a call made at once may take a
      // second one; without keep-alive there would be 20, and 11 if [DONE] dropped the connection.
      expect(s.connections).to.be.at.most(2);
    });

    it("parses SSE split across TCP writes anywhere, with CRLF, comments and multi-line data", async () => {
      const wire = Buffer.from(
        ": OPENROUTER PROCESSING\r\n\r\n" +
          'data: {"choices":[{"delta":{"content":"hé"}}]}\r\n\r\n' +
          "event: message\r\nid: 2\r\ndata: {\"multi\":\r\ndata: true}\r\n\r\n" +
          ': ping\n\ndata: {"emoji":"🌍"}\n\n' +
          "data: [DONE]\r\n\r\n",
        "utf8",
      );
      const s = await serve((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        let i = 0;
        const step = () => {
          if (i >= wire.length) return res.end();
          const n = 1 + (i % 7); // odd piece sizes: cuts inside CRLF pairs and UTF-8 sequences
          res.write(wire.subarray(i, i + n), () => setTimeout(step, 1));
          i += n;
        };
        step();
      });
      const events = await collect(await adapt({ name: "split", baseUrl: s.url }).send(chatRequest({ ...hello, stream: true })));
      expect(events).to.deep.equal([
        '{"choices":[{"delta":{"content":"hé"}}]}',
        '{"multi":\ntrue}',
        '{"emoji":"🌍"}',
        "[DONE]",
      ]);
    });

    it("ends the iteration when the upstream closes the stream without [DONE]", async () => {
      const s = await serve((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end('data: {"a":1}\n\ndata: {"b":2}\n\n');
      });
      const events = await collect(await adapt({ name: "nodone", baseUrl: s.url }).send(chatRequest({ ...hello, stream: true })));
      expect(events).to.deep.equal(['{"a":1}', '{"b":2}']);
    });

    it("stops after [DONE] even if the upstream sends more", async () => {
      const s = await serve((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end('data: {"a":1}\n\ndata: [DONE]\n\ndata: {"late":true}\n\n');
      });
      const events = await collect(await adapt({ name: "late", baseUrl: s.url }).send(chatRequest({ ...hello, stream: true })));
      expect(events).to.deep.equal(['{"a":1}', "[DONE]"]);
    });

    it("returns JSON when a streaming request is answered with application/json", async () => {
      const s = await serve((_req, res) => json(res, 200, { object: "chat.completion" }));
      const r = await adapt({ name: "nostream", baseUrl: s.url }).send(chatRequest({ ...hello, stream: true }));
      expect(r).to.deep.equal({ kind: "json", status: 200, body: { object: "chat.completion" } });
    });

    it("maps a 500 with an OpenAI error body to bad_status with its message", async () => {
      const s = await serve((_req, res) =>
        json(res, 500, { error: { message: "The model is on fire", type: "server_error", param: null, code: "fire" } }),
      );
      const err = await failure(adapt({ name: "e500", baseUrl: s.url }).send(chatRequest(hello)));
      expect(err.reason).to.equal("bad_status");
      expect(err.status).to.equal(500);
      expect(err.message).to.equal("The model is on fire");
      expect(err.cause).to.deep.equal({ message: "The model is on fire", type: "server_error", param: null, code: "fire" });
    });

    it("maps other error bodies too: Ollama-style strings and plain HTML", async () => {
      let mode = 0;
      const s = await serve((_req, res) => {
        if (mode++ === 0) json(res, 404, { error: 'model "nope" not found, try pulling it first' });
        else {
          res.writeHead(502, { "content-type": "text/html" });
          res.end("<html><body>Bad Gateway</body></html>");
        }
      });
      const a = adapt({ name: "misc", baseUrl: s.url });
      const e1 = await failure(a.send(chatRequest(hello)));
      expect([e1.reason, e1.status, e1.message]).to.deep.equal([
        "bad_status",
        404,
        'model "nope" not found, try pulling it first',
      ]);
      const e2 = await failure(a.send(chatRequest(hello)));
      expect([e2.reason, e2.status]).to.deep.equal(["bad_status", 502]);
      expect(e2.message).to.include("502").and.include("Bad Gateway");
    });

    it("reads only a bounded part of a huge error body", async () => {
      const s = await serve((_req, res) => {
        res.writeHead(500, { "content-type": "text/plain" });
        const block = "x".repeat(64 * 1024);
        let sent = 0;
        const more = () => {
          while (sent < 64) {
            sent++;
            if (!res.write(block)) return res.once("drain", more);
          }
          res.end();
        };
        res.on("error", () => undefined);
        more();
      });
      const err = await failure(adapt({ name: "huge", baseUrl: s.url }).send(chatRequest(hello)));
      expect(err.reason).to.equal("bad_status");
      expect(err.status).to.equal(500);
      expect(err.message.length).to.be.lessThan(400);
    });

    it("maps a 200 that is not JSON to bad_response", async () => {
      const s = await serve((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{not json");
      });
      const err = await failure(adapt({ name: "garbage", baseUrl: s.url }).send(chatRequest(hello)));
      expect(err.reason).to.equal("bad_response");
      expect(err.status).to.equal(200);
    });

    it("maps a refused connection to unreachable", async () => {
      const s = await serve(() => undefined);
      const url = s.url;
      await s.close();
      servers = servers.filter((x) => x !== s);
      const err = await failure(adapt({ name: "gone", baseUrl: url }).send(chatRequest(hello)));
      expect(err.reason).to.equal("unreachable");
      expect(err.status).to.equal(undefined);
      expect((err.cause as { code?: string }).code).to.equal("ECONNREFUSED");
    });

    it("maps a connection reset mid-stream to unreachable from the iterator", async () => {
      const s = await serve((req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write('data: {"a":1}\n\n', () => setTimeout(() => req.socket.destroy(), 5));
      });
      const r = await adapt({ name: "reset", baseUrl: s.url }).send(chatRequest({ ...hello, stream: true }));
      const seen: string[] = [];
      const err = await failure(
        (async () => {
          if (r.kind !== "stream") throw new Error("not a stream");
          for await (const e of r.events) seen.push(e);
        })(),
      );
      expect(seen).to.deep.equal(['{"a":1}']);
      expect(err.reason).to.equal("unreachable");
    });

    it("early break closes the upstream connection before the response finished", async () => {
      let write: (() => void) | undefined;
      const s = await serve((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write('data: {"i":0}\n\n');
        write = () => res.write('data: {"i":1}\n\n');
      });
      const r = await adapt({ name: "brk", baseUrl: s.url }).send(chatRequest({ ...hello, stream: true }));
      if (r.kind !== "stream") throw new Error("not a stream");
      for await (const e of r.events) {
        expect(e).to.equal('{"i":0}');
        break;
      }
      await waitFor("the server to see the response closed early", () => s.closedEarly === 1);
      write?.();
    });

    it("fails calls made after close() with unreachable", async () => {
      const s = await serve((_req, res) => json(res, 200, {}));
      const a = adapt({ name: "closed", baseUrl: s.url });
      await a.send(chatRequest(hello));
      await a.close();
      await a.close();
      const err = await failure(a.send(chatRequest(hello)));
      expect(err.reason).to.equal("unreachable");
    });
  });
});
