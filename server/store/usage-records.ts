/**
 * The usage records of one store: appending a served call under the next sequence, reading them back for
 * the buyer and the oracle, and recording their settlement.
 *
 * A record is committed before its receipt leaves the gateway, and its sequence number is taken in the same
 * transaction that writes it, so a crash at any point either keeps a record whole or leaves no trace of it:
 * no lost served call, no duplicate, no gap in the signer's sequence.
 */
import Database from "better-sqlite3";
import { getAddress, type Address, type Hex } from "viem";
import type { ApiKeyTable } from "./api-keys";
import type { BudgetCharge, BudgetTable } from "./budgets";
import { ATTRIBUTION_JOIN, ATTRIBUTION_SELECT, CallAttributionTable, type CallAttribution } from "./call-attribution";
import { ROUTING_JOIN, ROUTING_SELECT, RoutingDecisionTable, type RoutingDecision, type RoutingSavings } from "./routing-decisions";
import { UsageContentTable, type RetainedContent } from "./usage-content";
import {
  checkSequence,
  fieldParams,
  INSERT_RECORD_SQL,
  insertParams,
  toStored,
  type InsertParams,
  type Settlement,
  type SignedReceipt,
  type StoredUsageRecord,
  type UsageRecordInput,
  type UsageRow,
} from "./usage-table";

export interface UsageFilter {
  keyId?: string;
  /** Exact match against one of the record's tags. */
  tag?: string;
  modelName?: string;
  /** Calls of one workflow run (`x-tollgate-trace-id`). */
  traceId?: string;
  /** servedAt >= from (unix seconds). */
  from?: number;
  /** servedAt < to: half-open, so consecutive billing periods never count a record twice. */
  to?: number;
  /** sequence > afterSequence: pass the last sequence of one page to get the next. */
  afterSequence?: bigint;
  limit?: number;
}

/** What the oracle needs to decide whether a batch is due. */
export interface PendingUsage {
  /** Unsettled records with sequence >= the `fromSequence` asked about. */
  count: number;
  /** Lowest such sequence, or null if none. */
  firstSequence: bigint | null;
  /** Earliest `servedAt` among them (unix seconds), or null. */
  oldestServedAt: number | null;
}

/** One record to append: its fields, the signer of its receipt once it has a sequence, and its bytes if retained. */
export interface PendingAppend {
  input: UsageRecordInput;
  sign: (sequence: bigint) => SignedReceipt;
  content?: RetainedContent;
  /** The call's trace, step, user, metadata and idempotency key, if it carried any. */
  attribution?: CallAttribution;
  /** How the call was routed, when it named an alias (`auto`) rather than a model. */
  routing?: RoutingDecision;
}

/** What became of one record of a group: written, or refused alone with the reason. */
export type AppendOutcome = { record: StoredUsageRecord } | { error: unknown };

/** A settlement would replace a different settlement already recorded for the same sequence. */
export class SettlementConflictError extends Error {
  override name = "SettlementConflictError";
}

// ---------------------------------------------------------------------------------------------
// Validation: a record the batch encoder cannot pack would block settlement of every later
// sequence, so it is refused before it takes a sequence number. Each field's own range is checked
// by its column (usage-table.ts) when the insert is bound; what spans fields is checked here.

function checkRecordInput(input: UsageRecordInput): void {
  if (input.cachedInputTokens > input.inputTokens) {
    throw new RangeError(`cachedInputTokens (${input.cachedInputTokens}) exceeds inputTokens (${input.inputTokens})`);
  }
}

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
}

/** SQLite's error codes, turned into messages that say which invariant the caller just hit. */
function explainInsertError(error: unknown, sequence: bigint, input: UsageRecordInput): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  if (error.code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
    return new Error(
      `sequence ${sequence} already exists in the usage store: another process is appending with the same ` +
        `signer key. Each gateway instance needs its own signer key and its own store.`,
    );
  }
  if (error.code === "SQLITE_CONSTRAINT_UNIQUE" && error.message.includes("request_id")) {
    return new Error(`request ${input.requestId} already has a usage record; a served call is recorded once`);
  }
  return error;
}

