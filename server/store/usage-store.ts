/**
 * The gateway's durable usage store: one SQLite database (WAL) per gateway signer key.
 *
 * A record is committed before its receipt leaves the gateway, and its sequence number is taken
 * in the same transaction that writes it, so a crash at any point either keeps a record whole or
 * leaves no trace of it: no lost served call, no duplicate, no gap in the signer's sequence.
 */
import Database from "better-sqlite3";
import { getAddress, type Address, type Hex } from "viem";
import { ApiKeyTable, NonceTable, type ApiKeyRecord } from "./api-keys";
import { decodeAmount, encodeAmount, migrate } from "./migrations";
import type { UsageReceipt } from "../chain/usage-batch";

export type { ApiKeyRecord } from "./api-keys";
export { UnknownApiKeyError } from "./api-keys";

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
}

export interface UsageFilter {
  keyId?: string;
  /** Exact match against one of the record's tags. */
  tag?: string;
  modelName?: string;
  /** servedAt >= from (unix seconds). */
  from?: number;
  /** servedAt < to: half-open, so consecutive billing periods never count a record twice. */
  to?: number;
  /** sequence > afterSequence: pass the last sequence of one page to get the next. */
  afterSequence?: bigint;
  limit?: number;
}

export type Durability = "process-crash" | "power-loss";

export interface UsageStoreOptions {
  path: string;
  signer: Address;
  /** The chain's next sequence for this signer. */
  firstSequence: bigint;
  durability?: Durability;
  /**
   * The chain and Tollgate contract this store's records settle on. Recorded on first open and checked
   * on every later one, so a store is never replayed against a reset dev chain or another deployment.
   */
  chain?: { chainId: number; contract: Address };
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

/** The chain has settled sequences of this signer that this database never wrote. */
export class StoreBehindChainError extends Error {
  override name = "StoreBehindChainError";
}

/** The chain expects a sequence below everything this database holds: those records exist nowhere. */
export class StoreChainMismatchError extends Error {
  override name = "StoreChainMismatchError";
}

/** The database belongs to another chain or another Tollgate deployment. */
export class StoreDeploymentMismatchError extends Error {
  override name = "StoreDeploymentMismatchError";
}

/** The database holds records signed by another gateway key. */
export class StoreSignerMismatchError extends Error {
  override name = "StoreSignerMismatchError";
}

/** A settlement would replace a different settlement already recorded for the same sequence. */
export class SettlementConflictError extends Error {
  override name = "SettlementConflictError";
}

/** Sequences are uint64 on-chain but stored as SQLite's signed 64-bit rowid. */
const MAX_SEQUENCE = 2n ** 63n - 1n;
const MAX_UINT32 = 2 ** 32 - 1;
const BUSY_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// Rows

/** Read with safeIntegers, so every INTEGER column arrives as bigint and the sequence stays exact. */
interface UsageRow {
  sequence: bigint;
  request_id: string;
  buyer: string;
  key_id: string;
  tags: string;
  endpoint: UsageRecordInput["endpoint"];
  model_id: bigint;
  model_name: string;
  price_epoch: bigint;
  input_tokens: bigint;
  cached_input_tokens: bigint;
  output_tokens: bigint;
  reasoning_tokens: bigint;
  gateway_input_tokens: bigint;
  gateway_output_tokens: bigint;
  count_source: UsageRecordInput["countSource"];
  served_at: bigint;
  input_price: string;
  cached_input_price: string;
  output_price: string;
  cost: string;
  content_hash: string;
  content_salt: string;
  request_hash: string;
  response_hash: string;
  streamed: bigint;
  completed: bigint;
  receipt_hash: string;
  signature: string;
  settled_tx: string | null;
  settled_batch: string | null;
  settled_at: bigint | null;
}

type InsertParams = Record<string, string | number | bigint | null>;

function settlementOf(row: UsageRow): Settlement | null {
  if (row.settled_tx === null || row.settled_batch === null || row.settled_at === null) return null;
  return { txHash: row.settled_tx as Hex, batchId: row.settled_batch, settledAt: Number(row.settled_at) };
}

function toStored(row: UsageRow, signer: Address): StoredUsageRecord {
  return {
    sequence: row.sequence,
    signer,
    requestId: row.request_id,
    buyer: row.buyer as Address,
    keyId: row.key_id,
    tags: JSON.parse(row.tags) as string[],
    endpoint: row.endpoint,
    modelId: Number(row.model_id),
    modelName: row.model_name,
    priceEpoch: Number(row.price_epoch),
    inputTokens: Number(row.input_tokens),
    cachedInputTokens: Number(row.cached_input_tokens),
    outputTokens: Number(row.output_tokens),
    reasoningTokens: Number(row.reasoning_tokens),
    gatewayInputTokens: Number(row.gateway_input_tokens),
    gatewayOutputTokens: Number(row.gateway_output_tokens),
    countSource: row.count_source,
    servedAt: Number(row.served_at),
    inputPrice: decodeAmount(row.input_price),
    cachedInputPrice: decodeAmount(row.cached_input_price),
    outputPrice: decodeAmount(row.output_price),
    cost: decodeAmount(row.cost),
    contentHash: row.content_hash as Hex,
    contentSalt: row.content_salt as Hex,
    requestHash: row.request_hash as Hex,
    responseHash: row.response_hash as Hex,
    streamed: row.streamed === 1n,
    completed: row.completed === 1n,
    receiptHash: row.receipt_hash as Hex,
    signature: row.signature as Hex,
    settlement: settlementOf(row),
  };
}

// ---------------------------------------------------------------------------------------------
// Validation: a record the batch encoder cannot pack would block settlement of every later
// sequence, so it is refused here, before it takes a sequence number.

function checkUint32(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_UINT32) {
    throw new RangeError(`${field} must be an integer in [0, 2^32), got ${value}`);
  }
}

