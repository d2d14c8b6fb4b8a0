/**
 * Folds the usage store's WAL back into the database file on a worker thread, so no metered call waits on it.
 *
 * Left to SQLite, the COMMIT that pushes the WAL past 1,000 pages runs the checkpoint itself: it copies
 * every page back into the database and fsyncs it, on the gateway's event loop, which stalled every call in
 * flight for tens to hundreds of milliseconds. The gateway opens its store with `autoCheckpoint: false` and
 * this worker, on its own connection, runs a PASSIVE checkpoint every `intervalMs`: PASSIVE never takes the
 * writer's lock, so the gateway keeps appending while pages are copied; once the WAL is wholly copied the
 * next write starts it again from the beginning, so it stays small. That restart is the one cost left on the
 * event loop: the COMMIT that restarts the WAL fsyncs its new header (SQLite's guard against a reordered write
 * after a power cut; `strace` shows one fsync per restart), so checkpoints run every second, not continuously.
 *
 * The worker is plain JavaScript evaluated from a string (no ts-node in the thread) and is unref'd: it never
 * keeps a process alive. Durability is unchanged: a record is durable in the WAL when its COMMIT returns; the
 * checkpoint only moves it.
 */
import { Worker } from "node:worker_threads";
import type { Durability } from "./open-store";

export interface CheckpointReport {
  /** Wall time of the checkpoint on the worker thread. */
  seconds: number;
  /** WAL frames copied into the database by this checkpoint. */
  frames: number;
}

export interface WalCheckpointerOptions {
  path: string;
  durability: Durability;
  /** How often to checkpoint. Default 1 s (each checkpoint costs the next COMMIT a WAL header fsync). */
  intervalMs?: number;
  /** Called on the main thread after each checkpoint that copied something. */
  onCheckpoint?: (report: CheckpointReport) => void;
  /** Called when a checkpoint fails (the next one retries); the gateway logs it. */
  onError?: (message: string) => void;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { performance } = require("node:perf_hooks");
const Database = require(workerData.betterSqlite3);
const db = new Database(workerData.path, { timeout: 5000 });
db.pragma("synchronous = " + (workerData.durability === "power-loss" ? "FULL" : "NORMAL"));
let copied = 0;
let timer;
const checkpoint = () => {
  try {
    const started = performance.now();
    const [row] = db.pragma("wal_checkpoint(PASSIVE)");
    // row.log: frames in the WAL; row.checkpointed: frames copied so far. A WAL that restarted is shorter.
    const frames = row.checkpointed >= copied ? row.checkpointed - copied : row.checkpointed;
    copied = row.checkpointed;
    if (frames > 0) parentPort.postMessage({ kind: "checkpoint", seconds: (performance.now() - started) / 1000, frames });
  } catch (error) {
    parentPort.postMessage({ kind: "error", message: String(error && error.message || error) });
  }
  timer = setTimeout(checkpoint, workerData.intervalMs);
};
parentPort.on("message", (message) => {
  if (message !== "stop") return;
  clearTimeout(timer);
  db.close();
  parentPort.postMessage({ kind: "stopped" });
});
timer = setTimeout(checkpoint, workerData.intervalMs);
`;

export class WalCheckpointer {
  private readonly worker: Worker;
  private stopped: Promise<void> | undefined;
  private exited = false;

  constructor(options: WalCheckpointerOptions) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path: options.path, durability: options.durability, intervalMs: options.intervalMs ?? 1_000, betterSqlite3: require.resolve("better-sqlite3") },
    });
    this.worker.on("message", (message: { kind: string; seconds?: number; frames?: number; message?: string }) => {
      if (message.kind === "checkpoint") options.onCheckpoint?.({ seconds: message.seconds!, frames: message.frames! });
      else if (message.kind === "error") options.onError?.(message.message!);
    });
    this.worker.on("error", (error) => options.onError?.(error.message));
    this.worker.once("exit", () => (this.exited = true));
    this.worker.unref();
  }

  /** Stops checkpointing and closes the worker's connection; the store's own close then truncates the WAL. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      // Held while it stops: an unref'd worker is no reason to stay alive, so a process with nothing else left (a
      // gateway whose start failed) would end here, exit code 0 and no message, before its caller could report.
      this.worker.ref();
      const done = () => resolve();
      this.worker.once("exit", done);
      this.worker.on("message", (message: { kind: string }) => {
        if (message.kind === "stopped") void this.worker.terminate().then(done, done);
      });
      this.worker.postMessage("stop");
    });
    return this.stopped;
  }
}
