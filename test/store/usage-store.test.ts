import { expect } from "chai";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { getAddress, keccak256, type Address, type Hex } from "viem";
import { MIGRATIONS, SchemaTooNewError } from "../../server/store/migrations";
import {
  SettlementConflictError,
  StoreBehindChainError,
  StoreChainMismatchError,
  StoreSignerMismatchError,
  StoreDeploymentMismatchError,
  UnknownApiKeyError,
  UsageStore,
} from "../../server/store/usage-store";
import { ALICE, apiKey, BOB, closeStores, open, openStores, OTHER_SIGNER, removeTempDirs, sign, SIGNER, storeWithKeys, tempDb, usage } from "../helpers/store-fixtures";

const STORE_MODULE = path.resolve(__dirname, "../../server/store/usage-store.ts");
const REPO_ROOT = path.resolve(__dirname, "../..");

function sequencesOf(records: { sequence: bigint }[]): bigint[] {
  return records.map((r) => r.sequence);
}

function range(first: bigint, count: number): bigint[] {
  return Array.from({ length: count }, (_, i) => first + BigInt(i));
}

function spentOf(store: UsageStore, buyer: Address, id: string): bigint | undefined {
  return store.listApiKeys(buyer).find((k) => k.id === id)?.spent;
}

describe("UsageStore", function () {
  afterEach(function () {
    closeStores();
  });

  after(function () {
    removeTempDirs();
  });

  describe("sequence numbers", function () {
    it("assigns contiguous sequences starting at the chain's next sequence", function () {
      const store = storeWithKeys(tempDb(), 1_000n);
      expect(store.nextSequence()).to.equal(1_000n);
      const stored = [1, 2, 3, 4, 5].map(() => store.appendRecord(usage(), sign));
      expect(sequencesOf(stored)).to.deep.equal(range(1_000n, 5));
      expect(store.nextSequence()).to.equal(1_005n);
      expect(store.recordCount()).to.equal(5);
    });

    it("hands sign() the sequence the record is stored under, and stores its receipt", function () {
      const store = storeWithKeys();
      const seen: bigint[] = [];
      const stored = store.appendRecord(usage(), (sequence) => {
        seen.push(sequence);
        return sign(sequence);
      });
      expect(seen).to.deep.equal([0n]);
      const read = store.recordBySequence(0n);
      expect(read).to.deep.equal(stored);
      expect(read?.receiptHash).to.equal(sign(0n).receiptHash);
      expect(read?.signature).to.equal(sign(0n).signature);
      expect(read?.signer).to.equal(SIGNER);
      expect(read?.settlement).to.equal(null);
    });

    it("writes nothing and leaves no gap when sign throws", function () {
      const store = storeWithKeys(tempDb(), 10n);
      store.appendRecord(usage({ cost: 5n }), sign);
      expect(() =>
        store.appendRecord(usage({ cost: 7n }), () => {
          throw new Error("signer unavailable");
        }),
      ).to.throw("signer unavailable");
      expect(store.recordCount()).to.equal(1);
      expect(store.recordBySequence(11n)).to.equal(undefined);
      expect(store.nextSequence()).to.equal(11n);
      expect(spentOf(store, ALICE, "key-alice")).to.equal(5n);

      expect(store.appendRecord(usage(), sign).sequence).to.equal(11n);
    });

    it("writes nothing and leaves no gap when the insert fails (same request recorded twice)", function () {
      const store = storeWithKeys();
      const first = usage({ cost: 9n });
      store.appendRecord(first, sign);
      expect(() => store.appendRecord({ ...first, cost: 11n }, sign)).to.throw(/already has a usage record/);
      expect(store.recordCount()).to.equal(1);
      expect(store.nextSequence()).to.equal(1n);
      expect(spentOf(store, ALICE, "key-alice")).to.equal(9n);
      expect(store.appendRecord(usage(), sign).sequence).to.equal(1n);
    });

    it("refuses a record for a key it does not hold, or of another buyer's key, without signing", function () {
      const store = storeWithKeys();
      let signed = 0;
      const counting = (sequence: bigint) => {
        signed += 1;
        return sign(sequence);
      };
      expect(() => store.appendRecord(usage({ keyId: "no-such-key" }), counting)).to.throw(UnknownApiKeyError);
      expect(() => store.appendRecord(usage({ buyer: BOB, keyId: "key-alice" }), counting)).to.throw(/not .* owner/);
      expect(signed).to.equal(0);
      expect(store.recordCount()).to.equal(0);
      expect(store.nextSequence()).to.equal(0n);
    });

    it("refuses, rather than duplicates, a sequence another writer with the same signer already took", function () {
      const file = tempDb();
      const first = storeWithKeys(file);
      const second = open(file);
      first.appendRecord(usage(), sign);
      expect(() => second.appendRecord(usage(), sign)).to.throw(/sequence 0 already exists.*another process/);
      expect(second.recordCount()).to.equal(1);
      expect(second.recordBySequence(0n)?.signature).to.equal(sign(0n).signature);
      expect(spentOf(second, ALICE, "key-alice")).to.equal(1_000n);
    });

    it("refuses token counts the settlement batch could not encode, before they take a sequence", function () {
      const store = storeWithKeys();
      expect(() => store.appendRecord(usage({ cachedInputTokens: 200, inputTokens: 100 }), sign)).to.throw(RangeError);
      expect(() => store.appendRecord(usage({ outputTokens: 1.5 }), sign)).to.throw(RangeError);
      expect(() => store.appendRecord(usage({ inputTokens: -1 }), sign)).to.throw(RangeError);
      expect(() => store.appendRecord(usage({ outputTokens: 2 ** 32 }), sign)).to.throw(RangeError);
      expect(store.recordCount()).to.equal(0);
      expect(store.appendRecord(usage(), sign).sequence).to.equal(0n);
    });
  });

  describe("opening", function () {
    it("resumes after reopening at the last stored sequence + 1, even when the chain is behind", function () {
      const file = tempDb();
      const store = storeWithKeys(file, 50n);
      for (let i = 0; i < 3; i++) store.appendRecord(usage(), sign);
      store.close();

      const reopened = open(file, 51n); // the chain settled only 50
      expect(reopened.nextSequence()).to.equal(53n);
      expect(reopened.appendRecord(usage(), sign).sequence).to.equal(53n);
      expect(sequencesOf(reopened.recordsOf(ALICE))).to.deep.equal(range(50n, 4));
    });

    it("starts an empty store at firstSequence", function () {
      const file = tempDb();
      open(file, 0n).close();
      expect(open(file, 77n).nextSequence()).to.equal(77n);
    });

    it("throws StoreBehindChainError when the chain has settled sequences this store never wrote", function () {
      const file = tempDb();
      const store = storeWithKeys(file, 0n);
      store.appendRecord(usage(), sign);
      store.appendRecord(usage(), sign);
      store.close();

      let caught: unknown;
      try {
        open(file, 10n);
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(StoreBehindChainError);
      const message = (caught as Error).message;
      expect(message).to.include("wrong database");
      expect(message).to.include("used by another gateway");
      expect(message).to.include("sequence 1");
      // The exact boundary is fine: the chain settled 0..1 and the store ends at 1.
      expect(open(file, 2n).nextSequence()).to.equal(2n);
    });

    it("refuses a chain that expects a sequence below everything the store holds", function () {
      const file = tempDb();
      const store = storeWithKeys(file, 100n);
      store.appendRecord(usage(), sign);
      store.close();
      expect(() => open(file, 40n)).to.throw(StoreChainMismatchError, /40\.\.99 exist nowhere/);
    });

    it("refuses a database holding another signer's records", function () {
      const file = tempDb();
      const store = storeWithKeys(file);
      store.appendRecord(usage(), sign);
      store.close();
      expect(() => open(file, 1n, OTHER_SIGNER)).to.throw(StoreSignerMismatchError, new RegExp(`records of gateway signer ${SIGNER}`));
      // The refusal left the store usable by its own signer.
      expect(open(file, 1n).nextSequence()).to.equal(1n);
    });

    it("belongs to the chain and contract it was first opened for, and refuses another (a reset dev chain, another deployment)", function () {
      const file = tempDb();
      const chain = { chainId: 31337, contract: getAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3") };
      open(file, 0n, SIGNER).close();
      UsageStore.open({ path: file, signer: SIGNER, firstSequence: 0n, chain }).close();
      UsageStore.open({ path: file, signer: SIGNER, firstSequence: 0n, chain }).close();
      expect(() => UsageStore.open({ path: file, signer: SIGNER, firstSequence: 0n, chain: { ...chain, chainId: 1 } })).to.throw(StoreDeploymentMismatchError, /belongs to deployment 31337:0x5FbDB/);
      expect(() => UsageStore.open({ path: file, signer: SIGNER, firstSequence: 0n, chain: { ...chain, contract: OTHER_SIGNER } })).to.throw(StoreDeploymentMismatchError);
    });

    it("lets a database with no records be taken over by a new signer", function () {
      const file = tempDb();
      storeWithKeys(file).close();
      const store = open(file, 5n, OTHER_SIGNER.toLowerCase() as Address);
      expect(store.signer).to.equal(OTHER_SIGNER);
      expect(store.appendRecord(usage(), sign).signer).to.equal(OTHER_SIGNER);
      store.close();
      expect(() => open(file, 6n, SIGNER)).to.throw(StoreSignerMismatchError);
    });

    it("runs in WAL mode at the latest schema version, and refuses a schema from a newer gateway", function () {
      const file = tempDb();
      open(file).close();
      const db = new Database(file);
      try {
        expect(db.pragma("journal_mode", { simple: true })).to.equal("wal");
        expect(db.pragma("user_version", { simple: true })).to.equal(MIGRATIONS.length);
        db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
      } finally {
        db.close();
      }
      expect(() => open(file)).to.throw(SchemaTooNewError, /newer gateway/);
    });

    it("accepts power-loss durability and keeps the same data", function () {
      const file = tempDb();
      const store = UsageStore.open({ path: file, signer: SIGNER, firstSequence: 3n, durability: "power-loss" });
      openStores.push(store);
      store.insertApiKey(apiKey());
      store.appendRecord(usage(), sign);
      store.close();
      expect(open(file, 3n).recordBySequence(3n)?.requestId).to.match(/^req-/);
    });

    it("checkpoints the WAL into the database file on close", function () {
      const file = tempDb();
      const store = storeWithKeys(file);
      for (let i = 0; i < 20; i++) store.appendRecord(usage(), sign);
      store.close();
      store.close(); // closing twice is harmless
      const wal = `${file}-wal`;
      expect(!fs.existsSync(wal) || fs.statSync(wal).size === 0).to.equal(true);
    });
  });

  describe("money", function () {
    it("round-trips amounts above 2^64 and 2^200 exactly, and sums spent beyond int64", function () {
      const store = open(tempDb());
      const huge = 2n ** 200n + 12_345n;
      store.insertApiKey(apiKey({ spendCap: 2n ** 255n + 1n }));
      const input = usage({
        inputPrice: 2n ** 64n + 1n,
        cachedInputPrice: 2n ** 70n + 3n,
        outputPrice: huge,
        cost: 2n ** 64n + 7n,
      });
      const stored = store.appendRecord(input, sign);
      store.appendRecord(usage({ cost: huge }), sign);

      const read = store.recordBySequence(stored.sequence);
      expect(read?.inputPrice).to.equal(2n ** 64n + 1n);
      expect(read?.cachedInputPrice).to.equal(2n ** 70n + 3n);
      expect(read?.outputPrice).to.equal(huge);
      expect(read?.cost).to.equal(2n ** 64n + 7n);
      const key = store.findApiKeyByHash(apiKey().keyHash);
      expect(key?.spendCap).to.equal(2n ** 255n + 1n);
      expect(key?.spent).to.equal(2n ** 64n + 7n + huge);
    });

    it("stores amounts as decimal TEXT and token counts as INTEGER, never REAL", function () {
      const file = tempDb();
      const store = storeWithKeys(file);
      store.appendRecord(usage({ cost: 2n ** 100n }), sign);
      store.close();
      const db = new Database(file, { readonly: true });
      try {
        const row = db
          .prepare(
            `SELECT typeof(cost) AS cost, cost AS costText, typeof(output_price) AS price,
                    typeof(input_tokens) AS tokens, typeof(served_at) AS served,
                    (SELECT typeof(spent) FROM api_keys WHERE id = 'key-alice') AS spent
             FROM usage_records`,
          )
          .get();
        expect(row).to.deep.equal({
          cost: "text",
          costText: (2n ** 100n).toString(),
          price: "text",
          tokens: "integer",
          served: "integer",
          spent: "text",
        });
      } finally {
        db.close();
      }
    });

    it("refuses negative and beyond-uint256 amounts, writing nothing", function () {
      const store = storeWithKeys();
      expect(() => store.appendRecord(usage({ cost: -1n }), sign)).to.throw(RangeError, /cost/);
      expect(() => store.appendRecord(usage({ outputPrice: 2n ** 256n }), sign)).to.throw(RangeError, /outputPrice/);
      expect(() => store.insertApiKey(apiKey({ id: "k2", keyHash: keccak256("0x02"), spendCap: -5n }))).to.throw(RangeError);
      expect(store.recordCount()).to.equal(0);
      expect(spentOf(store, ALICE, "key-alice")).to.equal(0n);
    });
  });

  describe("recordsOf", function () {
    let store: UsageStore;

    beforeEach(function () {
      store = storeWithKeys();
      // seq 0..5 Alice, 6..7 Bob: keys, tags, models and times vary independently.
      store.appendRecord(usage({ servedAt: 100, modelName: "tiny-chat" }), sign); // 0
      store.appendRecord(usage({ servedAt: 200, modelName: "tiny-embed", endpoint: "embeddings" }), sign); // 1
      store.appendRecord(usage({ servedAt: 300, keyId: "key-alice-2", tags: ["team:ads"] }), sign); // 2
      store.appendRecord(usage({ servedAt: 400, modelName: "tiny-embed" }), sign); // 3
      store.appendRecord(usage({ servedAt: 500, keyId: "key-alice-2", tags: ["team:ads"], modelName: "tiny-embed" }), sign); // 4
      store.appendRecord(usage({ servedAt: 600, tags: ["team:search-extra"] }), sign); // 5
      store.appendRecord(usage({ servedAt: 300, buyer: BOB, keyId: "key-bob", tags: ["team:search"] }), sign); // 6
      store.appendRecord(usage({ servedAt: 700, buyer: BOB, keyId: "key-bob", tags: ["team:search"] }), sign); // 7
    });

    it("returns only the buyer's own records, in sequence order", function () {
      expect(sequencesOf(store.recordsOf(ALICE))).to.deep.equal([0n, 1n, 2n, 3n, 4n, 5n]);
      expect(sequencesOf(store.recordsOf(BOB))).to.deep.equal([6n, 7n]);
      expect(store.recordsOf(BOB.toLowerCase() as Address)).to.have.length(2);
      expect(store.recordsOf(getAddress("0x3333333333333333333333333333333333333333"))).to.deep.equal([]);
    });

    it("filters by key, exact tag and model", function () {
      expect(sequencesOf(store.recordsOf(ALICE, { keyId: "key-alice-2" }))).to.deep.equal([2n, 4n]);
      expect(sequencesOf(store.recordsOf(ALICE, { tag: "team:ads" }))).to.deep.equal([2n, 4n]);
      // exact match: "team:search" is not a prefix match of "team:search-extra"
      expect(sequencesOf(store.recordsOf(ALICE, { tag: "team:search" }))).to.deep.equal([0n, 1n, 3n]);
      expect(sequencesOf(store.recordsOf(ALICE, { tag: "workflow:nightly" }))).to.deep.equal([0n, 1n, 3n]);
      expect(sequencesOf(store.recordsOf(ALICE, { modelName: "tiny-embed" }))).to.deep.equal([1n, 3n, 4n]);
      expect(sequencesOf(store.recordsOf(BOB, { keyId: "key-alice" }))).to.deep.equal([]);
    });

    it("filters by a half-open time range [from, to)", function () {
      expect(sequencesOf(store.recordsOf(ALICE, { from: 200, to: 500 }))).to.deep.equal([1n, 2n, 3n]);
      expect(sequencesOf(store.recordsOf(ALICE, { from: 500 }))).to.deep.equal([4n, 5n]);
      expect(sequencesOf(store.recordsOf(ALICE, { to: 200 }))).to.deep.equal([0n]);
    });

    it("pages with afterSequence and limit", function () {
      const page1 = store.recordsOf(ALICE, { limit: 4 });
      expect(sequencesOf(page1)).to.deep.equal([0n, 1n, 2n, 3n]);
      const page2 = store.recordsOf(ALICE, { limit: 4, afterSequence: page1[page1.length - 1].sequence });
      expect(sequencesOf(page2)).to.deep.equal([4n, 5n]);
      expect(store.recordsOf(ALICE, { afterSequence: 5n })).to.deep.equal([]);
      expect(() => store.recordsOf(ALICE, { limit: 0 })).to.throw(RangeError);
    });

    it("combines filters with AND", function () {
      expect(sequencesOf(store.recordsOf(ALICE, { modelName: "tiny-embed", keyId: "key-alice" }))).to.deep.equal([1n, 3n]);
      expect(sequencesOf(store.recordsOf(ALICE, { modelName: "tiny-embed", tag: "team:ads", from: 450 }))).to.deep.equal([4n]);
      expect(
        sequencesOf(store.recordsOf(ALICE, { tag: "team:search", from: 150, afterSequence: 1n, limit: 5 })),
      ).to.deep.equal([3n]);
      expect(sequencesOf(store.recordsOf(BOB, { tag: "team:search", from: 300, to: 301 }))).to.deep.equal([6n]);
    });

    it("returns every field as appended", function () {
      const input = usage({ buyer: BOB, keyId: "key-bob", streamed: true, completed: false, countSource: "gateway", tags: [] });
      const stored = store.appendRecord(input, sign);
      const [read] = store.recordsOf(BOB, { afterSequence: 7n });
      expect(read).to.deep.equal({ ...input, sequence: 8n, signer: SIGNER, ...sign(8n), settlement: null });
      expect(read).to.deep.equal(stored);
    });
  });

  describe("settlement", function () {
    const batchA = { txHash: keccak256("0xaa"), batchId: "batch-a", settledAt: 1_700_000_100 };
    const batchB = { txHash: keccak256("0xbb"), batchId: "batch-b", settledAt: 1_700_000_200 };
    let store: UsageStore;

    beforeEach(function () {
      store = storeWithKeys(tempDb(), 20n);
      for (let i = 0; i < 10; i++) store.appendRecord(usage(), sign); // 20..29
    });

    it("lists unsettled records in sequence order from a given sequence, up to a limit", function () {
      expect(sequencesOf(store.unsettledRecords(0n, 100))).to.deep.equal(range(20n, 10));
      expect(sequencesOf(store.unsettledRecords(25n, 3))).to.deep.equal([25n, 26n, 27n]);
      store.markSettled(20n, 22n, batchA);
      expect(sequencesOf(store.unsettledRecords(20n, 4))).to.deep.equal([23n, 24n, 25n, 26n]);
    });

    it("marks a range settled once; replaying the same settlement changes nothing", function () {
      expect(store.markSettled(20n, 24n, batchA)).to.equal(5);
      expect(store.markSettled(20n, 24n, batchA)).to.equal(0);
      expect(store.markSettled(20n, 24n, { ...batchA, txHash: batchA.txHash.toUpperCase().replace("0X", "0x") as Hex })).to.equal(0);
      expect(store.recordBySequence(22n)?.settlement).to.deep.equal(batchA);
      expect(store.recordBySequence(25n)?.settlement).to.equal(null);
    });

    it("refuses to overwrite a different settlement, and changes nothing in the range", function () {
      store.markSettled(22n, 23n, batchA);
      expect(() => store.markSettled(20n, 25n, batchB)).to.throw(SettlementConflictError, /sequence 22 is already settled by batch batch-a/);
      expect(store.recordBySequence(20n)?.settlement).to.equal(null);
      expect(store.recordBySequence(25n)?.settlement).to.equal(null);
      expect(store.recordBySequence(22n)?.settlement).to.deep.equal(batchA);
    });

    it("reports what waits from a sequence on: how many, the first, and the oldest serving time", function () {
      expect(store.pendingUsage(0n)).to.deep.equal({ count: 10, firstSequence: 20n, oldestServedAt: 1_700_000_000 });
      store.markSettled(20n, 22n, batchA);
      expect(store.pendingUsage(0n)).to.deep.equal({ count: 7, firstSequence: 23n, oldestServedAt: 1_700_000_000 });
      expect(store.pendingUsage(27n)).to.include({ count: 3, firstSequence: 27n });
      store.markSettled(23n, 29n, batchB);
      expect(store.pendingUsage(0n)).to.deep.equal({ count: 0, firstSequence: null, oldestServedAt: null });
    });

    it("refuses a range holding records this store never wrote", function () {
      expect(() => store.markSettled(28n, 31n, batchA)).to.throw(/holds 2 of its 4 records/);
      expect(store.recordBySequence(28n)?.settlement).to.equal(null);
      expect(() => store.markSettled(25n, 24n, batchA)).to.throw(RangeError);
    });
  });

  describe("retained content and settled batches", function () {
    it("keeps a call's bytes in the record's own transaction, and none when the append fails or none are given", function () {
      const store = storeWithKeys();
      const content = { request: new TextEncoder().encode('{"messages":[]}'), response: new Uint8Array([0, 1, 2, 255]) };
      store.appendRecord(usage(), sign, content);
      store.appendRecord(usage(), sign);
      expect(store.contentOf(0n)).to.deep.equal(content);
      expect(store.contentOf(1n)).to.equal(undefined);
      expect(() =>
        store.appendRecord(usage(), () => {
          throw new Error("signer unavailable");
        }, content),
      ).to.throw("signer unavailable");
      expect(store.contentOf(2n)).to.equal(undefined);
      expect(store.appendRecord(usage(), sign).sequence).to.equal(2n);
      expect(store.contentOf(2n)).to.equal(undefined);
    });

    it("reads a settled batch's receipt hashes in sequence order, the leaves of its content root", function () {
      const store = storeWithKeys(tempDb(), 5n);
      for (let i = 0; i < 5; i++) store.appendRecord(usage(), sign);
      store.markSettled(5n, 7n, { txHash: keccak256("0x01"), batchId: "batch-a", settledAt: 1 });
      store.markSettled(8n, 8n, { txHash: keccak256("0x02"), batchId: "batch-b", settledAt: 2 });
      expect(store.settledBatchLeaves("batch-a")).to.deep.equal({ batchId: "batch-a", firstSequence: 5n, receiptHashes: [5n, 6n, 7n].map((s) => sign(s).receiptHash) });
      expect(store.settledBatchLeaves("batch-b")?.receiptHashes).to.deep.equal([sign(8n).receiptHash]);
      expect(store.settledBatchLeaves("batch-c")).to.equal(undefined);
    });
  });

  describe("API keys", function () {
    it("inserts, finds by hash (any hex case), and lists only the buyer's keys", function () {
      const store = open(tempDb());
      const alice = apiKey({ models: ["tiny-chat"], spendCap: 10n ** 24n, expiresAt: 1_800_000_000, tags: ["team:x"] });
      store.insertApiKey(alice);
      store.insertApiKey(apiKey({ id: "key-alice-b", createdAt: 1_700_000_500 }));
      store.insertApiKey(apiKey({ id: "key-bob", buyer: BOB }));

      const found = store.findApiKeyByHash(alice.keyHash.toUpperCase().replace("0X", "0x") as Hex);
      expect(found).to.deep.equal({ ...alice, revokedAt: null, spent: 0n });
      expect(store.findApiKeyByHash(keccak256("0x1234"))).to.equal(undefined);
      expect(store.listApiKeys(ALICE).map((k) => k.id)).to.deep.equal(["key-alice", "key-alice-b"]);
      expect(store.listApiKeys(BOB).map((k) => k.id)).to.deep.equal(["key-bob"]);
    });

    it("refuses a second key with the same hash", function () {
      const store = open(tempDb());
      store.insertApiKey(apiKey());
      expect(() => store.insertApiKey(apiKey({ id: "another", keyHash: apiKey().keyHash }))).to.throw(/UNIQUE/);
      expect(store.listApiKeys(ALICE)).to.have.length(1);
    });

    it("revokes a key of its own buyer once, and not another buyer's key", function () {
      const store = storeWithKeys();
      expect(store.revokeApiKey(BOB, "key-alice", 1_700_000_900)).to.equal(false);
      expect(store.revokeApiKey(ALICE, "key-alice", 1_700_000_900)).to.equal(true);
      expect(store.revokeApiKey(ALICE, "key-alice", 1_700_000_999)).to.equal(false);
      expect(store.revokeApiKey(ALICE, "no-such-key", 1_700_000_999)).to.equal(false);
      expect(store.findApiKeyByHash(apiKey().keyHash)?.revokedAt).to.equal(1_700_000_900);
      expect(store.findApiKeyByHash(apiKey({ id: "key-bob" }).keyHash)?.revokedAt).to.equal(null);
    });

    it("keeps a running spent total per key, across reopen", function () {
      const file = tempDb();
      const store = storeWithKeys(file);
      store.appendRecord(usage({ cost: 100n }), sign);
      store.appendRecord(usage({ cost: 250n }), sign);
      store.appendRecord(usage({ keyId: "key-alice-2", cost: 7n }), sign);
      store.appendRecord(usage({ buyer: BOB, keyId: "key-bob", cost: 1n }), sign);
      store.close();
      const reopened = open(file);
      expect(spentOf(reopened, ALICE, "key-alice")).to.equal(350n);
      expect(spentOf(reopened, ALICE, "key-alice-2")).to.equal(7n);
      expect(spentOf(reopened, BOB, "key-bob")).to.equal(1n);
    });
  });

  describe("nonces", function () {
    const later = Math.floor(Date.now() / 1000) + 3_600;

    it("accepts a (buyer, nonce) once and refuses its replay, whatever the hex case", function () {
      const store = open(tempDb());
      const nonce = keccak256("0x01");
      expect(store.consumeNonce(ALICE, nonce, later)).to.equal(true);
      expect(store.consumeNonce(ALICE, nonce, later)).to.equal(false);
      expect(store.consumeNonce(ALICE.toLowerCase() as Address, nonce.toUpperCase().replace("0X", "0x") as Hex, later)).to.equal(false);
      expect(store.consumeNonce(BOB, nonce, later)).to.equal(true);
      expect(store.consumeNonce(ALICE, keccak256("0x02"), later)).to.equal(true);
    });

    it("remembers nonces across reopen", function () {
      const file = tempDb();
      open(file).consumeNonce(ALICE, keccak256("0x03"), later);
      openStores.pop()?.close();
      expect(open(file).consumeNonce(ALICE, keccak256("0x03"), later)).to.equal(false);
    });

    it("prunes nonces past their expiry", function () {
      const store = open(tempDb());
      const nonce = keccak256("0x04");
      expect(store.consumeNonce(ALICE, nonce, 1_000, 900)).to.equal(true);
      expect(store.consumeNonce(ALICE, nonce, 1_000, 1_000)).to.equal(false); // still live at its expiry second
      expect(store.consumeNonce(BOB, keccak256("0x05"), 5_000, 1_001)).to.equal(true); // prunes the first
      expect(store.consumeNonce(ALICE, nonce, 2_000, 1_002)).to.equal(true);
    });
  });

  describe("crash safety", function () {
    /**
     * A child process appends as fast as it can and prints each sequence after appendRecord returns
     * (i.e. after COMMIT). SIGKILL gives it no chance to flush or close anything.
     */
    const CHILD = `
      require("ts-node/register/transpile-only");
      const { UsageStore } = require(process.argv[1]);
      const [file, first] = process.argv.slice(2);
      const store = UsageStore.open({ path: file, signer: "${SIGNER}", firstSequence: BigInt(first) });
      const hash = (n) => "0x" + n.toString(16).padStart(64, "0");
      if (!store.findApiKeyByHash(hash(999))) {
        store.insertApiKey({ id: "k", buyer: "${ALICE}", keyHash: hash(999), label: "", spendCap: null,
          models: null, tags: [], expiresAt: null, createdAt: 0 });
      }
      for (let i = 0; ; i++) {
        const requestId = process.pid + "-" + i;
        const record = store.appendRecord({
          requestId, buyer: "${ALICE}", keyId: "k", tags: ["t"], endpoint: "chat.completions",
          modelId: 1, modelName: "m", priceEpoch: 0, inputTokens: 10, cachedInputTokens: 0, outputTokens: 5,
          reasoningTokens: 0, gatewayInputTokens: 10, gatewayOutputTokens: 5, countSource: "upstream",
          servedAt: 1700000000, inputPrice: 1n, cachedInputPrice: 1n, outputPrice: 1n, cost: 3n,
          contentHash: hash(1), contentSalt: hash(2), requestHash: hash(3), responseHash: hash(4),
          streamed: false, completed: true,
        }, (s) => ({ receiptHash: hash(s), signature: hash(s) }));
        process.stdout.write(record.sequence + "\\n");
      }
    `;

    function runAndKill(file: string, firstSequence: bigint, killAfterLines: number): Promise<bigint[]> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["-e", CHILD, STORE_MODULE, file, firstSequence.toString()], {
          cwd: REPO_ROOT,
          stdio: ["ignore", "pipe", "pipe"],
        });
        const printed: bigint[] = [];
        let pending = "";
        let stderr = "";
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.stdout.on("data", (chunk: Buffer) => {
          pending += chunk.toString();
          const lines = pending.split("\n");
          pending = lines.pop() ?? "";
          for (const line of lines) printed.push(BigInt(line));
          if (printed.length >= killAfterLines) child.kill("SIGKILL");
        });
        child.on("error", reject);
        child.on("close", (code, signal) => {
          if (signal !== "SIGKILL") reject(new Error(`child exited with ${code} before being killed: ${stderr}`));
          else resolve(printed);
        });
      });
    }

    function expectIntact(file: string, firstSequence: bigint, printed: bigint[], runs: number): bigint {
      const store = open(file, firstSequence);
      const records = store.recordsOf(ALICE);
      const stored = sequencesOf(records);
      expect(stored).to.deep.equal(range(firstSequence, stored.length), "stored sequences are contiguous");
      expect(new Set(records.map((r) => r.requestId)).size).to.equal(records.length, "no request recorded twice");
      for (const sequence of printed) {
        expect(stored.filter((s) => s === sequence), `sequence ${sequence}`).to.have.length(1);
      }
      // Per run, at most one record can have committed between its last print and the kill.
      expect(stored.length - printed.length).to.be.within(0, runs);
      expect(store.nextSequence()).to.equal(firstSequence + BigInt(stored.length));
      expect(spentOf(store, ALICE, "k")).to.equal(3n * BigInt(stored.length), "spent moves with the records");
      const next = store.nextSequence();
      openStores.pop()?.close();
      return next;
    }

    it("loses no committed record and writes none twice when the process is killed mid-stream", async function () {
      this.timeout(60_000);
      const file = tempDb();
      const first = await runAndKill(file, 500n, 400);
      expect(first.length).to.be.at.least(400);
      expect(first[0]).to.equal(500n);
      const next = expectIntact(file, 500n, first, 1);

      // A second crash after restart resumes exactly where the first run stopped.
      const second = await runAndKill(file, 500n, 300);
      expect(second[0]).to.equal(next);
      expectIntact(file, 500n, [...first, ...second], 2);
    });
  });
});