function checkRecordInput(input: UsageRecordInput): void {
  checkUint32(input.modelId, "modelId");
  checkUint32(input.priceEpoch, "priceEpoch");
  checkUint32(input.servedAt, "servedAt");
  checkUint32(input.inputTokens, "inputTokens");
  checkUint32(input.cachedInputTokens, "cachedInputTokens");
  checkUint32(input.outputTokens, "outputTokens");
  checkUint32(input.reasoningTokens, "reasoningTokens");
  checkUint32(input.gatewayInputTokens, "gatewayInputTokens");
  checkUint32(input.gatewayOutputTokens, "gatewayOutputTokens");
  if (input.cachedInputTokens > input.inputTokens) {
    throw new RangeError(`cachedInputTokens (${input.cachedInputTokens}) exceeds inputTokens (${input.inputTokens})`);
  }
}

function checkSequence(value: bigint, field: string): void {
  if (typeof value !== "bigint" || value < 0n || value > MAX_SEQUENCE) {
    throw new RangeError(`${field} must be a bigint in [0, 2^63), got ${String(value)}`);
  }
}

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
}

/** Encoding validates every amount, so it runs before anything is signed or written. */
function insertParams(sequence: bigint, input: UsageRecordInput): InsertParams {
  return {
    sequence,
    requestId: input.requestId,
    buyer: input.buyer,
    keyId: input.keyId,
    tags: JSON.stringify(input.tags),
    endpoint: input.endpoint,
    modelId: input.modelId,
    modelName: input.modelName,
    priceEpoch: input.priceEpoch,
    inputTokens: input.inputTokens,
    cachedInputTokens: input.cachedInputTokens,
    outputTokens: input.outputTokens,
    reasoningTokens: input.reasoningTokens,
    gatewayInputTokens: input.gatewayInputTokens,
    gatewayOutputTokens: input.gatewayOutputTokens,
    countSource: input.countSource,
    servedAt: input.servedAt,
    inputPrice: encodeAmount(input.inputPrice, "inputPrice"),
    cachedInputPrice: encodeAmount(input.cachedInputPrice, "cachedInputPrice"),
    outputPrice: encodeAmount(input.outputPrice, "outputPrice"),
    cost: encodeAmount(input.cost, "cost"),
    contentHash: input.contentHash,
    contentSalt: input.contentSalt,
    requestHash: input.requestHash,
    responseHash: input.responseHash,
    streamed: input.streamed ? 1 : 0,
    completed: input.completed ? 1 : 0,
    receiptHash: null,
    signature: null,
  };
}

