/**
 * Who spent a call, beyond its API key: the workflow run (trace) and step it served, the buyer's own end
 * user and metadata, and its idempotency key; and whether it repeated an earlier call (a retry). Kept in a
 * table of its own beside the record, written in the record's own savepoint, so a call that carries none of
 * this writes nothing more than before. Never content, never on-chain.
 */
import type Database from "better-sqlite3";
import type { Address } from "viem";

export interface CallAttribution {
  /** One run of a workflow (`x-tollgate-trace-id`); calls of a run share it. */
  traceId?: string;
  /** The step of the run this call serves (`x-tollgate-step`). */
  step?: string;
  /** The OpenAI `user` field: the buyer's own end user. */
  user?: string;
  /** The OpenAI `metadata` field. */
  metadata?: Record<string, string>;
  /** The `Idempotency-Key` header. */
  idempotencyKey?: string;
}

export interface StoredAttribution extends CallAttribution {
  /**
   * The sequence of the first call this one repeats, when it is a retry: same Idempotency-Key as an earlier
   * call of the buyer, or, in the same trace, the same request bytes or the same step. Null for a first try.
   */
  retryOf: bigint | null;
}

type RetryRow = { sequence: bigint };

/** The columns a usage query adds (LEFT JOIN, `attr_` prefixed) so each record carries its attribution. */
export const ATTRIBUTION_SELECT =
  "a.trace_id AS attr_trace_id, a.step AS attr_step, a.end_user AS attr_user, a.metadata AS attr_metadata, a.idempotency_key AS attr_idempotency_key, a.retry_of AS attr_retry_of, a.sequence AS attr_sequence";
export const ATTRIBUTION_JOIN = "LEFT JOIN call_attribution a ON a.sequence = usage_records.sequence";

/** A joined row's attribution, or undefined when the call carried none. */
export function attributionOfRow(row: Record<string, unknown>): StoredAttribution | undefined {
  if (row.attr_sequence === null || row.attr_sequence === undefined) return undefined;
  const attribution: StoredAttribution = { retryOf: row.attr_retry_of === null ? null : BigInt(row.attr_retry_of as bigint) };
  if (row.attr_trace_id !== null) attribution.traceId = row.attr_trace_id as string;
  if (row.attr_step !== null) attribution.step = row.attr_step as string;
  if (row.attr_user !== null) attribution.user = row.attr_user as string;
  if (row.attr_metadata !== null) attribution.metadata = JSON.parse(row.attr_metadata as string) as Record<string, string>;
  if (row.attr_idempotency_key !== null) attribution.idempotencyKey = row.attr_idempotency_key as string;
  return attribution;
}

export class CallAttributionTable {
  private readonly insertStmt: Database.Statement<[Record<string, unknown>]>;
  private readonly byIdempotencyKeyStmt: Database.Statement<[string, string], RetryRow>;
  private readonly inTraceStmt: Database.Statement<[Record<string, unknown>], RetryRow>;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(
      "INSERT INTO call_attribution (sequence, buyer, trace_id, step, end_user, metadata, idempotency_key, retry_of) " +
        "VALUES (@sequence, @buyer, @traceId, @step, @user, @metadata, @idempotencyKey, @retryOf)",
    );
    this.byIdempotencyKeyStmt = db
      .prepare<[string, string], RetryRow>("SELECT sequence FROM call_attribution WHERE buyer = ? AND idempotency_key = ? ORDER BY sequence LIMIT 1")
      .safeIntegers(true);
    this.inTraceStmt = db
      .prepare<[Record<string, unknown>], RetryRow>(`
        SELECT a.sequence FROM call_attribution a JOIN usage_records r ON r.sequence = a.sequence
        WHERE a.buyer = @buyer AND a.trace_id = @traceId AND (r.request_hash = @requestHash OR a.step = @step)
        ORDER BY a.sequence LIMIT 1`)
      .safeIntegers(true);
  }

  /**
   * Inside the record's own savepoint, after its row: finds the call it repeats (if any) and keeps the
   * attribution with it. Earlier calls are committed or in this same transaction, so a burst of retries
   * finishing together still points each at the first try.
   */
  insert(sequence: bigint, buyer: Address, requestHash: string, attribution: CallAttribution): StoredAttribution {
    let retryOf: bigint | null = null;
    if (attribution.idempotencyKey !== undefined) retryOf = this.byIdempotencyKeyStmt.get(buyer, attribution.idempotencyKey)?.sequence ?? null;
    if (retryOf === null && attribution.traceId !== undefined) {
      retryOf = this.inTraceStmt.get({ buyer, traceId: attribution.traceId, requestHash, step: attribution.step ?? null })?.sequence ?? null;
    }
    this.insertStmt.run({
      sequence,
      buyer,
      traceId: attribution.traceId ?? null,
      step: attribution.step ?? null,
      user: attribution.user ?? null,
      metadata: attribution.metadata === undefined ? null : JSON.stringify(attribution.metadata),
      idempotencyKey: attribution.idempotencyKey ?? null,
      retryOf,
    });
    return { ...attribution, retryOf };
  }
}
