/**
 * The tokenizer's worker threads, on piscina: one count per thread at a time from a bounded FIFO
 * queue, threads unref'd while idle (they never keep the process alive), a thread that dies rejects
 * its job with TokenizerWorkerError and is replaced, close() terminates at once.
 *
 * No per-count timeout: the O(n log n) long-piece merge and `maxChars` bound every count (1M hostile
 * characters take ~2 s), so no input can wedge a thread; an AbortSignal per run is where one would go.
 */
import path from "node:path";
import { Piscina } from "piscina";
import { TokenizerBusy, TokenizerClosedError, TokenizerWorkerError } from "./tokenizer-errors";
import type { CountJob, CountReply } from "./tokenizer-worker";

/** V8 heap limit of one worker: both vocabularies take ~50 MB, ts-node more in development. */
const WORKER_MAX_OLD_GENERATION_MB = 512;

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

export class TokenizerPool {
  /** Started by the first job: a gateway that only ever counts short texts starts no thread. */
  private pool: Piscina<CountJob, CountReply> | undefined;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly maxQueued: number,
  ) {}

  get liveWorkers(): number {
    return this.pool?.threads.length ?? 0;
  }

  get queuedJobs(): number {
    return this.pool?.queueSize ?? 0;
  }

  async run(job: CountJob): Promise<number> {
    if (this.closed) throw new TokenizerClosedError();
    const pool = (this.pool ??= this.start());
    // piscina refuses at the same bound (maxQueue); checking first gives the caller a typed error.
    if (pool.queueSize >= this.maxQueued) throw new TokenizerBusy(pool.queueSize);
    let reply: CountReply;
    try {
      reply = await pool.run(job);
    } catch (error) {
      if (this.closed) throw new TokenizerClosedError();
      // The task returns its own errors (tokenizer-worker.ts), so a rejection is the thread dying.
      const cause = error instanceof Error ? error.message : String(error);
      throw new TokenizerWorkerError(
        `tokenizer worker thread exited (${cause}) before finishing the count; the job was not completed`,
      );
    }
    if (reply.ok && Number.isSafeInteger(reply.count) && reply.count >= 0) return reply.count;
    throw new Error(`tokenizer worker failed: ${reply.ok ? "invalid count" : reply.error}`);
  }

  private start(): Piscina<CountJob, CountReply> {
    const entry = workerEntry();
    const pool = new Piscina<CountJob, CountReply>({
      filename: entry.file,
      execArgv: entry.execArgv,
      // One thread to begin with, more only when jobs overlap (sequential jobs reuse one), never
      // retired. piscina replaces a dead thread at once up to minThreads, the others on demand.
      minThreads: 1,
      maxThreads: this.size,
      idleTimeout: Infinity,
      maxQueue: this.maxQueued,
      concurrentTasksPerWorker: 1,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_MAX_OLD_GENERATION_MB },
      recordTiming: false,
    });
    // A thread that dies while idle has no caller to tell; piscina replaces it. Without a listener
    // the 'error' event would throw in the gateway.
    pool.on("error", () => undefined);
    return pool;
  }

  /** Terminates every worker; in-flight jobs reject with TokenizerWorkerError, queued ones get new workers. */
  async terminateWorkers(): Promise<void> {
    await Promise.all((this.pool?.threads ?? []).map((worker) => worker.terminate()));
  }

  /** Queued and in-flight jobs reject with TokenizerClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.destroy();
  }
}
