/**
 * Group commit of usage records: every record that finishes in the same turn of the event loop is written
 * in ONE SQLite transaction, and each call's answer goes out only after that transaction has committed.
 *
 * Why: one transaction per call wrote the same few B-tree pages (the table and its indexes) to the WAL once
 * per call, and paid BEGIN/COMMIT each time; under load most of a metered call's SQLite time was that. A
 * group pays it once. The guarantee is unchanged: `append()` resolves only after COMMIT returned, so an
 * answer never exists without its durable record (the failpoint test in test/gateway/crash-recovery.test.ts
 * kills the gateway between the commit and the answers). Under light load a group is one record and waits
 * for nothing: the flush runs on `setImmediate`, in the same turn of the loop that queued it.
 *
 * A record refused by the store (bad field, unknown key) fails alone: the others of its group commit.
 */
import { performance } from "node:perf_hooks";
import type { PendingAppend, StoredUsageRecord, UsageStore } from "../../store/usage-store";

/** Records per transaction at most: a very large group would hold the event loop for its whole commit. */
export const MAX_GROUP_RECORDS = 256;

export interface GroupCommitHooks {
  /** Called after each commit with its size and duration (event-loop time). */
  onCommit?: (records: number, seconds: number) => void;
  /**
   * Called after a commit and before any of its answers is released. The `gateway.after-commit` failpoint
   * kills the process here, which is exactly the moment the crash test needs.
   */
  afterCommit?: (committedSoFar: number) => void;
}

interface Waiting {
  entry: PendingAppend;
  resolve: (record: StoredUsageRecord) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit {
  private queue: Waiting[] = [];
  private scheduled = false;
  private committed = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly store: UsageStore,
    private readonly hooks: GroupCommitHooks = {},
  ) {}

  /** Resolves with the stored record once it is committed; rejects with the store's reason if it was refused. */
  append(entry: PendingAppend): Promise<StoredUsageRecord> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      this.schedule();
    });
  }

  /** Records queued and not yet committed. */
  pending(): number {
    return this.queue.length;
  }

  /** Resolves once nothing is queued (graceful shutdown waits on it before closing the store). */
  drained(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const group = this.queue.length > MAX_GROUP_RECORDS ? this.queue.splice(0, MAX_GROUP_RECORDS) : this.queue;
    if (group === this.queue) this.queue = [];
    else this.schedule();
    if (group.length === 0) return;

    const started = performance.now();
    let outcomes;
    try {
      outcomes = this.store.appendRecords(group.map((waiting) => waiting.entry));
    } catch (error) {
      // The COMMIT failed: nothing of the group was written, so every call in it fails uncharged.
      for (const waiting of group) waiting.reject(error);
      this.settleIdle();
      return;
    }
    for (const outcome of outcomes) if ("record" in outcome) this.committed++;
    this.hooks.onCommit?.(group.length, (performance.now() - started) / 1000);
    this.hooks.afterCommit?.(this.committed);
    outcomes.forEach((outcome, index) => {
      if ("record" in outcome) group[index].resolve(outcome.record);
      else group[index].reject(outcome.error);
    });
    this.settleIdle();
  };

  private settleIdle(): void {
    if (this.queue.length > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
