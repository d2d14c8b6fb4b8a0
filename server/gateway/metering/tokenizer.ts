/**
 * The gateway's token counter: exact, bounded, isolated.
 *
 * Counts tokens with the model's real tokenizer (gpt-tokenizer's o200k_base / cl100k_base
 * vocabularies and split patterns) to (1) reserve the most a call can cost before it goes
 * upstream, (2) bill when the upstream reports no usage, (3) cross-check reported usage.
 *
 * Exact and bounded: bpe/count.ts (encode_ordinary semantics, equal to tiktoken) with the
 * O(n log n) merge of bpe/long-piece.ts for long runs without spaces; `maxChars` caps one count.
 * Why not a public API (issue 12, `npm run bench:tokenizer`, bench/README.md): tiktoken (WASM) and
 * gpt-tokenizer's countTokens are exact too, but quadratic on such runs: 200,000 letters take 18 s and
 * 12 s there, 0.2 s here (one run); tiktoken is also ~3x slower on normal text and a 1 KB prompt.
 *
 * Isolated: texts longer than `inlineLimitChars` are counted on worker threads
 * (tokenizer-pool.ts, piscina), so the event loop never runs a long count.
 */
import { planChatPrompt, type ChatPromptEstimates, type ChatPromptPlan } from "./chat-tokens";
import { countTextsTokens, countTextTokens, DEFAULT_MAX_PIECE_CHARS } from "./bpe/count";
import { type EncodingName, isEncodingName } from "./bpe/gpt-tokenizer-core";
import { TokenizerInputTooLarge } from "./tokenizer-errors";
import { TokenizerPool } from "./tokenizer-pool";

export { countTextsTokens, countTextTokens, DEFAULT_MAX_PIECE_CHARS } from "./bpe/count";
export { ENCODING_NAMES, isEncodingName, type EncodingName } from "./bpe/gpt-tokenizer-core";
export { TokenizerBusy, TokenizerClosedError, TokenizerInputTooLarge, TokenizerWorkerError } from "./tokenizer-errors";

export interface TokenizerOptions extends ChatPromptEstimates {
  /**
   * Longest pre-tokenized piece (a run without whitespace, roughly) merged by gpt-tokenizer's
   * own quadratic BPE with its merge cache. Longer pieces use the O(n log n) merge. Counts are
   * exact either way; this only trades the library's cache against bounded work.
   * Default DEFAULT_MAX_PIECE_CHARS (64).
   */
  maxPieceChars?: number;
  /**
   * Texts up to this length are counted on the calling thread: ~1 µs per token for normal text
   * (a 1 KB chat prompt ~90 µs); the worst case, one hostile piece this long, ~7-9 ms at the
   * default (bench/tokenizer-throughput.ts).
   * Default DEFAULT_INLINE_LIMIT_CHARS (4096). 0 sends every non-empty count to a worker.
   */
  inlineLimitChars?: number;
  /** Worker threads for longer texts. Default 1. */
  workers?: number;
  /** Hard cap on one count (characters); over it, reject with TokenizerInputTooLarge. */
  maxChars?: number;
  /** Jobs waiting for a worker beyond this are rejected with TokenizerBusy. Default 1024. */
  maxQueuedJobs?: number;
}

export const DEFAULT_INLINE_LIMIT_CHARS = 4096;
export const DEFAULT_WORKERS = 1;
export const DEFAULT_MAX_CHARS = 4 * 1024 * 1024;
export const DEFAULT_MAX_QUEUED_JOBS = 1024;

