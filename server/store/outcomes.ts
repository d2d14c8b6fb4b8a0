/**
 * Outcomes: what a workflow run (a trace) produced, as the buyer reports it (`POST /v1/outcomes`): a type such
 * as `ticket_resolved`, success or failure, and an optional value. The usage summary prices them against the
 * trace's calls. One outcome per (buyer, trace, type); an outcome only for a trace the buyer's own calls carry,
 * so a report never holds runs that cost nothing here, and another buyer's traces cannot be probed.
 */
import Database from "better-sqlite3";
import { getAddress, type Address } from "viem";

export interface OutcomeInput {
  buyer: Address;
  traceId: string;
  type: string;
  success: boolean;
  /** The buyer's own measure of what the outcome was worth, a decimal string as given; not money we hold. */
  value: string | null;
  /** The API key that posted it. */
  keyId: string;
  recordedAt: number;
}

export interface StoredOutcome extends OutcomeInput {
  id: number;
}

/** Why an outcome was not recorded; nothing was written either way. */
export type OutcomeRefusal = "unknown_trace" | "duplicate";

export type RecordOutcomeResult = { outcome: StoredOutcome } | { refused: OutcomeRefusal };

interface OutcomeRow {
  id: number;
  buyer: string;
  trace_id: string;
  type: string;
  success: number;
  value: string | null;
  key_id: string;
  recorded_at: number;
}

function toOutcome(row: OutcomeRow): StoredOutcome {
  return {
    id: row.id,
    buyer: row.buyer as Address,
    traceId: row.trace_id,
    type: row.type,
    success: row.success === 1,
    value: row.value,
    keyId: row.key_id,
    recordedAt: row.recorded_at,
  };
}

export class OutcomeTable {
  private readonly traceKnownStmt: Database.Statement<[string, string], { one: number }>;
  private readonly insertStmt: Database.Statement<[Record<string, unknown>]>;
  private readonly ofBuyerStmt: Database.Statement<[string], OutcomeRow>;
  private readonly countStmt: Database.Statement<[], { n: number }>;
  private readonly recordTx: Database.Transaction<(input: OutcomeInput) => RecordOutcomeResult>;

  constructor(db: Database.Database) {
    this.traceKnownStmt = db.prepare("SELECT 1 AS one FROM call_attribution WHERE buyer = ? AND trace_id = ? LIMIT 1");
    this.insertStmt = db.prepare(
      "INSERT INTO outcomes (buyer, trace_id, type, success, value, key_id, recorded_at) VALUES (@buyer, @traceId, @type, @success, @value, @keyId, @recordedAt)",
    );
    this.ofBuyerStmt = db.prepare("SELECT * FROM outcomes WHERE buyer = ? ORDER BY id");
    this.countStmt = db.prepare("SELECT COUNT(*) AS n FROM outcomes");
    // One transaction: the trace check and the insert see the same database.
    this.recordTx = db.transaction((input: OutcomeInput) => this.write(input));
  }

  record(input: OutcomeInput): RecordOutcomeResult {
    return this.recordTx.immediate({ ...input, buyer: getAddress(input.buyer) });
  }

  private write(input: OutcomeInput): RecordOutcomeResult {
    if (!this.traceKnownStmt.get(input.buyer, input.traceId)) return { refused: "unknown_trace" };
    try {
      const { lastInsertRowid } = this.insertStmt.run({ ...input, success: input.success ? 1 : 0 });
      return { outcome: { ...input, id: Number(lastInsertRowid) } };
    } catch (error) {
      // UNIQUE (buyer, trace_id, type): the run already has an outcome of this type.
      if (error instanceof Database.SqliteError && error.code === "SQLITE_CONSTRAINT_UNIQUE") return { refused: "duplicate" };
      throw error;
    }
  }

  /** The buyer's outcomes in the order they were recorded. */
  outcomesOf(buyer: Address): StoredOutcome[] {
    return this.ofBuyerStmt.all(getAddress(buyer)).map(toOutcome);
  }

  /** Every buyer's, for tests that check a refusal changed nothing. */
  count(): number {
    return this.countStmt.get()?.n ?? 0;
  }
}
