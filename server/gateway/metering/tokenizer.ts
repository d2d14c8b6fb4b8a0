/**
 * The gateway's token counter: exact, bounded, isolated.
 *
 * Counts tokens with the model's real tokenizer (gpt-tokenizer's o200k_base / cl100k_base
 * vocabularies and split patterns) to (1) reserve the most a call can cost before it goes
 * upstream, (2) bill when the upstream reports no usage, (3) cross-check reported usage.
 *
 * Exact: counts equal OpenAI's `tiktoken` `encode_ordinary` (verified against the WASM port in
 * test/gateway/tokenizer.test.ts). Special-token strings such as "<|endoftext|>" are counted as
 * ordinary text (gpt-tokenizer's default would throw on them); lone surrogates are encoded as
 * U+FFFD like tiktoken does, never thrown on.
 *
 * Bounded: JS byte-pair merging is quadratic in the length of one pre-tokenized piece (in
 * gpt-tokenizer a 50k-letter run without spaces takes ~3 s, 1M letters ~20 min by
 * extrapolation; here ~2 s for 1M on a worker). Pieces up to
 * `maxPieceChars` go through gpt-tokenizer's own merge (and its merge cache); longer pieces go
 * through `countLongPiece`, an O(n log n) merge with an indexed heap that applies the same
 * rule (lowest rank first, leftmost on ties) and therefore yields the same tokens. Longer
 * pieces are NOT split into fixed-size chunks: measured against tiktoken on 2,000-char runs,
 * chunking over-counts (up to +26 for whitespace runs in 64-char chunks) but also UNDER-counts
 * (random lowercase letters: down to -4 in 128-char chunks, -1 in 512-char chunks), because a
 * merge across the cut can save a token; a reservation must never under-count. Total work is
 * O(n log n) in the text length (regex split is linear), memory for one long piece ~21 bytes
 * per UTF-8 byte (transient typed arrays), and `maxChars` caps one count.
 *
 * Isolated: texts longer than `inlineLimitChars` are counted on worker threads
 * (`tokenizer-worker.ts`), one job per worker at a time from a FIFO queue, so the event loop
 * never runs a long count. Workers are unref'd while idle (they never keep the process alive),
 * are terminated by close(), and a worker that dies rejects its job with TokenizerWorkerError
 * and is replaced on the next job.
 *
 * Coupling: this file reads gpt-tokenizer@4's BytePairEncodingCore (its split regex and rank
 * lookups), which is private API. loadEncoding() checks the shape and cross-checks a probe
 * against gpt-tokenizer's public countTokens, and fails loudly if a new version changed them.
 */
import path from "node:path";
import { Worker } from "node:worker_threads";
import { planChatPrompt, type ChatPromptEstimates, type ChatPromptPlan } from "./chat-tokens";

export type EncodingName = "o200k_base" | "cl100k_base";
export const ENCODING_NAMES: readonly EncodingName[] = ["o200k_base", "cl100k_base"];

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

export const DEFAULT_MAX_PIECE_CHARS = 64;
export const DEFAULT_INLINE_LIMIT_CHARS = 4096;
export const DEFAULT_WORKERS = 1;
export const DEFAULT_MAX_CHARS = 4 * 1024 * 1024;
export const DEFAULT_MAX_QUEUED_JOBS = 1024;
/** V8 heap limit of one worker: both vocabularies take ~50 MB, ts-node more in development. */
const WORKER_MAX_OLD_GENERATION_MB = 512;

/** One count exceeds `maxChars`. */
export class TokenizerInputTooLarge extends Error {
  constructor(
    readonly chars: number,
    readonly maxChars: number,
  ) {
    super(`text of ${chars} characters exceeds the tokenizer's limit of ${maxChars} characters`);
    this.name = "TokenizerInputTooLarge";
  }
}

/** A worker thread died (crash, out of memory, terminated) before finishing a job. */
export class TokenizerWorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerWorkerError";
  }
}

/** The job queue is full. */
export class TokenizerBusy extends Error {
  constructor(queued: number) {
    super(`tokenizer job queue is full (${queued} jobs waiting); retry later`);
    this.name = "TokenizerBusy";
  }
}

/** The tokenizer was closed before the job could run. */
export class TokenizerClosedError extends Error {
  constructor() {
    super("tokenizer is closed");
    this.name = "TokenizerClosedError";
  }
}

export function isEncodingName(value: unknown): value is EncodingName {
  return value === "o200k_base" || value === "cl100k_base";
}

// ---------------------------------------------------------------------------------------------
// Counting core (runs on the calling thread and inside workers)
// ---------------------------------------------------------------------------------------------

