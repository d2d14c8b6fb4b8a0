import { expect } from "chai";
import { spawn } from "node:child_process";
import path from "node:path";
import OpenAI from "openai";
import { countTokens as o200kCount } from "gpt-tokenizer/encoding/o200k_base";
import {
  countChatPromptTokens,
  countMessageTokens,
  simulatedEmbedding,
  startSimulatedUpstream,
  type SimulatedUpstream,
} from "../../server/upstream/simulated-upstream";
import { parseArgs } from "../../server/upstream/simulated-main";

/** The reference count, computed independently of the simulator's helper. */
const tokens = (text: string) => o200kCount(text, { disallowedSpecial: new Set() });

async function waitFor(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

type Params = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
const ask = (content: string, extra: Partial<Params> = {}): Params => ({
  model: "sim-chat",
  messages: [{ role: "user", content }],
  ...extra,
});

describe("simulated upstream (driven by the official openai client)", function () {
  let sim: SimulatedUpstream;
  let client: OpenAI;

  before(async () => {
    sim = await startSimulatedUpstream();
    client = new OpenAI({ baseURL: sim.url, apiKey: "x", maxRetries: 0 });
  });
  after(async () => {
    await sim.close();
  });

  describe("chat completions", () => {
    it("answers in the OpenAI response shape, with usage counted by o200k", async () => {
      const r = await client.chat.completions.create(ask("Tell me about rivers."));
      expect(r.object).to.equal("chat.completion");
      expect(r.id).to.match(/^chatcmpl-/);
      expect(r.created).to.be.a("number");
      expect(r.model).to.equal("sim-chat");
      expect(r.choices).to.have.length(1);
      const choice = r.choices[0];
      expect(choice.message.role).to.equal("assistant");
      expect(choice.finish_reason).to.equal("stop");
      const content = choice.message.content!;
      expect(content).to.match(/^[A-Z][a-z]+( [a-z]+,?)+\.( [A-Z][a-z]+( [a-z]+,?)+\.)*$/, "readable sentences");
      const usage = r.usage!;
      expect(usage.completion_tokens).to.equal(tokens(content));
      expect(usage.completion_tokens).to.be.within(15, 260);
      // 3 priming + (3 per message + "user" + content)
      expect(usage.prompt_tokens).to.equal(3 + 3 + tokens("user") + tokens("Tell me about rivers."));
      expect(usage.total_tokens).to.equal(usage.prompt_tokens + usage.completion_tokens);
      expect(usage.prompt_tokens_details!.cached_tokens).to.equal(0);
      expect(usage.completion_tokens_details!.reasoning_tokens).to.equal(0);
    });

    it("echoes whatever model name it is given", async () => {
      const r = await client.chat.completions.create(ask("hi", { model: "some-org/any-model:free" }));
      expect(r.model).to.equal("some-org/any-model:free");
    });

    it("counts names and special-token text in the prompt like OpenAI's formula", async () => {
      const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
        { role: "system", content: "You are terse. <|endoftext|> is just text here." },
        { role: "user", name: "alice", content: "Hello there" },
      ];
      const r = await client.chat.completions.create({ model: "sim-chat", messages });
      const expected =
        3 +
        (3 + tokens("system") + tokens("You are terse. <|endoftext|> is just text here.")) +
        (3 + tokens("user") + tokens("alice") + 1 + tokens("Hello there"));
      expect(r.usage!.prompt_tokens).to.equal(expected);
      expect(countChatPromptTokens(messages)).to.equal(expected);
    });

    it("counts a tool-call turn: call names and arguments, tool_call_id and the result", async () => {
      const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
        { role: "user", content: "weather?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }],
        },
        { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: "-3 C, snow" }] },
      ];
      const r = await client.chat.completions.create({ model: "sim-chat", messages });
      const expected =
        3 +
        (3 + tokens("user") + tokens("weather?")) +
        (3 + tokens("assistant") + tokens("get_weather") + tokens('{"city":"Oslo"}')) +
        (3 + tokens("tool") + tokens("call_1") + tokens("-3 C, snow"));
      expect(r.usage!.prompt_tokens).to.equal(expected);
    });

    it("is deterministic: same request, same text; another message or model, other text", async () => {
      const a = await client.chat.completions.create(ask("determinism"));
      const b = await client.chat.completions.create(ask("determinism"));
      const c = await client.chat.completions.create(ask("determinism!"));
      const d = await client.chat.completions.create(ask("determinism", { model: "sim-chat-mini" }));
      expect(b.choices[0].message.content).to.equal(a.choices[0].message.content);
      expect(b.usage!.completion_tokens).to.equal(a.usage!.completion_tokens);
      expect(c.choices[0].message.content).to.not.equal(a.choices[0].message.content);
      expect(d.choices[0].message.content).to.not.equal(a.choices[0].message.content);
    });

    it("honours max_tokens and max_completion_tokens exactly, across caps", async () => {
      const natural = await client.chat.completions.create(ask("a long answer please"));
      const full = natural.choices[0].message.content!;
      const naturalTokens = natural.usage!.completion_tokens;
      expect(naturalTokens).to.be.greaterThan(13);
      for (const cap of [1, 2, 3, 5, 8, 13, naturalTokens - 1, naturalTokens, naturalTokens + 50]) {
        for (const key of ["max_tokens", "max_completion_tokens"] as const) {
          const r = await client.chat.completions.create(ask("a long answer please", { [key]: cap }));
          const content = r.choices[0].message.content!;
          const used = r.usage!.completion_tokens;
          expect(used, `${key}=${cap}`).to.equal(tokens(content));
          expect(used, `${key}=${cap}`).to.be.at.most(cap);
          expect(full.startsWith(content), `${key}=${cap} is a prefix`).to.equal(true);
          if (cap < naturalTokens) {
            expect(r.choices[0].finish_reason).to.equal("length");
            expect(used, `${key}=${cap} uses the whole cap`).to.equal(cap);
          } else {
            expect(r.choices[0].finish_reason).to.equal("stop");
            expect(content).to.equal(full);
          }
        }
      }
    });

    it("rejects a cap below 1 with a 400", async () => {
      const err = await client.chat.completions.create(ask("x", { max_tokens: 0 })).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).to.equal("max_tokens");
    });

    it("reports reasoning tokens for a reasoning model, inside completion_tokens and the cap", async () => {
      const r = await client.chat.completions.create(ask("think first", { model: "sim-reasoning" }));
      const reasoning = r.usage!.completion_tokens_details!.reasoning_tokens!;
      expect(reasoning).to.be.greaterThan(0);
      expect(r.usage!.completion_tokens).to.equal(tokens(r.choices[0].message.content!) + reasoning);
      for (const cap of [1, 4, 10, 25]) {
        const c = await client.chat.completions.create(ask("think first", { model: "sim-reasoning", max_completion_tokens: cap }));
        const capped = c.usage!;
        const content = c.choices[0].message.content!;
        expect(capped.completion_tokens, `cap ${cap}`).to.equal(
          tokens(content) + capped.completion_tokens_details!.reasoning_tokens!,
        );
        expect(capped.completion_tokens, `cap ${cap}`).to.equal(cap);
        expect(c.choices[0].finish_reason).to.equal("length");
      }
      const plain = await client.chat.completions.create(ask("think first"));
      expect(plain.usage!.completion_tokens_details!.reasoning_tokens).to.equal(0);
    });

    it("reports the repeated prefix as cached tokens", async () => {
      const system: OpenAI.Chat.ChatCompletionMessageParam = {
        role: "system",
        content: "You are the cache test assistant. Always answer about caching.",
      };
      const u1: OpenAI.Chat.ChatCompletionMessageParam = { role: "user", content: "first question" };
      const first = await client.chat.completions.create({ model: "sim-cache", messages: [system, u1] });
      expect(first.usage!.prompt_tokens_details!.cached_tokens).to.equal(0);

      const second = await client.chat.completions.create({
        model: "sim-cache",
        messages: [system, { role: "user", content: "second question" }],
      });
      expect(second.usage!.prompt_tokens_details!.cached_tokens).to.equal(countMessageTokens(system));
      expect(countMessageTokens(system)).to.equal(3 + tokens("system") + tokens(system.content as string));

      // The next turn of the first conversation reuses system + first question.
      const assistant: OpenAI.Chat.ChatCompletionMessageParam = {
        role: "assistant",
        content: first.choices[0].message.content,
      };
      const third = await client.chat.completions.create({
        model: "sim-cache",
        messages: [system, u1, assistant, { role: "user", content: "and then?" }],
      });
      expect(third.usage!.prompt_tokens_details!.cached_tokens).to.equal(
        countMessageTokens(system) + countMessageTokens(u1),
      );
      expect(third.usage!.prompt_tokens_details!.cached_tokens).to.be.lessThan(third.usage!.prompt_tokens);

      // The cache is per model.
      const other = await client.chat.completions.create({ model: "sim-cache-2", messages: [system, u1] });
      expect(other.usage!.prompt_tokens_details!.cached_tokens).to.equal(0);
    });

    const weatherTool: OpenAI.Chat.ChatCompletionTool = {
      type: "function",
      function: {
        name: "get_weather",
        parameters: {
          type: "object",
          properties: { city: { type: "string" }, days: { type: "integer" }, unit: { enum: ["C", "F"] } },
          required: ["city"],
        },
      },
    };
    const timeTool: OpenAI.Chat.ChatCompletionTool = {
      type: "function",
      function: { name: "get_time", parameters: { type: "object", properties: { zone: { type: "string" } } } },
    };

    it("returns a tool call when tool_choice is required or names a function", async () => {
      const r = await client.chat.completions.create(
        ask("weather in Paris?", { tools: [weatherTool, timeTool], tool_choice: { type: "function", function: { name: "get_weather" } } }),
      );
      const choice = r.choices[0];
      expect(choice.finish_reason).to.equal("tool_calls");
      expect(choice.message.content).to.equal(null);
      const calls = choice.message.tool_calls!;
      expect(calls).to.have.length(1);
      const call = calls[0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
      expect(call.type).to.equal("function");
      expect(call.id).to.match(/^call_/);
      expect(call.function.name).to.equal("get_weather");
      const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
      expect(args.city).to.be.a("string");
      expect(Number.isInteger(args.days)).to.equal(true);
      expect(["C", "F"]).to.include(args.unit);
      expect(r.usage!.completion_tokens).to.equal(tokens("get_weather") + tokens(call.function.arguments));
      expect(r.usage!.prompt_tokens).to.equal(
        3 + 3 + tokens("user") + tokens("weather in Paris?") + tokens(JSON.stringify([weatherTool, timeTool])),
      );

      const again = await client.chat.completions.create(
        ask("weather in Paris?", { tools: [weatherTool, timeTool], tool_choice: { type: "function", function: { name: "get_weather" } } }),
      );
      expect((again.choices[0].message.tool_calls![0] as typeof call).function.arguments).to.equal(call.function.arguments);

      const required = await client.chat.completions.create(ask("anything", { tools: [weatherTool, timeTool], tool_choice: "required" }));
      expect(required.choices[0].finish_reason).to.equal("tool_calls");
      const name = (required.choices[0].message.tool_calls![0] as typeof call).function.name;
      expect(["get_weather", "get_time"]).to.include(name);

      const auto = await client.chat.completions.create(ask("anything", { tools: [weatherTool], tool_choice: "auto" }));
      expect(auto.choices[0].finish_reason).to.equal("stop");
      expect(auto.choices[0].message.tool_calls).to.equal(undefined);
    });

    it("streams a tool call the client can reassemble", async () => {
      const params = ask("weather in Oslo?", { tools: [weatherTool], tool_choice: "required" as const });
      const json = await client.chat.completions.create(params);
      const stream = await client.chat.completions.create({ ...params, stream: true });
      let name = "";
      let args = "";
      let finish: string | null = null;
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta;
        for (const tc of delta?.tool_calls ?? []) {
          name += tc.function?.name ?? "";
          args += tc.function?.arguments ?? "";
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      const expected = json.choices[0].message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
      expect(name).to.equal("get_weather");
      expect(args).to.equal(expected.function.arguments);
      expect(finish).to.equal("tool_calls");
    });

    it("accepts unknown parameters and names them in x-sim-extra-params", async () => {
      const body = { ...ask("extras"), top_k: 5, "repetition_penalty": 1.1, temperature: 0.2 } as Params;
      const { data, response } = await client.chat.completions.create(body).withResponse();
      expect(data.choices[0].finish_reason).to.equal("stop");
      expect(response.headers.get("x-sim-extra-params")).to.equal("top_k,repetition_penalty");
      expect(JSON.stringify(data)).to.not.include("top_k");
      const plain = await client.chat.completions.create(ask("extras")).withResponse();
      expect(plain.response.headers.get("x-sim-extra-params")).to.equal(null);
    });
  });

  describe("streaming", () => {
    it("streams chunks whose content equals the non-streamed answer, no usage unless asked", async () => {
      const json = await client.chat.completions.create(ask("stream me"));
      const stream = await client.chat.completions.create({ ...ask("stream me"), stream: true });
      const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
      for await (const c of stream) chunks.push(c);
      expect(chunks.length).to.be.greaterThan(3);
      for (const c of chunks) {
        expect(c.object).to.equal("chat.completion.chunk");
        expect(c.model).to.equal("sim-chat");
        expect(c.id).to.equal(chunks[0].id);
        expect(c.usage ?? null).to.equal(null);
      }
      expect(chunks[0].choices[0].delta.role).to.equal("assistant");
      const content = chunks.map((c) => c.choices[0].delta.content ?? "").join("");
      expect(content).to.equal(json.choices[0].message.content);
      const deltas = chunks.filter((c) => c.choices[0].delta.content);
      expect(deltas.length).to.be.greaterThan(json.usage!.completion_tokens / 5, "a few tokens per delta");
      expect(chunks[chunks.length - 1].choices[0].finish_reason).to.equal("stop");
      expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).to.equal(true);
    });

    it("adds a usage chunk with no choices when stream_options.include_usage is set", async () => {
      const json = await client.chat.completions.create(ask("usage please", { max_tokens: 9 }));
      const stream = await client.chat.completions.create({
        ...ask("usage please", { max_tokens: 9 }),
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
      for await (const c of stream) chunks.push(c);
      const last = chunks[chunks.length - 1];
      expect(last.choices).to.deep.equal([]);
      expect(last.usage).to.deep.equal(json.usage);
      expect(last.usage!.completion_tokens).to.equal(9);
      expect(chunks[chunks.length - 2].choices[0].finish_reason).to.equal("length");
      const content = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
      expect(content).to.equal(json.choices[0].message.content);
      expect(tokens(content)).to.equal(9);
    });
  });

  describe("embeddings", () => {
    it("returns deterministic unit vectors as floats, with o200k usage", async () => {
      const r = await client.embeddings.create({ model: "sim-embedding", input: ["hello world", "bye"], encoding_format: "float" });
      expect(r.object).to.equal("list");
      expect(r.model).to.equal("sim-embedding");
      expect(r.data.map((d) => d.index)).to.deep.equal([0, 1]);
      for (const d of r.data) {
        expect(d.object).to.equal("embedding");
        expect(d.embedding).to.have.length(16);
        const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
        expect(norm).to.be.closeTo(1, 1e-5);
      }
      expect(r.data[0].embedding).to.not.deep.equal(r.data[1].embedding);
      expect(r.usage.prompt_tokens).to.equal(tokens("hello world") + tokens("bye"));
      expect(r.usage.total_tokens).to.equal(r.usage.prompt_tokens);
      const again = await client.embeddings.create({ model: "sim-embedding", input: "hello world", encoding_format: "float" });
      expect(again.data[0].embedding).to.deep.equal(r.data[0].embedding);
      expect(again.data[0].embedding).to.deep.equal(simulatedEmbedding("sim-embedding", "s\u0000hello world", 16));
    });

    it("serves base64 (the client's default) that decodes to the same floats", async () => {
      const sentFormats: unknown[] = [];
      const spying = new OpenAI({
        baseURL: sim.url,
        apiKey: "x",
        maxRetries: 0,
        fetch: async (url: RequestInfo | URL, init?: RequestInit) => {
          sentFormats.push((JSON.parse(String(init?.body)) as { encoding_format?: unknown }).encoding_format);
          return fetch(url, init);
        },
      });
      const b64 = await spying.embeddings.create({ model: "sim-embedding", input: ["alpha", "beta"], dimensions: 24 });
      expect(sentFormats).to.deep.equal(["base64"]);
      const floats = await client.embeddings.create({
        model: "sim-embedding",
        input: ["alpha", "beta"],
        dimensions: 24,
        encoding_format: "float",
      });
      expect(b64.data[0].embedding).to.have.length(24);
      expect(b64.data.map((d) => Array.from(d.embedding))).to.deep.equal(floats.data.map((d) => d.embedding));
    });

    it("accepts token arrays and counts them as tokens", async () => {
      const r = await client.embeddings.create({ model: "sim-embedding", input: [[1, 2, 3], [4, 5]], encoding_format: "float" });
      expect(r.data).to.have.length(2);
      expect(r.usage.prompt_tokens).to.equal(5);
      const single = await client.embeddings.create({ model: "sim-embedding", input: [7, 8, 9], encoding_format: "float" });
      expect(single.data).to.have.length(1);
      expect(single.usage.prompt_tokens).to.equal(3);
    });
  });

  describe("models and bad input", () => {
    it("lists models", async () => {
      const ids: string[] = [];
      for await (const m of client.models.list()) ids.push(m.id);
      expect(ids).to.include.members(["sim-chat", "sim-reasoning", "sim-embedding"]);
      const one = await client.models.retrieve("anything-goes");
      expect(one.id).to.equal("anything-goes");
    });

    it("answers malformed JSON with a 400 OpenAI error", async () => {
      const res = await fetch(`${sim.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"model": "sim-chat", "messages": [',
      });
      expect(res.status).to.equal(400);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body.error.type).to.equal("invalid_request_error");
      expect(body.error.message).to.match(/parse the JSON body/);
    });

    it("answers an unknown route with a 404 OpenAI error", async () => {
      const res = await fetch(`${sim.url}/completions/legacy`, { method: "POST", body: "{}" });
      expect(res.status).to.equal(404);
      expect(((await res.json()) as { error: { message: string } }).error.message).to.include("Invalid URL");
    });

    it("rejects missing messages with a typed 400", async () => {
      const err = await client.chat.completions
        .create({ model: "sim-chat", messages: [] })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).to.equal("messages");
    });
  });

  describe("failure injection", () => {
    const failing = (mode: string) => ({ headers: { "x-simulate-failure": mode } });

    it("500 and 503 surface as InternalServerError, 429 as RateLimitError", async () => {
      for (const [mode, type, status] of [
        ["500", OpenAI.InternalServerError, 500],
        ["503", OpenAI.InternalServerError, 503],
        ["429", OpenAI.RateLimitError, 429],
      ] as const) {
        const err = await client.chat.completions.create(ask("fail"), failing(mode)).catch((e: unknown) => e);
        expect(err, mode).to.be.instanceOf(type);
        expect((err as InstanceType<typeof OpenAI.APIError>).status).to.equal(status);
        expect((err as InstanceType<typeof OpenAI.APIError>).message).to.include("simulated");
      }
      const embedErr = await client.embeddings
        .create({ model: "e", input: "x" }, failing("429"))
        .catch((e: unknown) => e);
      expect(embedErr).to.be.instanceOf(OpenAI.RateLimitError);
    });

    it("reset surfaces as APIConnectionError and is not counted as a client abort", async () => {
      const before = sim.stats();
      const err = await client.chat.completions.create(ask("reset"), failing("reset")).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.APIConnectionError);
      await waitFor("the reset request to finish", () => sim.stats().active === 0);
      expect(sim.stats().aborted).to.equal(before.aborted);
      expect(sim.stats().requests).to.equal(before.requests + 1);
    });

    it("stall never answers; the client's timeout surfaces and the sim sees the abort", async () => {
      const before = sim.stats();
      const err = await client.chat.completions
        .create(ask("stall"), { ...failing("stall"), timeout: 300 })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.APIConnectionTimeoutError);
      await waitFor("the stalled request to be aborted", () => sim.stats().aborted === before.aborted + 1);
      await waitFor("no active request", () => sim.stats().active === 0);
    });

    it("x-simulate-latency-ms delays the answer (a short client timeout hits it)", async () => {
      const before = sim.stats();
      const err = await client.chat.completions
        .create(ask("slow"), { headers: { "x-simulate-latency-ms": "60000" }, timeout: 200 })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.APIConnectionTimeoutError);
      await waitFor("the delayed request to be aborted", () => sim.stats().aborted === before.aborted + 1);
      const ok = await client.chat.completions.create(ask("slow"), { headers: { "x-simulate-latency-ms": "5" } });
      expect(ok.choices[0].finish_reason).to.equal("stop");
    });

    it("midstream cuts a stream after some chunks", async () => {
      const stream = await client.chat.completions.create({ ...ask("cut me"), stream: true }, failing("midstream"));
      const seen: string[] = [];
      const err = await (async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? "");
      })().catch((e: unknown) => e);
      expect(err).to.be.instanceOf(Error);
      expect(seen.length).to.be.greaterThan(0);
      const json = await client.chat.completions.create(ask("cut me"));
      expect(json.choices[0].message.content!.startsWith(seen.join(""))).to.equal(true);
      expect(seen.join("")).to.not.equal(json.choices[0].message.content);
    });

    it("rejects an unknown failure mode instead of ignoring it", async () => {
      const err = await client.chat.completions.create(ask("x"), failing("explode")).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.BadRequestError);
    });
  });

  describe("context limit", () => {
    let small: SimulatedUpstream;
    let smallClient: OpenAI;
    before(async () => {
      small = await startSimulatedUpstream({ maxContextChars: 1000 });
      smallClient = new OpenAI({ baseURL: small.url, apiKey: "x", maxRetries: 0 });
    });
    after(async () => {
      await small.close();
    });

    it("answers text beyond maxContextChars with context_length_exceeded", async () => {
      const ok = await smallClient.chat.completions.create(ask("y".repeat(900)));
      expect(ok.choices[0].finish_reason).to.equal("stop");
      const err = await smallClient.chat.completions.create(ask("y".repeat(1001))).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).to.equal("context_length_exceeded");
      const embedErr = await smallClient.embeddings
        .create({ model: "e", input: ["z".repeat(600), "z".repeat(600)] })
        .catch((e: unknown) => e);
      expect((embedErr as InstanceType<typeof OpenAI.BadRequestError>).code).to.equal("context_length_exceeded");
    });

    it("refuses a body too large to parse, without reading it into memory", async () => {
      const err = await smallClient.chat.completions
        .create({ model: "m", messages: [{ role: "user", content: "q" }], padding: "p".repeat(2_000_000) } as Params)
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).to.equal("context_length_exceeded");
    });
  });

  describe("failureRate", () => {
    const sims: SimulatedUpstream[] = [];
    after(async () => {
      await Promise.all(sims.map((s) => s.close()));
    });

    async function pattern(seed: number): Promise<string> {
      const s = await startSimulatedUpstream({ failureRate: 0.5, seed });
      sims.push(s);
      const c = new OpenAI({ baseURL: s.url, apiKey: "x", maxRetries: 0 });
      let out = "";
      for (let i = 0; i < 24; i++) {
        const r = await c.chat.completions.create(ask(`n${i}`)).then(
          () => "ok",
          (e: unknown) => (e instanceof OpenAI.InternalServerError ? "F" : "?"),
        );
        out += r === "ok" ? "." : r;
      }
      return out;
    }

    it("fails a deterministic share of requests, the same sequence for the same seed", async () => {
      const a = await pattern(7);
      const b = await pattern(7);
      const c = await pattern(8);
      expect(a).to.equal(b);
      expect(a).to.match(/^[.F]+$/);
      expect(a).to.include("F");
      expect(a).to.include(".");
      expect(c).to.not.equal(a);
    });
  });

  describe("client disconnect", () => {
    let slow: SimulatedUpstream;
    before(async () => {
      slow = await startSimulatedUpstream({ interTokenDelayMs: 20 });
    });
    after(async () => {
      await slow.close();
    });

    it("stops generating when the client goes away mid-stream and counts the abort", async () => {
      const c = new OpenAI({ baseURL: slow.url, apiKey: "x", maxRetries: 0 });
      const controller = new AbortController();
      const stream = await c.chat.completions.create({ ...ask("slow stream"), stream: true }, { signal: controller.signal });
      let n = 0;
      const err = await (async () => {
        for await (const _ of stream) {
          if (++n === 2) controller.abort();
        }
      })().catch((e: unknown) => e);
      // The client ends the iteration quietly (or with APIUserAbortError, depending on timing).
      if (err !== undefined) expect(err).to.be.instanceOf(OpenAI.APIUserAbortError);
      expect(n).to.be.lessThan(6, "iteration stopped soon after the abort");
      await waitFor("the sim to see the abort", () => slow.stats().aborted === 1);
      await waitFor("no active request", () => slow.stats().active === 0);
    });
  });

  describe("simulated-main", () => {
    it("parses its options from argv", () => {
      expect(parseArgs(["--port", "8080", "--latency-ms=5", "--failure-rate", "0.25", "--host", "0.0.0.0"])).to.deep.equal({
        port: 8080,
        latencyMs: 5,
        failureRate: 0.25,
        host: "0.0.0.0",
      });
      expect(() => parseArgs(["--port"])).to.throw(/needs a value/);
      expect(() => parseArgs(["--bogus", "1"])).to.throw(/unknown option/);
      expect(() => parseArgs(["--failure-rate", "2"])).to.throw(/between 0 and 1/);
      expect(() => parseArgs(["--port", "abc"])).to.throw(/not a number/);
    });

    it("starts, prints its URL as one JSON line, serves, and exits 0 on SIGTERM", async function () {
      this.timeout(60_000);
      const root = path.resolve(__dirname, "../..");
      const child = spawn(
        process.execPath,
        ["-r", "ts-node/register/transpile-only", "server/upstream/simulated-main.ts", "--port", "0", "--latency-ms", "0"],
        { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
      );
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let buf = "";
          let err = "";
          child.stdout.on("data", (d: Buffer) => {
            buf += d.toString();
            const nl = buf.indexOf("\n");
            if (nl !== -1) resolve(buf.slice(0, nl));
          });
          child.stderr.on("data", (d: Buffer) => (err += d.toString()));
          child.on("exit", (code) => reject(new Error(`exited early (${code}): ${err}`)));
        });
        const { url } = JSON.parse(line) as { url: string };
        expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
        const c = new OpenAI({ baseURL: url, apiKey: "x", maxRetries: 0 });
        const r = await c.chat.completions.create(ask("from a child process"));
        expect(r.choices[0].message.content).to.be.a("string").and.not.equal("");
      } finally {
        child.kill("SIGTERM");
      }
      expect(await exited).to.equal(0);
    });
  });
});
