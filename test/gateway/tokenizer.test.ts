import { execFile } from "node:child_process";
import path from "node:path";
import { expect } from "chai";
import fc from "fast-check";
import { encode as gptTokenizerEncode } from "gpt-tokenizer/encoding/o200k_base";
import { get_encoding, type Tiktoken } from "tiktoken";
import {
  ENCODING_NAMES,
  Tokenizer,
  TokenizerBusy,
  TokenizerClosedError,
  TokenizerInputTooLarge,
  TokenizerWorkerError,
  type EncodingName,
} from "../../server/gateway/metering/tokenizer";
import {
  IMAGE_LOW_DETAIL_TOKENS,
  IMAGE_PART_TOKENS,
  REPLY_PRIMING_TOKENS,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_NAME,
  TOKENS_PER_TOOL_CALL,
  TOOL_DEFINITIONS_OVERHEAD,
} from "../../server/gateway/metering/chat-tokens";
import {
  AWKWARD_UNICODE,
  CODE,
  ENGLISH,
  HANGUL,
  KOREAN,
  LONG_RUNS,
  LOWER,
  SAMPLES,
  SPECIAL_TOKEN_STRINGS,
  randomRun,
} from "../helpers/tokenizer-corpora";

function activeMessagePorts(): number {
  return process.getActiveResourcesInfo().filter((type) => type === "MessagePort" || type === "Worker").length;
}