/** The parts of gpt-tokenizer@4's (private) BytePairEncodingCore this file relies on. */
interface BpeCore {
  tokenSplitRegex: RegExp;
  getBpeRankFromString(key: string): number | undefined;
  getBpeRankFromBytes(key: Uint8Array): number | undefined;
  bytePairEncode(piece: string): number[];
}

interface EncodingState {
  readonly name: EncodingName;
  /** A private copy of the split regex (global flag; lastIndex is ours). */
  readonly splitRegex: RegExp;
  readonly core: BpeCore;
}

interface GptTokenizerModule {
  default: {
    bytePairEncodingCoreProcessor?: unknown;
    countTokens(input: string, options?: { disallowedSpecial?: Set<string> }): number;
  };
}

const encodingStates = new Map<EncodingName, EncodingState>();
const utf8 = new TextEncoder();

function requireEncoding(name: EncodingName): GptTokenizerModule {
  // Loaded lazily: each vocabulary costs 100-300 ms and 20-35 MB of heap; a process (or
  // worker) pays only for the encodings it counts.
  /* eslint-disable @typescript-eslint/no-require-imports */
  switch (name) {
    case "o200k_base":
      return require("gpt-tokenizer/encoding/o200k_base") as GptTokenizerModule;
    case "cl100k_base":
      return require("gpt-tokenizer/encoding/cl100k_base") as GptTokenizerModule;
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
  throw new TypeError(`unknown encoding: ${String(name)}`);
}

function loadEncoding(name: EncodingName): EncodingState {
  const cached = encodingStates.get(name);
  if (cached) return cached;
  if (!isEncodingName(name)) throw new TypeError(`unknown encoding: ${String(name)}`);
  const api = requireEncoding(name).default;
  const core = api.bytePairEncodingCoreProcessor as Partial<BpeCore> | undefined;
  if (
    !core ||
    !(core.tokenSplitRegex instanceof RegExp) ||
    typeof core.getBpeRankFromString !== "function" ||
    typeof core.getBpeRankFromBytes !== "function" ||
    typeof core.bytePairEncode !== "function"
  ) {
    throw new Error(
      "gpt-tokenizer internals changed (BytePairEncodingCore); pin gpt-tokenizer@4 or update " +
        "server/gateway/metering/tokenizer.ts",
    );
  }
  const source = core.tokenSplitRegex;
  const flags = source.flags.includes("g") ? source.flags : `${source.flags}g`;
  const state: EncodingState = { name, splitRegex: new RegExp(source.source, flags), core: core as BpeCore };
  // Cross-check both merge paths against the public API once per encoding and thread.
  let seed = 7;
  let letters = "";
  for (let i = 0; i < 300; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    letters += String.fromCharCode(97 + ((seed >>> 16) % 26));
  }
  const probe =
    "Hello, world! The quick brown fox's 12345 jumps.\n\n  안녕하세요 세계 🤖👩‍👩‍👧 " +
    "supercalifragilisticexpialidocious aGVsbG8gd29ybGQhISE= \t\r\n abababqpreqprecon " +
    "x".repeat(40) + " " + "!?".repeat(30) + " " + letters;
  const expected = api.countTokens(probe, { disallowedSpecial: new Set() });
  if (countWith(state, probe, Number.MAX_SAFE_INTEGER) !== expected || countWith(state, probe, 1) !== expected) {
    throw new Error(`tokenizer self-check failed for ${name}: counts disagree with gpt-tokenizer (internals changed?)`);
  }
  encodingStates.set(name, state);
  return state;
}

const NO_RANK = 0x7fffffff;

function rankOfSpan(core: BpeCore, bytes: Uint8Array, start: number, end: number): number {
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (bytes[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  const rank = ascii
    ? core.getBpeRankFromString(String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]))
    : core.getBpeRankFromBytes(bytes.subarray(start, end));
  return rank === undefined ? NO_RANK : rank;
}

/**
 * Number of tokens byte-pair merging yields for one piece, in O(n log n).
 *
 * Same rule as tiktoken's `_byte_pair_merge` and gpt-tokenizer's `bytePairMerge` (which scan
 * all pairs per merge, O(n^2)): repeatedly merge the adjacent pair whose concatenation has the
 * lowest rank, the leftmost one on ties, until no adjacent pair is a token. Parts are a linked
 * list over byte offsets; the candidate pairs sit in a binary heap ordered by (rank, offset),
 * indexed so a pair's entry is updated in place when a neighbouring merge changes it.
 */
function countLongPiece(core: BpeCore, bytes: Uint8Array): number {
  const n = bytes.length;
  if (n < 2) return n;
  const next = new Int32Array(n); // offset of the following part (n: none)
  const prev = new Int32Array(n); // offset of the preceding part (-1: none)
  const rank = new Int32Array(n); // rank of (this part + following part), NO_RANK if not a token
  const heap = new Int32Array(n); // part offsets with rank < NO_RANK, min-heap on (rank, offset)
  const slot = new Int32Array(n).fill(-1); // heap index of each part offset, -1 if absent
  let size = 0;

  const less = (a: number, b: number): boolean => rank[a] < rank[b] || (rank[a] === rank[b] && a < b);
  const place = (i: number, part: number): void => {
    heap[i] = part;
    slot[part] = i;
  };
  const siftUp = (i: number): number => {
    const part = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(part, heap[parent])) break;
      place(i, heap[parent]);
      i = parent;
    }
    place(i, part);
    return i;
  };
  const siftDown = (i: number): void => {
    const part = heap[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && less(heap[child + 1], heap[child])) child++;
      if (!less(heap[child], part)) break;
      place(i, heap[child]);
      i = child;
    }
    place(i, part);
  };
  const remove = (part: number): void => {
    const i = slot[part];
    if (i < 0) return;
    slot[part] = -1;
    const last = heap[--size];
    if (i === size) return;
    place(i, last);
    siftDown(siftUp(i));
  };
  /** Re-position `part` after rank[part] changed. */
  const update = (part: number): void => {
    if (rank[part] === NO_RANK) return remove(part);
    let i = slot[part];
    if (i < 0) {
      i = size++;
      place(i, part);
    }
    siftDown(siftUp(i));
  };

  for (let i = 0; i < n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
    rank[i] = i + 2 <= n ? rankOfSpan(core, bytes, i, i + 2) : NO_RANK;
    if (rank[i] !== NO_RANK) place(size++, i);
  }
  for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i);

  let parts = n;
  while (size > 0) {
    const left = heap[0];
    const right = next[left];
    const after = next[right];
    remove(right); // `right` disappears into `left`
    next[left] = after;
    if (after < n) prev[after] = left;
    parts--;
    rank[left] = after < n ? rankOfSpan(core, bytes, left, next[after]) : NO_RANK;
    update(left);
    const before = prev[left];
    if (before >= 0) {
      rank[before] = rankOfSpan(core, bytes, before, after);
      update(before);
    }
  }
  return parts;
}

