/**
 * The `usage_records` table, declared once: each column beside the record field it holds and how the value
 * crosses into SQLite. The INSERT statement, its parameters and the mapping of rows back to records are all
 * derived from this declaration.
 *
 * The CREATE TABLE is not: it lives in migration 1 as frozen SQL, because a released migration must keep
 * producing the schema existing databases already have, and a migration derived from a living list would
 * change under them. `test/store/usage-table.test.ts` checks that the migrated table has exactly these
 * columns, in this order, with these types; a new column is a new migration plus a line here.
 */
import type { Address, Hex } from "viem";
import { isUint32 } from "../chain/batch-limits";
import type { UsageReceipt } from "../chain/eip712";
import { attributionOfRow, type StoredAttribution } from "./call-attribution";
import { decodeAmount, encodeAmount } from "./migrations";
import { routingOfRow, type RoutingDecision } from "./routing-decisions";

/**
 * One served call as the store keeps it: the receipt handed to the buyer (every field but the
 * sequence, which the store assigns) plus what attribution, audit and the cross-check need.
 */
export interface UsageRecordInput extends Omit<UsageReceipt, "sequence"> {
  requestId: string;
  /** Public id of the API key used; `buyer` must be its owner. */
  keyId: string;
  /** The key's tags at call time, e.g. ["team:search", "workflow:nightly"]. */
  tags: string[];
  endpoint: "chat.completions" | "embeddings";
  /** Public model name. */
  modelName: string;
  /** Index of the on-chain price epoch used. */
  priceEpoch: number;
  reasoningTokens: number;
  /** The gateway's own tokenizer count, kept to cross-check the upstream's. */
  gatewayInputTokens: number;
  gatewayOutputTokens: number;
  countSource: "upstream" | "gateway";
  contentSalt: Hex;
  requestHash: Hex;
  responseHash: Hex;
  streamed: boolean;
  /** False when the client abandoned a stream. */
  completed: boolean;
}

export interface SignedReceipt {
  receiptHash: Hex;
  signature: Hex;
}

export interface Settlement {
  txHash: Hex;
  batchId: string;
  settledAt: number;
}

export interface StoredUsageRecord extends UsageRecordInput {
  sequence: bigint;
  signer: Address;
  receiptHash: Hex;
  signature: Hex;
  settlement: Settlement | null;
  /** The call's trace, step, user, metadata and idempotency key, when it carried any (call-attribution.ts). */
  attribution?: StoredAttribution;
  /** How the call was routed, when it named an alias rather than a model (routing-decisions.ts). */
  routing?: RoutingDecision;
}

/**
 * What one row holds of a record: all of it but the signer (one per store), the settlement (set later) and
 * the attribution (a table of its own).
 */
type RowFields = Omit<StoredUsageRecord, "signer" | "settlement" | "attribution" | "routing">;

/** A value as bound to a statement, or as read back with safeIntegers (every INTEGER arrives as a bigint). */
export type SqlValue = string | number | bigint | null;

/** How one field crosses into SQLite and back. `write` validates, naming the field, before anything is written. */
interface Codec<T> {
  sqlType: "INTEGER" | "TEXT";
  write: (value: T, field: string) => SqlValue;
  read: (value: SqlValue) => T;
}

/** Sequences are uint64 on-chain but stored as SQLite's signed 64-bit rowid. */
export const MAX_SEQUENCE = 2n ** 63n - 1n;

export function checkSequence(value: bigint, field: string): void {
  if (typeof value !== "bigint" || value < 0n || value > MAX_SEQUENCE) {
    throw new RangeError(`${field} must be a bigint in [0, 2^63), got ${String(value)}`);
  }
}

const sequence: Codec<bigint> = { sqlType: "INTEGER", write: (value) => value, read: (value) => value as bigint };
// Token counts, ids, epochs and times: a record the batch encoder cannot pack would block settlement of
// every later sequence, so a value beyond uint32 is refused here, before the record takes a sequence.
const uint32: Codec<number> = {
  sqlType: "INTEGER",
  write: (value, field) => {
    if (!isUint32(value)) throw new RangeError(`${field} must be an integer in [0, 2^32), got ${value}`);
    return value;
  },
  read: (value) => Number(value),
};
const flag: Codec<boolean> = { sqlType: "INTEGER", write: (value) => (value ? 1 : 0), read: (value) => value === 1n };
// Amounts are decimal TEXT: uint256 on-chain, beyond what SQLite's int64 and REAL can hold exactly.
const amount: Codec<bigint> = { sqlType: "TEXT", write: (value, field) => encodeAmount(value, field), read: (value) => decodeAmount(value as string) };
const tagList: Codec<string[]> = { sqlType: "TEXT", write: (value) => JSON.stringify(value), read: (value) => JSON.parse(value as string) as string[] };
function text<T extends string>(): Codec<T> {
  return { sqlType: "TEXT", write: (value) => value, read: (value) => value as T };
}