const FILTER_FIELDS = ["keyId", "tag", "modelName", "traceId", "from", "to", "afterSequence", "limit"] as const satisfies readonly (keyof UsageFilter)[];

function filterSql(params: Record<string, unknown>): string {
  // Columns qualified: the attribution join has a buyer and a sequence of its own.
  const where = ["usage_records.buyer = @buyer"];
  if ("keyId" in params) where.push("usage_records.key_id = @keyId");
  if ("tag" in params) where.push("EXISTS (SELECT 1 FROM json_each(usage_records.tags) WHERE value = @tag)");
  if ("modelName" in params) where.push("usage_records.model_name = @modelName");
  if ("traceId" in params) where.push("a.trace_id = @traceId");
  if ("from" in params) where.push("usage_records.served_at >= @from");
  if ("to" in params) where.push("usage_records.served_at < @to");
  if ("afterSequence" in params) where.push("usage_records.sequence > @afterSequence");
  const limit = "limit" in params ? " LIMIT @limit" : "";
  return `SELECT usage_records.*, ${ATTRIBUTION_SELECT}, ${ROUTING_SELECT} FROM usage_records ${ATTRIBUTION_JOIN} ${ROUTING_JOIN} WHERE ${where.join(" AND ")} ORDER BY usage_records.sequence${limit}`;
}

// ---------------------------------------------------------------------------------------------

type UsageStatement<P extends unknown[]> = Database.Statement<P, UsageRow>;
type ConflictRow = { sequence: bigint; settled_tx: string; settled_batch: string };

/** The records one settled batch holds, as this store marked them: what an inclusion proof is built from. */
export interface SettledBatchLeaves {
  /** The batch's commitment (the store's `settled_batch`). */
  batchId: string;
  firstSequence: bigint;
  /** Each record's receipt hash, in sequence order: the leaves of the batch's content root. */
  receiptHashes: Hex[];
}

export class UsageRecords {
  private next: bigint;

  private readonly insertRecordStmt: Database.Statement<[InsertParams]>;
  private readonly bySequenceStmt: UsageStatement<[bigint]>;
  private readonly unsettledStmt: UsageStatement<[bigint, number]>;
  private readonly rangeCountStmt: Database.Statement<[bigint, bigint], { n: bigint }>;
  private readonly conflictStmt: Database.Statement<[bigint, bigint, string, string], ConflictRow>;
  private readonly settleStmt: Database.Statement<[string, string, number, bigint, bigint]>;
  private readonly countStmt: Database.Statement<[], { n: number }>;
  private readonly requestIdStmt: Database.Statement<[string], { one: number }>;
  private readonly unsettleStmt: Database.Statement<[bigint]>;
  private readonly settledFromStmt: Database.Statement<[bigint], { n: number }>;
  private readonly pendingStmt: Database.Statement<[bigint], { n: bigint; first: bigint | null; oldest: bigint | null }>;
  private readonly batchLeavesStmt: Database.Statement<[string], { sequence: bigint; receipt_hash: Hex }>;
  private readonly filterStmts = new Map<string, UsageStatement<[Record<string, unknown>]>>();
  private readonly content: UsageContentTable;
  private readonly attribution: CallAttributionTable;
  private readonly routing: RoutingDecisionTable;
  private readonly appendTx: Database.Transaction<(sequence: bigint, entry: PendingAppend) => StoredUsageRecord>;
  /** The outer transaction of a group; `appendTx` called inside it becomes a savepoint (better-sqlite3 nests that way). */
  private readonly groupTx: Database.Transaction<(run: () => { outcomes: AppendOutcome[]; charges: BudgetCharge[] }) => { outcomes: AppendOutcome[]; charges: BudgetCharge[] }>;
  private readonly settleTx: Database.Transaction<(first: bigint, last: bigint, settlement: Settlement) => number>;