function countWith(state: EncodingState, text: string, maxPieceChars: number): number {
  const { core, splitRegex } = state;
  let count = 0;
  splitRegex.lastIndex = 0;
  try {
    for (let match = splitRegex.exec(text); match !== null; match = splitRegex.exec(text)) {
      const piece = match[0];
      if (piece.length === 0) {
        splitRegex.lastIndex++; // cannot happen with the current patterns; never loop forever
        continue;
      }
      if (core.getBpeRankFromString(piece) !== undefined) count += 1;
      else if (piece.length <= maxPieceChars) count += core.bytePairEncode(piece).length;
      else count += countLongPiece(core, utf8.encode(piece));
    }
  } finally {
    splitRegex.lastIndex = 0;
  }
  return count;
}

/**
 * Tokens of `text` under `encoding` with encode_ordinary semantics (special-token strings are
 * ordinary text). Synchronous and unbounded in size: callers decide the thread and the cap.
 */
export function countTextTokens(
  encoding: EncodingName,
  text: string,
  maxPieceChars: number = DEFAULT_MAX_PIECE_CHARS,
): number {
  if (typeof text !== "string") throw new TypeError("text must be a string");
  if (text.length === 0) return 0;
  return countWith(loadEncoding(encoding), text, maxPieceChars);
}

/** Sum of countTextTokens over several texts (each tokenized on its own). */
export function countTextsTokens(encoding: EncodingName, texts: readonly string[], maxPieceChars: number): number {
  let total = 0;
  for (const text of texts) total += countTextTokens(encoding, text, maxPieceChars);
  return total;
}

// ---------------------------------------------------------------------------------------------
// Worker pool
// ---------------------------------------------------------------------------------------------

/** Request and reply exchanged with tokenizer-worker.ts. */
export interface WorkerRequest {
  id: number;
  encoding: EncodingName;
  texts: string[];
  maxPieceChars: number;
}
export type WorkerReply = { id: number; ok: true; count: number } | { id: number; ok: false; error: string };

interface Job {
  request: WorkerRequest;
  resolve(count: number): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  exited: boolean;
  error: Error | undefined;
}

