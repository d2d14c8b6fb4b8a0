/**
 * The usage table is declared once (server/store/usage-table.ts) and created by frozen migrations
 * (server/store/migrations.ts). These hold the two together, and hold the released migration to the schema
 * databases in the field already have, so an existing store still opens.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import Database from "better-sqlite3";
import { getAddress, type Hex } from "viem";
import { MIGRATIONS, migrate } from "../../server/store/migrations";
import { UsageStore } from "../../server/store/usage-store";
import { INSERT_RECORD_SQL, insertParams, USAGE_TABLE_COLUMNS } from "../../server/store/usage-table";

const SIGNER = getAddress("0x1111111111111111111111111111111111111111");
const ALICE = getAddress("0xa11ce00000000000000000000000000000000a11");
const hex = (n: number): Hex => `0x${n.toString(16).padStart(64, "0")}`;

/** sha256 of migration 1's SQL as released: editing a shipped migration changes it, and must not happen. */
const MIGRATION_1_SHA256 = "2a30c8287ef8bdd39a17dc37d2de9ff994eb9d66ee2ad0708684cbd32c3359c8";

function migrated(): Database.Database {
  const db = new Database(":memory:");
  migrate(db);
  return db;
}

describe("usage table: one declaration, frozen migrations", function () {
  it("declares exactly the columns the migrations create, in order, with their types and NOT NULL", function () {
    const db = migrated();
    try {
      const info = db.prepare("PRAGMA table_info(usage_records)").all() as { name: string; type: string; notnull: number; pk: number }[];
      // The sequence is the rowid (INTEGER PRIMARY KEY), which SQLite never lets be NULL.
      expect(info.map((c) => ({ name: c.name, type: c.type, notNull: c.notnull === 1 || c.pk === 1 }))).to.deep.equal(
        USAGE_TABLE_COLUMNS.map((c) => ({ ...c })),
      );
    } finally {
      db.close();
    }
  });

  it("inserts into every column but the settlement's, which start NULL", function () {
    const listed = INSERT_RECORD_SQL.match(/\(([^)]*)\)/)![1].split(",").map((name) => name.trim());
    expect(listed).to.deep.equal(USAGE_TABLE_COLUMNS.filter((c) => !c.name.startsWith("settled_")).map((c) => c.name));
  });

  it("refuses, naming the field, a count, id, epoch or time beyond uint32, and a negative or beyond-uint256 amount", function () {
    const counts = ["modelId", "priceEpoch", "inputTokens", "cachedInputTokens", "outputTokens", "reasoningTokens", "gatewayInputTokens", "gatewayOutputTokens", "servedAt"] as const;
    for (const field of counts) {
      expect(insertParams({ [field]: 2 ** 32 - 1 })[field], field).to.equal(2 ** 32 - 1);
      for (const bad of [2 ** 32, -1, 0.5]) expect(() => insertParams({ [field]: bad }), `${field} ${bad}`).to.throw(RangeError, field);
    }
    for (const field of ["inputPrice", "cachedInputPrice", "outputPrice", "cost"] as const) {
      expect(insertParams({ [field]: 2n ** 256n - 1n })[field], field).to.equal((2n ** 256n - 1n).toString());
      for (const bad of [2n ** 256n, -1n]) expect(() => insertParams({ [field]: bad }), `${field} ${bad}`).to.throw(RangeError, field);
    }
  });

  it("keeps migration 1 as released, so databases created by earlier gateways still open", function () {
    expect(MIGRATIONS[0].version).to.equal(1);
    expect(createHash("sha256").update(MIGRATIONS[0].sql).digest("hex")).to.equal(MIGRATION_1_SHA256);
  });

  it("opens a store written under the released schema and reads its record back whole", function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "usage-table-"));
    const file = path.join(dir, "usage.sqlite");
    try {
      // What a gateway of the first release left on disk: migration 1, its version, one key and one record.
      const old = new Database(file);
      old.exec(MIGRATIONS[0].sql);
      old.pragma("user_version = 1");
      old.prepare("INSERT INTO api_keys (id, buyer, key_hash, label, tags, created_at) VALUES ('k', ?, '0x01', '', '[]', 0)").run(ALICE);
      old.prepare(`
        INSERT INTO usage_records (
          sequence, request_id, buyer, key_id, tags, endpoint, model_id, model_name, price_epoch,
          input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,
          gateway_input_tokens, gateway_output_tokens, count_source, served_at,
          input_price, cached_input_price, output_price, cost,
          content_hash, content_salt, request_hash, response_hash, streamed, completed,
          receipt_hash, signature, settled_tx, settled_batch, settled_at
        ) VALUES (
          5, 'req-5', @buyer, 'k', '["team:a"]', 'embeddings', 9, 'embed', 2,
          100, 40, 0, 0, 101, 0, 'gateway', 1700000000,
          '18446744073709551617', '3', '0', '340282366920938463463374607431768211457',
          @h1, @h2, @h3, @h4, 0, 1, @h5, @sig, @tx, 'batch-1', 1700000100
        )`).run({ buyer: ALICE, h1: hex(1), h2: hex(2), h3: hex(3), h4: hex(4), h5: hex(5), sig: hex(6), tx: hex(7) });
      old.close();

      const store = UsageStore.open({ path: file, signer: SIGNER, firstSequence: 5n });
      try {
        expect(store.nextSequence()).to.equal(6n);
        expect(store.recordBySequence(5n)).to.deep.equal({
          sequence: 5n,
          signer: SIGNER,
          requestId: "req-5",
          buyer: ALICE,
          keyId: "k",
          tags: ["team:a"],
          endpoint: "embeddings",
          modelId: 9,
          modelName: "embed",
          priceEpoch: 2,
          inputTokens: 100,
          cachedInputTokens: 40,
          outputTokens: 0,
          reasoningTokens: 0,
          gatewayInputTokens: 101,
          gatewayOutputTokens: 0,
          countSource: "gateway",
          servedAt: 1_700_000_000,
          inputPrice: 2n ** 64n + 1n,
          cachedInputPrice: 3n,
          outputPrice: 0n,
          cost: 2n ** 128n + 1n,
          contentHash: hex(1),
          contentSalt: hex(2),
          requestHash: hex(3),
          responseHash: hex(4),
          streamed: false,
          completed: true,
          receiptHash: hex(5),
          signature: hex(6),
          settlement: { txHash: hex(7), batchId: "batch-1", settledAt: 1_700_000_100 },
        });
      } finally {
        store.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