const INSERT_RECORD_SQL = `
  INSERT INTO usage_records (
    sequence, request_id, buyer, key_id, tags, endpoint, model_id, model_name, price_epoch,
    input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,
    gateway_input_tokens, gateway_output_tokens, count_source, served_at,
    input_price, cached_input_price, output_price, cost,
    content_hash, content_salt, request_hash, response_hash, streamed, completed,
    receipt_hash, signature
  ) VALUES (
    @sequence, @requestId, @buyer, @keyId, @tags, @endpoint, @modelId, @modelName, @priceEpoch,
    @inputTokens, @cachedInputTokens, @outputTokens, @reasoningTokens,
    @gatewayInputTokens, @gatewayOutputTokens, @countSource, @servedAt,
    @inputPrice, @cachedInputPrice, @outputPrice, @cost,
    @contentHash, @contentSalt, @requestHash, @responseHash, @streamed, @completed,
    @receiptHash, @signature
  )`;

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

// ---------------------------------------------------------------------------------------------
// Opening

function configure(db: Database.Database, path: string, durability: Durability): void {
  const mode = db.pragma("journal_mode = WAL", { simple: true });
  if (mode !== "wal" && path !== ":memory:") {
    throw new Error(`the usage store at ${path} could not switch to WAL (got ${String(mode)}); its crash safety depends on it`);
  }
  // In WAL mode NORMAL only skips the fsync at commit: a killed process loses nothing (the OS still
  // has the pages), a power cut may lose the last commits. FULL fsyncs every commit.
  db.pragma(`synchronous = ${durability === "power-loss" ? "FULL" : "NORMAL"}`);
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma("foreign_keys = ON");
}

/** Two queries, not one: SQLite answers a lone MIN or MAX of the rowid with one seek, but both together with a full scan. */
function sequenceBounds(db: Database.Database): { first: bigint | null; last: bigint | null } {
  const bound = (fn: "MIN" | "MAX") =>
    db.prepare<[], { value: bigint | null }>(`SELECT ${fn}(sequence) AS value FROM usage_records`).safeIntegers(true).get()
      ?.value ?? null;
  return { first: bound("MIN"), last: bound("MAX") };
}

function storedSigner(db: Database.Database): Address | undefined {
  const row = db.prepare<[], { value: string }>("SELECT value FROM store_meta WHERE key = 'signer'").get();
  return row?.value as Address | undefined;
}

function checkSigner(db: Database.Database, path: string, signer: Address, hasRecords: boolean): void {
  const owner = storedSigner(db);
  if (hasRecords && owner !== undefined && owner !== signer) {
    throw new StoreSignerMismatchError(
      `the usage store at ${path} holds records of gateway signer ${owner}, not ${signer}. ` +
        `Each signer key has its own sequence and needs its own store: point this gateway at the store of ` +
        `${signer}, or at a new path for a new key. Never reuse this file for another key.`,
    );
  }
}

function storeMeta(db: Database.Database, key: string): string | undefined {
  return db.prepare<[string], { value: string }>("SELECT value FROM store_meta WHERE key = ?").get(key)?.value;
}

function checkDeployment(db: Database.Database, path: string, chain: { chainId: number; contract: Address }): void {
  const expected = `${chain.chainId}:${getAddress(chain.contract)}`;
  const recorded = storeMeta(db, "deployment");
  if (recorded !== undefined && recorded !== expected) {
    throw new StoreDeploymentMismatchError(
      `the usage store at ${path} belongs to deployment ${recorded} (chain id:contract), not ${expected}. ` +
        `Its records can only settle there. If the chain was reset (a fresh dev chain), move this file away and ` +
        `start with a new store; otherwise point the gateway at the chain and deployment file it was made for.`,
    );
  }
  if (recorded === undefined) db.prepare("INSERT INTO store_meta (key, value) VALUES ('deployment', ?)").run(expected);
}

function resolveNextSequence(path: string, signer: Address, firstSequence: bigint, bounds: { first: bigint | null; last: bigint | null }): bigint {
  if (bounds.first === null || bounds.last === null) return firstSequence;
  const next = bounds.last + 1n;
  if (next < firstSequence) {
    throw new StoreBehindChainError(
      `the usage store at ${path} ends at sequence ${bounds.last} of signer ${signer}, but the chain has already ` +
        `settled up to ${firstSequence - 1n}: either this is the wrong database for this key (restore the right one), ` +
        `or the key was used by another gateway instance, which must not happen. Do not start serving with this ` +
        `store; give this gateway the store that wrote those sequences, or a fresh signer key with a new store.`,
    );
  }
  if (bounds.first > firstSequence) {
    throw new StoreChainMismatchError(
      `the chain expects signer ${signer}'s next batch to start at ${firstSequence}, but the usage store at ${path} ` +
        `starts at ${bounds.first}: sequences ${firstSequence}..${bounds.first - 1n} exist nowhere, so nothing could ` +
        `ever settle. Check the gateway points at the right chain and contract for this store.`,
    );
  }
  return next;
}

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