  /**
   * `keys` takes each record's cost into its key's running `spent`, and `budgets` into the spend of every budget
   * the record counts against, inside the append's transaction.
   */
  constructor(
    private readonly db: Database.Database,
    private readonly signer: Address,
    next: bigint,
    private readonly keys: ApiKeyTable,
    private readonly budgets: BudgetTable,
  ) {
    this.next = next;
    this.insertRecordStmt = db.prepare(INSERT_RECORD_SQL);
    this.bySequenceStmt = this.usageQuery("SELECT * FROM usage_records WHERE sequence = ?");
    this.unsettledStmt = this.usageQuery(
      "SELECT * FROM usage_records WHERE settled_tx IS NULL AND sequence >= ? ORDER BY sequence LIMIT ?",
    );
    this.rangeCountStmt = db
      .prepare<[bigint, bigint], { n: bigint }>("SELECT COUNT(*) AS n FROM usage_records WHERE sequence BETWEEN ? AND ?")
      .safeIntegers(true);
    this.conflictStmt = db
      .prepare<[bigint, bigint, string, string], ConflictRow>(`
        SELECT sequence, settled_tx, settled_batch FROM usage_records
        WHERE sequence BETWEEN ? AND ? AND settled_tx IS NOT NULL AND (settled_tx <> ? OR settled_batch <> ?)
        LIMIT 1`)
      .safeIntegers(true);
    this.settleStmt = db.prepare(`
      UPDATE usage_records SET settled_tx = ?, settled_batch = ?, settled_at = ?
      WHERE sequence BETWEEN ? AND ? AND settled_tx IS NULL`);
    this.countStmt = db.prepare("SELECT COUNT(*) AS n FROM usage_records");
    this.requestIdStmt = db.prepare<[string], { one: number }>("SELECT 1 AS one FROM usage_records WHERE request_id = ?");
    this.settledFromStmt = db.prepare("SELECT COUNT(*) AS n FROM usage_records WHERE sequence >= ? AND settled_tx IS NOT NULL");
    this.unsettleStmt = db.prepare(
      "UPDATE usage_records SET settled_tx = NULL, settled_batch = NULL, settled_at = NULL WHERE sequence >= ? AND settled_tx IS NOT NULL",
    );
    this.pendingStmt = db
      .prepare<[bigint], { n: bigint; first: bigint | null; oldest: bigint | null }>(
        "SELECT COUNT(*) AS n, MIN(sequence) AS first, MIN(served_at) AS oldest FROM usage_records WHERE settled_tx IS NULL AND sequence >= ?",
      )
      .safeIntegers(true);
    this.batchLeavesStmt = db
      .prepare<[string], { sequence: bigint; receipt_hash: Hex }>(
        "SELECT sequence, receipt_hash FROM usage_records WHERE settled_batch = ? ORDER BY sequence",
      )
      .safeIntegers(true);
    this.content = new UsageContentTable(db);
    this.attribution = new CallAttributionTable(db);
    this.routing = new RoutingDecisionTable(db);
    this.appendTx = db.transaction((sequence, entry) => this.writeRecord(sequence, entry));
    this.groupTx = db.transaction((run) => run());
    this.settleTx = db.transaction((first, last, settlement) => this.writeSettlement(first, last, settlement));
  }

  private usageQuery<P extends unknown[]>(sql: string): UsageStatement<P> {
    return this.db.prepare<P, UsageRow>(sql).safeIntegers(true);
  }

  nextSequence(): bigint {
    return this.next;
  }

  /**
   * One transaction: takes nextSequence(), calls `sign(sequence)` for the receipt hash and signature,
   * inserts the record and adds its cost to the key's running `spent`. If anything throws, nothing is
   * written and the sequence does not advance. `content`, when given (retention on), is kept in the same
   * transaction.
   */
  appendRecord(input: UsageRecordInput, sign: (sequence: bigint) => SignedReceipt, content?: RetainedContent): StoredUsageRecord {
    const [outcome] = this.appendRecords([{ input, sign, content }]);
    if ("error" in outcome) throw outcome.error;
    return outcome.record;
  }

