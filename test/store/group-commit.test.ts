/**
 * Group commit and checkpoints off the event loop (issue 12), against real SQLite files:
 * - `UsageStore.appendRecords`: one transaction for a group, each record in its own savepoint;
 * - `GroupCommit`: records queued in the same turn of the event loop share one commit, and nobody hears
 *   back before it committed;
 * - `WalCheckpointer`: with SQLite's own checkpointing off, a worker thread folds the WAL back.
 */
import fs from "node:fs";
import { expect } from "chai";
import Database from "better-sqlite3";
import { GroupCommit, MAX_GROUP_RECORDS } from "../../server/gateway/metering/group-commit";
import { UnknownApiKeyError, UsageStore, type StoredUsageRecord } from "../../server/store/usage-store";
import { WalCheckpointer, type CheckpointReport } from "../../server/store/wal-checkpointer";
import { ALICE, apiKey, BOB, closeStores, openStores, removeTempDirs, sign, SIGNER, storeWithKeys, tempDb, usage } from "../helpers/store-fixtures";

/** Reads the file through a connection of its own, which sees only what has been committed. */
function withReader<T>(file: string, read: (db: Database.Database) => T): T {
  const reader = new Database(file, { readonly: true });
  try {
    return read(reader);
  } finally {
    reader.close();
  }
}

function committedCount(file: string): number {
  return withReader(file, (db) => (db.prepare("SELECT COUNT(*) AS n FROM usage_records").get() as { n: number }).n);
}

function walBytes(file: string): number {
  return fs.existsSync(`${file}-wal`) ? fs.statSync(`${file}-wal`).size : 0;
}