function workerEntry(): { file: string; execArgv?: string[] } {
  if (__filename.endsWith(".ts")) {
    // Running under ts-node (hardhat test, ts-node scripts): the worker needs the hook too.
    return {
      file: path.join(__dirname, "tokenizer-worker.ts"),
      execArgv: ["-r", require.resolve("ts-node/register/transpile-only")],
    };
  }
  return { file: path.join(__dirname, "tokenizer-worker.js") };
}

class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly maxQueued: number,
  ) {}

  get liveWorkers(): number {
    return this.slots.filter((slot) => !slot.exited).length;
  }

  get queuedJobs(): number {
    return this.queue.length;
  }

  run(encoding: EncodingName, texts: string[], maxPieceChars: number): Promise<number> {
    if (this.closed) return Promise.reject(new TokenizerClosedError());
    if (this.queue.length >= this.maxQueued) return Promise.reject(new TokenizerBusy(this.queue.length));
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ request: { id: this.nextId++, encoding, texts, maxPieceChars }, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (!this.closed && this.queue.length > 0) {
      let slot = this.slots.find((candidate) => !candidate.exited && candidate.job === undefined);
      if (!slot) {
        if (this.slots.length >= this.size) return;
        try {
          slot = this.spawn();
        } catch (error) {
          // Cannot start a thread at all: fail the job rather than queue it forever.
          this.queue.shift()?.reject(new TokenizerWorkerError(`cannot start tokenizer worker: ${String(error)}`));
          continue;
        }
      }
      const job = this.queue.shift() as Job;
      slot.job = job;
      slot.worker.ref(); // a pending count keeps the process alive until it settles
      try {
        slot.worker.postMessage(job.request);
      } catch (error) {
        slot.job = undefined;
        slot.worker.unref();
        job.reject(new TokenizerWorkerError(`cannot send job to tokenizer worker: ${String(error)}`));
      }
    }
  }

  private spawn(): Slot {
    const entry = workerEntry();
    const worker = new Worker(entry.file, {
      execArgv: entry.execArgv,
      name: "tollgate-tokenizer",
      resourceLimits: { maxOldGenerationSizeMb: WORKER_MAX_OLD_GENERATION_MB },
    });
    worker.unref();
    const slot: Slot = { worker, job: undefined, exited: false, error: undefined };
    this.slots.push(slot);
    worker.on("message", (reply: WorkerReply) => this.onReply(slot, reply));
    worker.on("messageerror", (error: Error) => this.fail(slot, `undeserializable reply: ${error.message}`));
    worker.on("error", (error: Error) => {
      slot.error = error; // 'exit' follows and settles the job
    });
    worker.on("exit", (code: number) => this.onExit(slot, code));
    return slot;
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    const job = slot.job;
    if (!job || !reply || reply.id !== job.request.id) return;
    slot.job = undefined;
    if (!slot.exited) slot.worker.unref();
    if (reply.ok && Number.isSafeInteger(reply.count) && reply.count >= 0) job.resolve(reply.count);
    else job.reject(new Error(`tokenizer worker failed: ${reply.ok ? "invalid count" : reply.error}`));
    this.pump();
  }

  private fail(slot: Slot, reason: string): void {
    const job = slot.job;
    if (!job) return;
    slot.job = undefined;
    if (!slot.exited) slot.worker.unref();
    job.reject(new TokenizerWorkerError(`tokenizer worker failed: ${reason}`));
    this.pump();
  }

  private onExit(slot: Slot, code: number): void {
    slot.exited = true;
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
    const job = slot.job;
    slot.job = undefined;
    if (job) {
      if (this.closed) job.reject(new TokenizerClosedError());
      else {
        const cause = slot.error ? `: ${slot.error.message}` : "";
        job.reject(
          new TokenizerWorkerError(
            `tokenizer worker thread exited (code ${code}${cause}) before finishing the count; the job was not completed`,
          ),
        );
      }
    }
    this.pump(); // replaces the worker if jobs are waiting
  }

  /** Terminates every worker; in-flight jobs reject with TokenizerWorkerError, queued ones get new workers. */
  async terminateWorkers(): Promise<void> {
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new TokenizerClosedError());
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
    for (const slot of slots) slot.exited = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

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
  private readonly pool: WorkerPool;

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
    this.pool = new WorkerPool(this.workers, maxQueued);
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
    return this.pool.run(encoding, [text], this.maxPieceChars);
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
    return plan.fixedTokens + (await this.pool.run(encoding, plan.texts, this.maxPieceChars));
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