// ---------------------------------------------------------------------------------------------

type UsageStatement<P extends unknown[]> = Database.Statement<P, UsageRow>;

export class UsageStore {
  readonly signer: Address;
  private readonly db: Database.Database;
  private readonly keys: ApiKeyTable;
  private readonly nonces: NonceTable;
  private next: bigint;

  private readonly insertRecordStmt: Database.Statement<[InsertParams]>;
  private readonly bySequenceStmt: UsageStatement<[bigint]>;
  private readonly unsettledStmt: UsageStatement<[bigint, number]>;
  private readonly rangeCountStmt: Database.Statement<[bigint, bigint], { n: bigint }>;
  private readonly conflictStmt: UsageStatement<[bigint, bigint, string, string]>;
  private readonly settleStmt: Database.Statement<[string, string, number, bigint, bigint]>;
  private readonly countStmt: Database.Statement<[], { n: number }>;
  private readonly unsettleStmt: Database.Statement<[bigint]>;
  private readonly settledFromStmt: Database.Statement<[bigint], { n: number }>;
  private readonly pendingStmt: Database.Statement<[bigint], { n: bigint; first: bigint | null; oldest: bigint | null }>;
  private readonly filterStmts = new Map<string, UsageStatement<[Record<string, unknown>]>>();
  private readonly appendTx: Database.Transaction<(sequence: bigint, input: UsageRecordInput, sign: (sequence: bigint) => SignedReceipt) => StoredUsageRecord>;
  private readonly settleTx: Database.Transaction<(first: bigint, last: bigint, settlement: Settlement) => number>;