describe("gateway tokenizer", function () {
  this.timeout(120_000);

  const reference = new Map<EncodingName, Tiktoken>();
  const ref = (encoding: EncodingName, text: string): number => {
    const tiktoken = reference.get(encoding);
    if (!tiktoken) throw new Error(`no reference for ${encoding}`);
    return tiktoken.encode_ordinary(text).length;
  };
  const open: Tokenizer[] = [];
  const make = (options?: ConstructorParameters<typeof Tokenizer>[0]): Tokenizer => {
    const tokenizer = new Tokenizer(options);
    open.push(tokenizer);
    return tokenizer;
  };

  /** Shared: the default tokenizer, and one that counts every non-empty text on its workers. */
  let inline: Tokenizer;
  let workersOnly: Tokenizer;

  before(function () {
    for (const encoding of ENCODING_NAMES) reference.set(encoding, get_encoding(encoding));
    inline = make();
    workersOnly = make({ inlineLimitChars: 0 });
  });

  after(async function () {
    await Promise.all(open.map((tokenizer) => tokenizer.close()));
    for (const tiktoken of reference.values()) tiktoken.free();
    reference.clear();
  });

  describe("exact counts", function () {
    it("countSync equals tiktoken for English, Korean and code, both encodings", function () {
      const tokenizer = make();
      for (const encoding of ENCODING_NAMES) {
        for (const [name, text] of Object.entries(SAMPLES)) {
          expect(tokenizer.countSync(encoding, text), `${encoding} ${name}`).to.equal(ref(encoding, text));
        }
        expect(tokenizer.countSync(encoding, "")).to.equal(0);
      }
      expect(tokenizer.workerCount).to.equal(0); // all inline
    });

    it("count on worker threads equals tiktoken, for small texts and texts over the inline limit", async function () {
      const twoWorkers = make({ inlineLimitChars: 0, workers: 2 });
      const byDefault = make();
      for (const encoding of ENCODING_NAMES) {
        for (const [name, text] of Object.entries(SAMPLES)) {
          expect(await twoWorkers.count(encoding, text), `${encoding} ${name}`).to.equal(ref(encoding, text));
          const long = `${text}\n\n`.repeat(40); // > 4096 chars: the default tokenizer sends it to a worker
          expect(long.length).to.be.greaterThan(byDefault.inlineLimitChars);
          expect(await byDefault.count(encoding, long), `${encoding} ${name} x40`).to.equal(ref(encoding, long));
        }
      }
      expect(twoWorkers.workerCount).to.equal(1); // sequential jobs reuse one thread
      expect(byDefault.workerCount).to.equal(1);
    });

    it("special-token strings are ordinary text, equal to tiktoken's encode_ordinary", async function () {
      expect(() => gptTokenizerEncode("<|endoftext|>")).to.throw(/special token/i); // the hazard avoided
      for (const encoding of ENCODING_NAMES) {
        for (const text of SPECIAL_TOKEN_STRINGS) {
          const expected = ref(encoding, text);
          expect(expected).to.be.greaterThan(1);
          expect(inline.countSync(encoding, text), text).to.equal(expected);
          expect(await workersOnly.count(encoding, text), text).to.equal(expected);
        }
      }
    });

    it("lone surrogates and emoji/ZWJ sequences do not throw and count like tiktoken (>= 1)", async function () {
      for (const encoding of ENCODING_NAMES) {
        for (const text of [...AWKWARD_UNICODE, "\ud800".repeat(5000)]) {
          const expected = ref(encoding, text);
          const sync = text.length <= inline.inlineLimitChars ? inline.countSync(encoding, text) : undefined;
          const onWorker = await workersOnly.count(encoding, text);
          expect(onWorker, JSON.stringify(text.slice(0, 20))).to.be.at.least(1);
          expect(onWorker).to.equal(expected);
          if (sync !== undefined) expect(sync).to.equal(expected);
        }
      }
    });

    it("long runs are never under-counted: exact versus tiktoken, whatever maxPieceChars", function () {
      const byDefault = make({ inlineLimitChars: 10_000 });
      const tiny = make({ inlineLimitChars: 10_000, maxPieceChars: 1 }); // every multi-char piece takes the heap merge
      const libraryOnly = make({ inlineLimitChars: 10_000, maxPieceChars: 10_000 }); // gpt-tokenizer's quadratic merge
      for (const encoding of ENCODING_NAMES) {
        for (const [name, run] of Object.entries(LONG_RUNS)) {
          const expected = ref(encoding, run);
          expect(byDefault.countSync(encoding, run), `${encoding} ${name}`).to.equal(expected);
          expect(tiny.countSync(encoding, run), `${encoding} ${name} maxPieceChars=1`).to.equal(expected);
          expect(libraryOnly.countSync(encoding, run), `${encoding} ${name} library merge`).to.equal(expected);
          // The same run embedded in prose (piece boundaries shift, nothing else does).
          const embedded = `${ENGLISH} ${run}. ${KOREAN}`;
          expect(byDefault.countSync(encoding, embedded), `${encoding} ${name} embedded`).to.equal(
            ref(encoding, embedded),
          );
        }
      }
    });

    it("equals tiktoken on arbitrary strings (property, both merge paths)", function () {
      const byDefault = make({ inlineLimitChars: 100_000 });
      const tiny = make({ inlineLimitChars: 100_000, maxPieceChars: 1 });
      const unit = fc.oneof(
        { arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }), weight: 3 },
        { arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }), weight: 3 },
        { arbitrary: fc.constantFrom(" ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "<|endoftext|>"), weight: 2 },
        { arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), weight: 1 },
        { arbitrary: fc.constantFrom(...LOWER.split(""), ...HANGUL.slice(0, 20), "A", "Z", "0", "9"), weight: 6 },
      );
      const text = fc.array(unit, { maxLength: 300 }).map((parts) => parts.join(""));
      fc.assert(
        fc.property(fc.constantFrom(...ENCODING_NAMES), text, (encoding, value) => {
          const expected = ref(encoding, value);
          expect(byDefault.countSync(encoding, value)).to.equal(expected);
          expect(tiny.countSync(encoding, value)).to.equal(expected);
        }),
        { numRuns: 300, seed: 20_240_601 },
      );
    });

    it("upperBound (UTF-8 bytes) is >= the reference count for random unicode strings", function () {
      let tight = 0;
      fc.assert(
        fc.property(
          fc.constantFrom(...ENCODING_NAMES),
          fc.oneof(
            fc.string({ unit: "binary", maxLength: 200 }),
            fc.string({ unit: "grapheme", maxLength: 200 }),
            fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 200 }),
          ),
          (encoding, value) => {
            const expected = ref(encoding, value);
            const bound = Tokenizer.upperBound(value);
            expect(bound).to.be.at.least(expected);
            if (bound === expected) tight++;
          },
        ),
        { numRuns: 500, seed: 7 },
      );
      expect(tight).to.be.greaterThan(0); // the bound is attained (e.g. "" and single bytes), so it cannot be lowered
      expect(Tokenizer.upperBound("\ud800")).to.equal(3);
      expect(Tokenizer.upperBound("한")).to.equal(3);
    });
  });

  describe("isolation", function () {
    it("a 1,000,000-character run without spaces completes on a worker while the event loop and the pool keep serving", async function () {
      const tokenizer = make({ workers: 2, inlineLimitChars: 1000 });
      const encoding: EncodingName = "o200k_base";
      const medium = `${ENGLISH} ${CODE} ${KOREAN}`; // > inline limit: goes to a worker
      expect(medium.length).to.be.greaterThan(1000);
      // Warm both threads so the race below is about counting, not thread start-up.
      await Promise.all([tokenizer.count(encoding, medium), tokenizer.count(encoding, KOREAN.repeat(10))]);
      expect(tokenizer.workerCount).to.equal(2);

      const hostile = randomRun(1_000_000, LOWER, 42);
      const order: string[] = [];
      const big = tokenizer.count(encoding, hostile).then((count) => {
        order.push("big");
        return count;
      });
      const tick = new Promise<void>((resolve) =>
        setImmediate(() => {
          order.push("tick");
          resolve();
        }),
      );
      const inline = tokenizer.count(encoding, "a small prompt, counted inline").then((count) => {
        order.push("inline");
        return count;
      });
      const onOtherWorker = tokenizer.count(encoding, medium).then((count) => {
        order.push("worker");
        return count;
      });
      const [bigCount, inlineCount, workerCount] = await Promise.all([big, inline, onOtherWorker, tick]);

      expect(order[order.length - 1], order.join(",")).to.equal("big");
      expect(order).to.have.members(["inline", "tick", "worker", "big"]);
      expect(inlineCount).to.equal(ref(encoding, "a small prompt, counted inline"));
      expect(workerCount).to.equal(ref(encoding, medium));
      expect(bigCount).to.be.within(1_000_000 / 8, Tokenizer.upperBound(hostile));
      // The same run's first 20k characters, checked exactly against the reference.
      expect(await tokenizer.count(encoding, hostile.slice(0, 20_000))).to.equal(ref(encoding, hostile.slice(0, 20_000)));
    });

    it("a worker that dies rejects its job with a clear error and is replaced", async function () {
      const tokenizer = make({ inlineLimitChars: 0 });
      expect(await tokenizer.count("cl100k_base", "warm up")).to.equal(ref("cl100k_base", "warm up"));
      expect(tokenizer.workerCount).to.equal(1);
      const doomed = tokenizer.count("cl100k_base", randomRun(1_000_000, LOWER, 9));
      const queued = tokenizer.count("cl100k_base", KOREAN); // waits behind the doomed job
      await tokenizer.terminateWorkers();
      let failure: unknown;
      await doomed.catch((error: unknown) => (failure = error));
      expect(failure).to.be.instanceOf(TokenizerWorkerError);
      expect((failure as Error).message).to.match(/worker thread exited .* before finishing the count/);
      expect(await queued).to.equal(ref("cl100k_base", KOREAN)); // served by the replacement
      expect(tokenizer.workerCount).to.equal(1);
      expect(await tokenizer.count("cl100k_base", CODE)).to.equal(ref("cl100k_base", CODE));
    });

    it("when every worker dies at once, each running job rejects and the queued one is served by a replacement", async function () {
      const tokenizer = make({ inlineLimitChars: 0, workers: 2 });
      await Promise.all([tokenizer.count("o200k_base", "warm up"), tokenizer.count("o200k_base", "warm up too")]);
      expect(tokenizer.workerCount).to.equal(2);
      const hostile = randomRun(1_000_000, LOWER, 11);
      const doomed = [hostile, hostile].map((text) => tokenizer.count("o200k_base", text).catch((error: unknown) => error));
      const queued = tokenizer.count("o200k_base", KOREAN);
      expect(tokenizer.queuedJobs).to.equal(1);
      await tokenizer.terminateWorkers();
      for (const failure of await Promise.all(doomed)) expect(failure).to.be.instanceOf(TokenizerWorkerError);
      expect(await queued).to.equal(ref("o200k_base", KOREAN));
      expect(tokenizer.workerCount).to.be.within(1, 2);
    });

    it("close() terminates every worker; idle workers hold no ref'd handle", async function () {
      const baseline = activeMessagePorts();
      const tokenizer = new Tokenizer({ inlineLimitChars: 0, workers: 2 });
      const pending = Promise.all([tokenizer.count("o200k_base", ENGLISH), tokenizer.count("o200k_base", KOREAN)]);
      expect(activeMessagePorts()).to.be.greaterThan(baseline); // busy workers keep the process alive
      expect(await pending).to.deep.equal([ref("o200k_base", ENGLISH), ref("o200k_base", KOREAN)]);
      expect(tokenizer.workerCount).to.equal(2);
      expect(activeMessagePorts()).to.equal(baseline); // idle workers are unref'd
      await tokenizer.close();
      expect(tokenizer.workerCount).to.equal(0);
      expect(activeMessagePorts()).to.equal(baseline);
      let failure: unknown;
      await tokenizer.count("o200k_base", "after close").catch((error: unknown) => (failure = error));
      expect(failure).to.be.instanceOf(TokenizerClosedError);
      expect(tokenizer.workerCount).to.equal(0);
    });

    it("a process that counted on workers exits by itself, without close()", async function () {
      const script = [
        `const { Tokenizer } = require(${JSON.stringify(path.resolve(__dirname, "../../server/gateway/metering/tokenizer.ts"))});`,
        `const tokenizer = new Tokenizer({ inlineLimitChars: 0, workers: 2 });`,
        `Promise.all([tokenizer.count("o200k_base", "hello world"), tokenizer.count("o200k_base", "x".repeat(10000))])`,
        `  .then((counts) => console.log(JSON.stringify({ counts, workers: tokenizer.workerCount })));`,
      ].join("\n");
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ["-r", require.resolve("ts-node/register/transpile-only"), "-e", script],
          { timeout: 90_000, killSignal: "SIGKILL" },
          (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
        );
      });
      const result = JSON.parse(stdout.trim().split("\n").pop() as string);
      expect(result.counts).to.deep.equal([ref("o200k_base", "hello world"), ref("o200k_base", "x".repeat(10000))]);
      expect(result.workers).to.equal(2); // workers were still alive when the script's work ended
    });

    it("enforces the limits: maxChars, the inline limit, the job queue and the encoding name", async function () {
      const tokenizer = make({ maxChars: 5000, inlineLimitChars: 100, workers: 1, maxQueuedJobs: 1 });
      let failure: unknown;
      await tokenizer.count("o200k_base", "y".repeat(5001)).catch((error: unknown) => (failure = error));
      expect(failure).to.be.instanceOf(TokenizerInputTooLarge);
      failure = undefined;
      await tokenizer
        .countChatPrompt("o200k_base", [{ role: "user", content: "y".repeat(3000) }, { role: "user", content: "z".repeat(3000) }])
        .catch((error: unknown) => (failure = error));
      expect(failure).to.be.instanceOf(TokenizerInputTooLarge);
      expect(await tokenizer.count("o200k_base", "y".repeat(5000))).to.equal(ref("o200k_base", "y".repeat(5000)));
      expect(() => tokenizer.countSync("o200k_base", "y".repeat(101))).to.throw(RangeError, /inlineLimitChars/);
      expect(tokenizer.countChatPromptSync("o200k_base", [{ role: "user", content: "y".repeat(101) }])).to.equal(undefined);
      expect(() => tokenizer.countSync("p50k_base" as EncodingName, "x")).to.throw(TypeError, /unknown encoding/);

      const running = tokenizer.count("o200k_base", "q".repeat(4000));
      const queued = tokenizer.count("o200k_base", "r".repeat(4000));
      failure = undefined;
      await tokenizer.count("o200k_base", "s".repeat(4000)).catch((error: unknown) => (failure = error));
      expect(failure).to.be.instanceOf(TokenizerBusy);
      expect(await Promise.all([running, queued])).to.deep.equal([
        ref("o200k_base", "q".repeat(4000)),
        ref("o200k_base", "r".repeat(4000)),
      ]);
    });
  });

  describe("chat prompts", function () {
    const cookbook = (encoding: EncodingName, messages: Array<Record<string, string>>): number => {
      let total = REPLY_PRIMING_TOKENS;
      for (const message of messages) {
        total += TOKENS_PER_MESSAGE;
        for (const [key, value] of Object.entries(message)) {
          total += ref(encoding, value);
          if (key === "name") total += TOKENS_PER_NAME;
        }
      }
      return total;
    };

    it("a plain two-message conversation equals the cookbook formula (3/message, +1/name, +3 priming)", async function () {
      expect([TOKENS_PER_MESSAGE, TOKENS_PER_NAME, REPLY_PRIMING_TOKENS]).to.deep.equal([3, 1, 3]);
      const conversations = [
        [
          { role: "system", content: "You are a helpful assistant." },
          { role: "user", content: "What is the capital of France? Answer in one word." },
        ],
        [
          { role: "system", content: KOREAN, name: "example_system" },
          { role: "user", content: CODE, name: "alice" },
        ],
      ];
      for (const encoding of ENCODING_NAMES) {
        for (const messages of conversations) {
          const expected = cookbook(encoding, messages);
          expect(inline.countChatPromptSync(encoding, messages)).to.equal(expected);
          expect(await inline.countChatPrompt(encoding, messages)).to.equal(expected);
          expect(await workersOnly.countChatPrompt(encoding, messages)).to.equal(expected);
        }
      }
      // The classic cookbook example: 2 messages, o200k_base.
      expect(
        inline.countChatPromptSync("o200k_base", [
          { role: "system", content: "You are a helpful assistant." },
          { role: "user", content: "Hello!" },
        ]),
      ).to.equal(3 + 1 + 6 + 3 + 1 + 2 + 3);
    });

    it("counts content parts, images, tool calls, tool results and tool definitions", async function () {
      const tokenizer = inline;
      const enc: EncodingName = "o200k_base";
      const base = 3 + ref(enc, "user") + 3;
      const parts = [
        { type: "text", text: "Describe this picture." },
        { type: "text", text: " And this one." },
      ];
      expect(tokenizer.countChatPromptSync(enc, [{ role: "user", content: parts }])).to.equal(
        base + ref(enc, "Describe this picture.") + ref(enc, " And this one."),
      );
      const withImages = [
        ...parts,
        { type: "image_url", image_url: { url: "data:image/png;base64," + "A".repeat(50_000) } },
        { type: "image_url", image_url: { url: "https://example.com/a.png", detail: "low" } },
      ];
      expect(tokenizer.countChatPromptSync(enc, [{ role: "user", content: withImages }])).to.equal(
        base + ref(enc, "Describe this picture.") + ref(enc, " And this one.") + IMAGE_PART_TOKENS + IMAGE_LOW_DETAIL_TOKENS,
      );

      const args = JSON.stringify({ city: "Seoul", unit: "celsius" });
      const assistant = {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: args } }],
      };
      const toolResult = { role: "tool", tool_call_id: "call_1", content: '{"temperature": 21}' };
      expect(tokenizer.countChatPromptSync(enc, [assistant, toolResult])).to.equal(
        3 + ref(enc, "assistant") + TOKENS_PER_TOOL_CALL + ref(enc, "get_weather") + ref(enc, args) +
          3 + ref(enc, "tool") + ref(enc, '{"temperature": 21}') + ref(enc, "call_1") +
          3,
      );

      const tools = [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Current weather for a city",
            parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          },
        },
      ];
      const messages = [{ role: "user", content: "Weather in Seoul?" }];
      const without = await tokenizer.countChatPrompt(enc, messages);
      expect(await tokenizer.countChatPrompt(enc, messages, tools)).to.equal(
        without + ref(enc, JSON.stringify(tools)) + TOOL_DEFINITIONS_OVERHEAD,
      );
      expect(await tokenizer.countChatPrompt(enc, messages, [])).to.equal(without);
    });

    it("malformed messages never throw; what is countable is counted", async function () {
      const tokenizer = inline;
      const enc: EncodingName = "cl100k_base";
      // null and numbers are skipped, {} is an empty message, non-string content is counted as JSON.
      const simple: unknown[] = [null, 42, {}, { content: 42 }, undefined, { role: 7, name: ["x"] }];
      const expected = 3 + (3 + ref(enc, "42")) + 3 + 3;
      expect(tokenizer.countChatPromptSync(enc, simple)).to.equal(expected);
      expect(await workersOnly.countChatPrompt(enc, simple)).to.equal(expected);

      const cyclic: Record<string, unknown> = { role: "user" };
      cyclic.content = { self: cyclic };
      const throwing = new Proxy(
        {},
        {
          get() {
            throw new Error("hostile getter");
          },
        },
      );
      const revocable = Proxy.revocable([] as unknown[], {});
      revocable.revoke();
      const stillCounted = { role: "user", content: "still counted" };
      const hostile: unknown[] = [
        cyclic,
        throwing,
        { role: "user", content: [null, 1, { type: "text", text: 5 }, { type: "image_url" }, [["nested"]], { type: "mystery", data: 1n }] },
        { role: "assistant", tool_calls: "not an array", function_call: { name: 5, arguments: { a: 1 } } },
        { role: "assistant", tool_calls: [null, 1, { function: null }, { function: { name: "f" } }] },
        stillCounted,
        Symbol("s"),
        () => "function",
      ];
      for (const messages of [hostile, revocable.proxy, null, undefined, "not a list", { 0: { content: "x" } }] as unknown[]) {
        const sync = tokenizer.countChatPromptSync(enc, messages as unknown[], cyclic);
        const async = await workersOnly.countChatPrompt(enc, messages as unknown[], throwing);
        expect(sync).to.be.a("number");
        expect(Number.isSafeInteger(sync)).to.equal(true);
        expect(sync).to.be.at.least(REPLY_PRIMING_TOKENS);
        expect(async).to.be.at.least(REPLY_PRIMING_TOKENS);
      }
      // Non-arrays count as no messages: only the priming.
      expect(tokenizer.countChatPromptSync(enc, "not a list" as unknown as unknown[])).to.equal(REPLY_PRIMING_TOKENS);
      // The well-formed message after the hostile ones is still counted.
      const hostileCount = tokenizer.countChatPromptSync(enc, hostile) as number;
      const without = tokenizer.countChatPromptSync(enc, hostile.filter((m) => m !== stillCounted)) as number;
      expect(hostileCount - without).to.equal(3 + ref(enc, "user") + ref(enc, "still counted"));
    });
  });
});