async function waitFor<T>(what: string, read: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("group commit of usage records", function () {
  afterEach(closeStores);
  after(removeTempDirs);

  describe("UsageStore.appendRecords", function () {
    it("writes a group under consecutive sequences in one transaction: nothing is visible to a reader before its commit", function () {
      const file = tempDb();
      const store = storeWithKeys(file, 40n);
      store.appendRecord(usage(), sign);
      const seenWhileSigning: number[] = [];
      const outcomes = store.appendRecords(
        [usage(), usage({ keyId: "key-bob", buyer: BOB }), usage()].map((input) => ({
          input,
          sign: (sequence: bigint) => {
            seenWhileSigning.push(committedCount(file));
            return sign(sequence);
          },
        })),
      );
      expect(outcomes.map((o) => ("record" in o ? o.record.sequence : o.error))).to.deep.equal([41n, 42n, 43n]);
      // While the group was being written, another connection saw only the record committed before it.
      expect(seenWhileSigning).to.deep.equal([1, 1, 1]);
      expect(committedCount(file)).to.equal(4);
      expect(store.nextSequence()).to.equal(44n);
      expect(store.recordsOf(ALICE).map((r) => r.sequence)).to.deep.equal([40n, 41n, 43n]);
    });

    it("a record refused inside a group rolls back alone, takes no sequence, and the others commit", function () {
      const store = storeWithKeys();
      const duplicate = usage();
      store.appendRecord(duplicate, sign);
      const outcomes = store.appendRecords([
        { input: usage({ cost: 5n }), sign },
        { input: usage({ keyId: "no-such-key" }), sign },
        { input: usage({ cachedInputTokens: 200, inputTokens: 100 }), sign },
        { input: { ...duplicate, cost: 9n }, sign },
        { input: usage({ cost: 7n }), sign: () => { throw new Error("the signer failed"); } },
        { input: usage({ cost: 11n }), sign },
      ]);
      const errors = outcomes.map((o) => ("error" in o ? o.error : undefined));
      expect(errors[1]).to.be.instanceOf(UnknownApiKeyError);
      expect(errors[2]).to.be.instanceOf(RangeError);
      expect(String(errors[3])).to.match(/already has a usage record/);
      expect(String(errors[4])).to.match(/the signer failed/);
      const written = outcomes.flatMap((o) => ("record" in o ? [o.record] : []));
      expect(written.map((r) => [r.sequence, r.cost])).to.deep.equal([[1n, 5n], [2n, 11n]]);
      // The refused records left nothing behind: not their rows, not their cost on the key.
      expect(store.recordCount()).to.equal(3);
      expect(store.listApiKeys(ALICE).find((k) => k.id === "key-alice")!.spent).to.equal(1_000n + 5n + 11n);
      expect(store.appendRecord(usage(), sign).sequence).to.equal(3n);
    });
  });

  describe("GroupCommit", function () {
    it("commits records queued in the same turn of the event loop together, and resolves none before the commit", async function () {
      const file = tempDb();
      const store = storeWithKeys(file);
      const commits: Array<{ records: number; visible: number; resolvedBefore: number }> = [];
      let resolved = 0;
      const writer = new GroupCommit(store, {
        afterCommit: () => commits.push({ records: -1, visible: committedCount(file), resolvedBefore: resolved }),
        onCommit: (records) => commits.push({ records, visible: -1, resolvedBefore: resolved }),
      });
      const first = Array.from({ length: 5 }, () => writer.append({ input: usage(), sign }).then((r) => (resolved++, r)));
      expect(writer.pending()).to.equal(5);
      const records = await Promise.all(first);
      const second = await Promise.all([writer.append({ input: usage(), sign }), writer.append({ input: usage(), sign })]);

      expect(records.map((r) => r.sequence)).to.deep.equal([0n, 1n, 2n, 3n, 4n]);
      expect(second.map((r) => r.sequence)).to.deep.equal([5n, 6n]);
      // Two groups, of five and two; when each committed, its records were durable and none was resolved yet.
      expect(commits).to.deep.equal([
        { records: 5, visible: -1, resolvedBefore: 0 },
        { records: -1, visible: 5, resolvedBefore: 0 },
        { records: 2, visible: -1, resolvedBefore: 5 },
        { records: -1, visible: 7, resolvedBefore: 5 },
      ]);
      expect(writer.pending()).to.equal(0);
    });

    it("rejects a refused record alone, splits a group larger than the maximum, and is drained after", async function () {
      const store = storeWithKeys();
      const sizes: number[] = [];
      const writer = new GroupCommit(store, { onCommit: (records) => sizes.push(records) });
      const calls: Array<Promise<StoredUsageRecord | Error>> = [];
      for (let i = 0; i < MAX_GROUP_RECORDS + 10; i++) {
        const input = i === 3 ? usage({ keyId: "no-such-key" }) : usage();
        calls.push(writer.append({ input, sign }).catch((error: Error) => error));
      }
      const drained = writer.drained();
      const outcomes = await Promise.all(calls);
      await drained;
      expect(sizes).to.deep.equal([MAX_GROUP_RECORDS, 10]);
      expect(outcomes[3]).to.be.instanceOf(UnknownApiKeyError);
      const sequences = outcomes.filter((o): o is StoredUsageRecord => !(o instanceof Error)).map((r) => r.sequence);
      expect(sequences).to.deep.equal(Array.from({ length: MAX_GROUP_RECORDS + 9 }, (_, i) => BigInt(i)));
      expect(store.recordCount()).to.equal(MAX_GROUP_RECORDS + 9);
    });

    it("fails every call of a group whose commit fails, writing nothing", async function () {
      const file = tempDb();
      const store = storeWithKeys(file);
      store.appendRecord(usage(), sign);
      // Another connection holds the write lock past the busy timeout: BEGIN IMMEDIATE cannot start.
      const blocker = new Database(file);
      blocker.pragma("busy_timeout = 0");
      blocker.prepare("BEGIN IMMEDIATE").run();
      const internal = (store as unknown as { db: Database.Database }).db;
      internal.pragma("busy_timeout = 0");
      try {
        const writer = new GroupCommit(store);
        const outcomes = await Promise.all([1, 2].map(() => writer.append({ input: usage(), sign }).then(() => "written", (error: Error) => error.message)));
        expect(outcomes[0]).to.match(/locked|busy/i);
        expect(outcomes[1]).to.equal(outcomes[0]);
      } finally {
        blocker.prepare("ROLLBACK").run();
        blocker.close();
      }
      expect(store.nextSequence(), "no sequence was taken").to.equal(1n);
      expect(store.appendRecord(usage(), sign).sequence).to.equal(1n);
    });
  });

  describe("WalCheckpointer", function () {
    this.timeout(30_000);

    it("with SQLite's own checkpoints off, folds the WAL into the database from a worker thread while appends go on", async function () {
      const file = tempDb();
      const store = UsageStore.open({ path: file, signer: SIGNER, firstSequence: 0n, autoCheckpoint: false });
      openStores.push(store);
      store.insertApiKey(apiKey());
      // Without a checkpointer the WAL only grows: 1,500 one-record commits are far past SQLite's 1,000 pages.
      for (let i = 0; i < 1_500; i++) store.appendRecord(usage(), sign);
      const grown = walBytes(file);
      expect(grown).to.be.greaterThan(1_000 * 4096);

      const reports: CheckpointReport[] = [];
      const errors: string[] = [];
      // 200 ms apart: the appends below start right after a checkpoint, never during one (the WAL restarts only then).
      const checkpointer = new WalCheckpointer({ path: file, durability: "process-crash", intervalMs: 200, onCheckpoint: (r) => reports.push(r), onError: (e) => errors.push(e) });
      try {
        await waitFor("a checkpoint that copied the WAL", () => (reports.some((r) => r.frames > 0) ? true : undefined));
        // The next commits restart the WAL from its beginning instead of growing it.
        for (let i = 0; i < 200; i++) store.appendRecord(usage(), sign);
        expect(walBytes(file)).to.be.at.most(grown);
        await waitFor("the new commits checkpointed", () => (reports.length >= 2 ? true : undefined));
      } finally {
        await checkpointer.stop();
      }
      expect(errors).to.deep.equal([]);
      // The first checkpoint copied the whole grown WAL: a 32-byte header, then frames of a 24-byte header and a page.
      const pageSize = withReader(file, (db) => db.pragma("page_size", { simple: true }) as number);
      expect(reports[0].frames * (pageSize + 24) + 32).to.equal(grown);
      // Everything is in the database file itself once the store closes (its close truncates the WAL).
      store.close();
      expect(walBytes(file)).to.equal(0);
      expect(committedCount(file)).to.equal(1_700);
    });

    it("stops cleanly twice, and reports a store it cannot open as an error instead of crashing", async function () {
      const errors: string[] = [];
      const checkpointer = new WalCheckpointer({ path: "/nonexistent-dir/usage.sqlite", durability: "process-crash", onError: (e) => errors.push(e) });
      await waitFor("the worker's error", () => (errors.length > 0 ? true : undefined));
      expect(errors[0]).to.match(/unable to open|directory does not exist|SQLITE_CANTOPEN/i);
      await checkpointer.stop();
      await checkpointer.stop();
    });
  });
});