  static open(options: UsageStoreOptions): UsageStore {
    const signer = getAddress(options.signer);
    checkSequence(options.firstSequence, "firstSequence");
    const db = new Database(options.path, { timeout: BUSY_TIMEOUT_MS });
    try {
      configure(db, options.path, options.durability ?? "process-crash");
      migrate(db);
      const bounds = sequenceBounds(db);
      checkSigner(db, options.path, signer, bounds.last !== null);
      if (options.chain) checkDeployment(db, options.path, options.chain);
      const next = resolveNextSequence(options.path, signer, options.firstSequence, bounds);
      db.prepare("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('signer', ?)").run(signer);
      return new UsageStore(db, signer, next);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  private constructor(db: Database.Database, signer: Address, next: bigint) {
    this.db = db;
    this.signer = signer;
    this.next = next;
    this.keys = new ApiKeyTable(db);
    this.nonces = new NonceTable(db);
    this.insertRecordStmt = db.prepare(INSERT_RECORD_SQL);
    this.bySequenceStmt = this.usageQuery("SELECT * FROM usage_records WHERE sequence = ?");
    this.unsettledStmt = this.usageQuery(
      "SELECT * FROM usage_records WHERE settled_tx IS NULL AND sequence >= ? ORDER BY sequence LIMIT ?",
    );
    this.rangeCountStmt = db
      .prepare<[bigint, bigint], { n: bigint }>("SELECT COUNT(*) AS n FROM usage_records WHERE sequence BETWEEN ? AND ?")
      .safeIntegers(true);
    this.conflictStmt = this.usageQuery(`
      SELECT * FROM usage_records
      WHERE sequence BETWEEN ? AND ? AND settled_tx IS NOT NULL AND (settled_tx <> ? OR settled_batch <> ?)
      LIMIT 1`);
    this.settleStmt = db.prepare(`
      UPDATE usage_records SET settled_tx = ?, settled_batch = ?, settled_at = ?
      WHERE sequence BETWEEN ? AND ? AND settled_tx IS NULL`);
    this.countStmt = db.prepare("SELECT COUNT(*) AS n FROM usage_records");
    this.settledFromStmt = db.prepare("SELECT COUNT(*) AS n FROM usage_records WHERE sequence >= ? AND settled_tx IS NOT NULL");
    this.unsettleStmt = db.prepare(
      "UPDATE usage_records SET settled_tx = NULL, settled_batch = NULL, settled_at = NULL WHERE sequence >= ? AND settled_tx IS NOT NULL",
    );
    this.pendingStmt = db
      .prepare<[bigint], { n: bigint; first: bigint | null; oldest: bigint | null }>(
        "SELECT COUNT(*) AS n, MIN(sequence) AS first, MIN(served_at) AS oldest FROM usage_records WHERE settled_tx IS NULL AND sequence >= ?",
      )
      .safeIntegers(true);
    this.appendTx = db.transaction((sequence, input, sign) => this.writeRecord(sequence, input, sign));
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
   * written and the sequence does not advance.
   */
  appendRecord(input: UsageRecordInput, sign: (sequence: bigint) => SignedReceipt): StoredUsageRecord {
    const sequence = this.next;
    const stored = this.appendTx.immediate(sequence, input, sign);
    // Only after COMMIT: a rolled-back append must leave the number for the next call, or a gap opens.
    this.next = sequence + 1n;
    return stored;
  }

  private writeRecord(sequence: bigint, input: UsageRecordInput, sign: (sequence: bigint) => SignedReceipt): StoredUsageRecord {
    checkSequence(sequence, "sequence");
    checkRecordInput(input);
    const params = insertParams(sequence, input);
    // Before signing, so no signature is ever made for a record that cannot be written.
    const owner = this.keys.addSpent(input.keyId, input.cost);
    if (owner.toLowerCase() !== input.buyer.toLowerCase()) {
      throw new Error(`record buyer ${input.buyer} is not ${owner}, the owner of key ${input.keyId}`);
    }
    const receipt = sign(sequence);
    params.buyer = owner;
    params.receiptHash = receipt.receiptHash;
    params.signature = receipt.signature;
    try {
      this.insertRecordStmt.run(params);
    } catch (error) {
      throw explainInsertError(error, sequence, input);
    }
    return { ...input, tags: [...input.tags], buyer: owner, sequence, signer: this.signer, ...receipt, settlement: null };
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

  insertApiKey(key: Omit<ApiKeyRecord, "revokedAt" | "spent">): void {
    this.keys.insert(key);
  }

  findApiKeyByHash(keyHash: Hex): ApiKeyRecord | undefined {
    return this.keys.findByHash(keyHash);
  }

  listApiKeys(buyer: Address): ApiKeyRecord[] {
    return this.keys.listOf(buyer);
  }

  /** False if the buyer has no such key or it is already revoked. */
  revokeApiKey(buyer: Address, id: string, at: number): boolean {
    return this.keys.revoke(buyer, id, at);
  }

  /**
   * Replay protection for wallet-signed key-management messages: true the first time (buyer, nonce)
   * is seen, false after. Rows past their expiry (at `now`) are pruned, so the caller must refuse
   * expired messages before consuming their nonce.
   */
  consumeNonce(buyer: Address, nonce: Hex, expiresAt: number, now: number = unixNow()): boolean {
    return this.nonces.consume(buyer, nonce, expiresAt, now);
  }

  /** Folds the WAL back into the database file, so the store is one self-contained file at rest. */
  close(): void {
    if (!this.db.open) return;
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    this.db.close();
  }
}

const FILTER_FIELDS = ["keyId", "tag", "modelName", "from", "to", "afterSequence", "limit"] as const satisfies readonly (keyof UsageFilter)[];

function filterSql(params: Record<string, unknown>): string {
  const where = ["buyer = @buyer"];
  if ("keyId" in params) where.push("key_id = @keyId");
  if ("tag" in params) where.push("EXISTS (SELECT 1 FROM json_each(usage_records.tags) WHERE value = @tag)");
  if ("modelName" in params) where.push("model_name = @modelName");
  if ("from" in params) where.push("served_at >= @from");
  if ("to" in params) where.push("served_at < @to");
  if ("afterSequence" in params) where.push("sequence > @afterSequence");
  const limit = "limit" in params ? " LIMIT @limit" : "";
  return `SELECT * FROM usage_records WHERE ${where.join(" AND ")} ORDER BY sequence${limit}`;
}