  /**
   * Group commit: several records in ONE transaction (one WAL write and one commit for all of them, instead
   * of one each), in the order given, under consecutive sequences. Each record is written inside its own
   * savepoint, so one that fails (a bad field, a revoked key's owner mismatch, a duplicate request id)
   * rolls back alone, takes no sequence and is returned as its error, while the others commit. If the
   * COMMIT itself fails, this throws and nothing at all was written.
   */
  appendRecords(entries: readonly PendingAppend[]): AppendOutcome[] {
    let next = this.next;
    let written;
    try {
      written = this.groupTx.immediate(() => {
        const outcomes = entries.map((entry): AppendOutcome => {
          try {
            const record = this.appendTx(next, entry);
            next++;
            return { record };
          } catch (error) {
            return { error };
          }
        });
        // The budgets' spend, once per budget for the whole group, in the same transaction.
        return { outcomes, charges: this.budgets.flush() };
      });
    } finally {
      this.budgets.discardPending();
    }
    // Only after COMMIT: a rolled-back append must leave its number for the next call, or a gap opens; and
    // budgets must not count spend that was never written.
    this.next = next;
    if (written.charges.length > 0) this.budgets.applyCommitted(written.charges);
    return written.outcomes;
  }

  private writeRecord(sequence: bigint, { input, sign, content, attribution, routing }: PendingAppend): StoredUsageRecord {
    checkSequence(sequence, "sequence");
    // Without the receipt hash and signature, which are made below. Binding checks every field's range.
    const params = insertParams({ ...input, sequence });
    checkRecordInput(input);
    if (routing) this.routing.check(routing);
    // Before signing, so no signature is ever made for a record that cannot be written.
    const owner = this.keys.addSpent(input.keyId, input.cost);
    if (owner.toLowerCase() !== input.buyer.toLowerCase()) {
      throw new Error(`record buyer ${input.buyer} is not ${owner}, the owner of key ${input.keyId}`);
    }
    const receipt = sign(sequence);
    Object.assign(params, fieldParams({ buyer: owner, receiptHash: receipt.receiptHash, signature: receipt.signature }));
    try {
      this.insertRecordStmt.run(params);
    } catch (error) {
      throw explainInsertError(error, sequence, input);
    }
    if (content) this.content.insert(sequence, content);
    const stored: StoredUsageRecord = { ...input, tags: [...input.tags], buyer: owner, sequence, signer: this.signer, ...receipt, settlement: null };
    if (attribution) stored.attribution = this.attribution.insert(sequence, owner, input.requestHash, attribution);
    if (routing) stored.routing = this.routing.insert(sequence, routing);
    // Last: nothing after it may throw, so a record that rolls back never counts against a budget.
    this.budgets.charge({ sequence, buyer: owner, tags: input.tags, cost: input.cost, servedAt: input.servedAt }, attribution?.traceId);
    return stored;
  }

  /** What routing saved a buyer over [from, to): routed calls, their cost, the dearest candidates' cost, the difference. */
  routingSavings(buyer: Address, from?: number, to?: number): RoutingSavings {
    return this.routing.savings(getAddress(buyer), from, to);
  }

  /** In sequence order; filters combine with AND. */
  recordsOf(buyer: Address, filter: UsageFilter = {}): StoredUsageRecord[] {
    if (filter.limit !== undefined) checkLimit(filter.limit);
    const params: Record<string, unknown> = { buyer: getAddress(buyer) };
    for (const name of FILTER_FIELDS) if (filter[name] !== undefined) params[name] = filter[name];
    return this.filterStatement(params).all(params).map((row) => toStored(row, this.signer));
  }