type Column<T> = readonly [name: string, codec: Codec<T>];

/**
 * Every row field, in the table's column order. The mapped type makes the compiler refuse a record field
 * without a column, a column without a field, or a codec of the wrong type.
 */
const COLUMNS = {
  sequence: ["sequence", sequence],
  requestId: ["request_id", text()],
  buyer: ["buyer", text<Address>()],
  keyId: ["key_id", text()],
  tags: ["tags", tagList],
  endpoint: ["endpoint", text<UsageRecordInput["endpoint"]>()],
  modelId: ["model_id", uint32],
  modelName: ["model_name", text()],
  priceEpoch: ["price_epoch", uint32],
  inputTokens: ["input_tokens", uint32],
  cachedInputTokens: ["cached_input_tokens", uint32],
  outputTokens: ["output_tokens", uint32],
  reasoningTokens: ["reasoning_tokens", uint32],
  gatewayInputTokens: ["gateway_input_tokens", uint32],
  gatewayOutputTokens: ["gateway_output_tokens", uint32],
  countSource: ["count_source", text<UsageRecordInput["countSource"]>()],
  servedAt: ["served_at", uint32],
  inputPrice: ["input_price", amount],
  cachedInputPrice: ["cached_input_price", amount],
  outputPrice: ["output_price", amount],
  cost: ["cost", amount],
  contentHash: ["content_hash", text<Hex>()],
  contentSalt: ["content_salt", text<Hex>()],
  requestHash: ["request_hash", text<Hex>()],
  responseHash: ["response_hash", text<Hex>()],
  streamed: ["streamed", flag],
  completed: ["completed", flag],
  receiptHash: ["receipt_hash", text<Hex>()],
  signature: ["signature", text<Hex>()],
} satisfies { [K in keyof RowFields]-?: Column<RowFields[K]> };

type Field = keyof RowFields;
const FIELDS = Object.keys(COLUMNS) as Field[];

/** The settlement's columns, after the record's: NULL until the oracle records the batch that settled it. */
const SETTLEMENT_COLUMNS = [
  ["settled_tx", "TEXT"],
  ["settled_batch", "TEXT"],
  ["settled_at", "INTEGER"],
] as const;

/** The table's columns in order, as the schema check compares them with what the migrations built. */
export const USAGE_TABLE_COLUMNS: readonly { name: string; type: "INTEGER" | "TEXT"; notNull: boolean }[] = [
  ...FIELDS.map((field) => ({ name: COLUMNS[field][0], type: COLUMNS[field][1].sqlType, notNull: true })),
  ...SETTLEMENT_COLUMNS.map(([name, type]) => ({ name, type, notNull: false })),
];

/** A row of the table, keyed by column name. */
export type UsageRow = Record<string, SqlValue>;

/** Statement parameters, named after the record's fields (`@inputTokens`). */
export type InsertParams = Record<string, SqlValue>;

export const INSERT_RECORD_SQL =
  `INSERT INTO usage_records (${FIELDS.map((field) => COLUMNS[field][0]).join(", ")}) ` +
  `VALUES (${FIELDS.map((field) => `@${field}`).join(", ")})`;

function bind(values: Partial<RowFields>, complete: boolean): InsertParams {
  const params: InsertParams = {};
  for (const field of FIELDS) {
    const value = values[field];
    if (value !== undefined) params[field] = (COLUMNS[field][1] as Codec<unknown>).write(value, field);
    else if (complete) params[field] = null;
  }
  return params;
}

/**
 * The parameters of one insert: every field, those not given binding NULL (the receipt hash and signature,
 * made after the sequence is taken, until `fieldParams` fills them in). Encoding validates every amount, so
 * it runs before anything is signed or written.
 */
export function insertParams(values: Partial<RowFields>): InsertParams {
  return bind(values, true);
}

/** The parameters of just the fields given, to fill in or replace some of an insert's. */
export function fieldParams(values: Partial<RowFields>): InsertParams {
  return bind(values, false);
}

function settlementOf(row: UsageRow): Settlement | null {
  if (row.settled_tx === null || row.settled_batch === null || row.settled_at === null) return null;
  return { txHash: row.settled_tx as Hex, batchId: row.settled_batch as string, settledAt: Number(row.settled_at) };
}

/** A row read with safeIntegers, back to the record it stores. */
export function toStored(row: UsageRow, signer: Address): StoredUsageRecord {
  const fields: Record<string, unknown> = {};
  for (const field of FIELDS) fields[field] = (COLUMNS[field][1] as Codec<unknown>).read(row[COLUMNS[field][0]]);
  const record: StoredUsageRecord = { ...(fields as RowFields), signer, settlement: settlementOf(row) };
  // Only rows read with the attribution join carry it (usage-records.ts filter queries).
  const attribution = attributionOfRow(row);
  if (attribution) record.attribution = attribution;
  const routing = routingOfRow(row);
  if (routing) record.routing = routing;
  return record;
}