function positiveInteger(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`TokenizerOptions.${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function assertEncoding(encoding: unknown): asserts encoding is EncodingName {
  if (!isEncodingName(encoding)) throw new TypeError(`unknown encoding: ${String(encoding)}`);
}

function assertText(text: unknown): asserts text is string {
  if (typeof text !== "string") throw new TypeError("text must be a string");
}

export class Tokenizer {
  readonly maxPieceChars: number;
  readonly inlineLimitChars: number;
  readonly workers: number;
  readonly maxChars: number;
  private readonly estimates: ChatPromptEstimates;
  private readonly pool: TokenizerPool;

  constructor(options: TokenizerOptions = {}) {
    this.maxPieceChars = positiveInteger("maxPieceChars", options.maxPieceChars, DEFAULT_MAX_PIECE_CHARS, 1);
    this.maxChars = positiveInteger("maxChars", options.maxChars, DEFAULT_MAX_CHARS, 1);
    this.inlineLimitChars = Math.min(
      positiveInteger("inlineLimitChars", options.inlineLimitChars, DEFAULT_INLINE_LIMIT_CHARS, 0),
      this.maxChars,
    );
    this.workers = positiveInteger("workers", options.workers, DEFAULT_WORKERS, 1);
    const maxQueued = positiveInteger("maxQueuedJobs", options.maxQueuedJobs, DEFAULT_MAX_QUEUED_JOBS, 1);
    this.estimates = {
      imagePartTokens: options.imagePartTokens,
      imageLowDetailTokens: options.imageLowDetailTokens,
      audioPartTokens: options.audioPartTokens,
    };
    this.pool = new TokenizerPool(this.workers, maxQueued);
  }

  /** Live worker threads (0 before the first long count and after close()). */
  get workerCount(): number {
    return this.pool.liveWorkers;
  }

  /** Jobs waiting for a free worker. */
  get queuedJobs(): number {
    return this.pool.queuedJobs;
  }

  /** Counts on the calling thread; only for text.length <= inlineLimitChars (throws RangeError otherwise). */
  countSync(encoding: EncodingName, text: string): number {
    assertEncoding(encoding);
    assertText(text);
    if (text.length > this.inlineLimitChars) {
      throw new RangeError(
        `countSync: text of ${text.length} characters exceeds inlineLimitChars (${this.inlineLimitChars}); use count()`,
      );
    }
    return countTextTokens(encoding, text, this.maxPieceChars);
  }

  /**
   * Inline when text.length <= inlineLimitChars (the count is done before this returns), else on
   * a worker thread. Rejects with TokenizerInputTooLarge over maxChars.
   */
  async count(encoding: EncodingName, text: string): Promise<number> {
    assertEncoding(encoding);
    assertText(text);
    if (text.length > this.maxChars) throw new TokenizerInputTooLarge(text.length, this.maxChars);
    if (text.length <= this.inlineLimitChars) return countTextTokens(encoding, text, this.maxPieceChars);
    return this.pool.run({ encoding, texts: [text], maxPieceChars: this.maxPieceChars });
  }

  /**
   * Prompt tokens of a chat request as OpenAI counts them (cookbook formula: 3 per message,
   * role and content tokens, name tokens + 1, 3 for reply priming); see chat-tokens.ts for tool
   * calls, tool results, `tools` definitions and the fixed image/audio estimates. Never throws
   * on malformed shapes; rejects with TokenizerInputTooLarge when the texts exceed maxChars.
   */
  async countChatPrompt(encoding: EncodingName, messages: readonly unknown[], tools?: unknown): Promise<number> {
    assertEncoding(encoding);
    const plan = planChatPrompt(messages, tools, this.estimates);
    if (plan.totalChars > this.maxChars) throw new TokenizerInputTooLarge(plan.totalChars, this.maxChars);
    if (plan.totalChars <= this.inlineLimitChars) return this.countPlanInline(encoding, plan);
    return plan.fixedTokens + (await this.pool.run({ encoding, texts: plan.texts, maxPieceChars: this.maxPieceChars }));
  }

  /** Sync variant for small prompts (total text <= inlineLimitChars); undefined when larger. */
  countChatPromptSync(encoding: EncodingName, messages: readonly unknown[], tools?: unknown): number | undefined {
    assertEncoding(encoding);
    const plan = planChatPrompt(messages, tools, this.estimates);
    if (plan.totalChars > this.inlineLimitChars) return undefined;
    return this.countPlanInline(encoding, plan);
  }

  private countPlanInline(encoding: EncodingName, plan: ChatPromptPlan): number {
    return plan.fixedTokens + countTextsTokens(encoding, plan.texts, this.maxPieceChars);
  }

  /**
   * A cheap upper bound for any byte-level BPE: the UTF-8 byte length (every token covers at
   * least one byte; lone surrogates count as the 3 bytes of U+FFFD they are encoded as).
   */
  static upperBound(text: string): number {
    return typeof text === "string" ? Buffer.byteLength(text, "utf8") : 0;
  }

  /**
   * Forcibly terminates the worker threads (to recycle them, or to simulate a crash in tests).
   * In-flight jobs reject with TokenizerWorkerError; queued and later jobs get fresh workers.
   */
  terminateWorkers(): Promise<void> {
    return this.pool.terminateWorkers();
  }

  /** Terminates the workers; queued and in-flight worker jobs reject with TokenizerClosedError. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