  /** One prepared statement per combination of filters used, so paging never re-parses SQL. */
  private filterStatement(params: Record<string, unknown>): UsageStatement<[Record<string, unknown>]> {
    const shape = Object.keys(params).sort().join(",");
    let stmt = this.filterStmts.get(shape);
    if (!stmt) {
      stmt = this.usageQuery<[Record<string, unknown>]>(filterSql(params));
      this.filterStmts.set(shape, stmt);
    }
    return stmt;
  }

  recordBySequence(sequence: bigint): StoredUsageRecord | undefined {
    const row = this.bySequenceStmt.get(sequence);
    return row && toStored(row, this.signer);
  }

  /** The retained request and response bytes of a record, if retention was on when it was served. */
  contentOf(sequence: bigint): RetainedContent | undefined {
    return this.content.contentOf(sequence);
  }

  /** The records this store marked settled by batch `batchId`, or undefined if none. */
  settledBatchLeaves(batchId: string): SettledBatchLeaves | undefined {
    const rows = this.batchLeavesStmt.all(batchId);
    if (rows.length === 0) return undefined;
    return { batchId, firstSequence: rows[0].sequence, receiptHashes: rows.map((row) => row.receipt_hash) };
  }

  /** Records with no settlement and sequence >= fromSequence, in sequence order. */
  unsettledRecords(fromSequence: bigint, limit: number): StoredUsageRecord[] {
    checkLimit(limit);
    return this.unsettledStmt.all(fromSequence, limit).map((row) => toStored(row, this.signer));
  }

  /**
   * Marks [firstSequence, lastSequence] settled. Idempotent: replaying the same settlement changes
   * nothing and returns 0. Throws, changing nothing, if the range holds a record this store lacks or
   * one already settled by a different transaction or batch.
   */
  markSettled(firstSequence: bigint, lastSequence: bigint, settlement: Settlement): number {
    if (lastSequence < firstSequence) {
      throw new RangeError(`settled range ${firstSequence}..${lastSequence} is empty`);
    }
    return this.settleTx.immediate(firstSequence, lastSequence, settlement);
  }

  private writeSettlement(first: bigint, last: bigint, settlement: Settlement): number {
    const present = this.rangeCountStmt.get(first, last)?.n ?? 0n;
    if (present !== last - first + 1n) {
      throw new Error(
        `cannot mark ${first}..${last} settled: this store holds ${present} of its ${last - first + 1n} records; ` +
          `the batch was not built from this store`,
      );
    }
    const txHash = settlement.txHash.toLowerCase();
    const conflict = this.conflictStmt.get(first, last, txHash, settlement.batchId);
    if (conflict) {
      throw new SettlementConflictError(
        `sequence ${conflict.sequence} is already settled by batch ${conflict.settled_batch} in tx ` +
          `${conflict.settled_tx}; refusing to record batch ${settlement.batchId} in tx ${txHash} over it`,
      );
    }
    return this.settleStmt.run(txHash, settlement.batchId, settlement.settledAt, first, last).changes;
  }

  /** Unsettled records from `fromSequence` on: how many, the first, and the oldest serving time. */
  pendingUsage(fromSequence = 0n): PendingUsage {
    const row = this.pendingStmt.get(fromSequence);
    return {
      count: Number(row?.n ?? 0n),
      firstSequence: row?.first ?? null,
      oldestServedAt: row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest),
    };
  }

  /**
   * Forgets the settlement of every record from `sequence` on, returning how many: for when the chain no
   * longer has them settled (a reorganisation dropped the block), so they are settled again.
   */
  clearSettlementsFrom(sequence: bigint): number {
    // Read first: the oracle asks every pass, and an UPDATE would take the writer lock the gateway appends under.
    if ((this.settledFromStmt.get(sequence)?.n ?? 0) === 0) return 0;
    return this.unsettleStmt.run(sequence).changes;
  }

  recordCount(): number {
    return this.countStmt.get()?.n ?? 0;
  }

  /** Whether a record has this request id (the unique index answers it). */
  hasRequestId(requestId: string): boolean {
    return this.requestIdStmt.get(requestId) !== undefined;
  }
}
