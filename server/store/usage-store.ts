/**
 * The gateway's durable usage store: one SQLite database (WAL) per gateway signer key. A facade over the
 * parts, each a file of its own: opening and its checks (open-store.ts), the usage records and their
 * settlement (usage-records.ts, over the table declared in usage-table.ts), API keys and signed-message
 * nonces (api-keys.ts), read sessions (read-sessions.ts). One object, so the gateway and the oracle hold one handle per database.
 */
import type Database from "better-sqlite3";
import type { Address, Hex } from "viem";
import { ApiKeyTable, NonceTable, type ApiKeyRecord } from "./api-keys";
import { openStore, type UsageStoreOptions } from "./open-store";
import { ReadSessionTable, type ReadSession } from "./read-sessions";
import type { RoutingSavings } from "./routing-decisions";
import type { RetainedContent } from "./usage-content";
import { UsageRecords, type AppendOutcome, type PendingAppend, type PendingUsage, type SettledBatchLeaves, type UsageFilter } from "./usage-records";
import type { Settlement, SignedReceipt, StoredUsageRecord, UsageRecordInput } from "./usage-table";

export type { ApiKeyRecord } from "./api-keys";
export { UnknownApiKeyError } from "./api-keys";
export {
  StoreBehindChainError,
  StoreChainMismatchError,
  StoreDeploymentMismatchError,
  StoreSignerMismatchError,
  type Durability,
  type UsageStoreOptions,
} from "./open-store";
export { SettlementConflictError, type AppendOutcome, type PendingAppend, type PendingUsage, type SettledBatchLeaves, type UsageFilter } from "./usage-records";
export type { RetainedContent } from "./usage-content";
export type { RoutingDecision, RoutingSavings } from "./routing-decisions";
export type { ReadSession } from "./read-sessions";
export type { Settlement, SignedReceipt, StoredUsageRecord, UsageRecordInput } from "./usage-table";

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

export class UsageStore {
  readonly signer: Address;
  private readonly db: Database.Database;
  private readonly records: UsageRecords;
  private readonly keys: ApiKeyTable;
  private readonly nonces: NonceTable;
  private readonly sessions: ReadSessionTable;

  static open(options: UsageStoreOptions): UsageStore {
    const { db, signer, next } = openStore(options);
    return new UsageStore(db, signer, next);
  }

  private constructor(db: Database.Database, signer: Address, next: bigint) {
    this.db = db;
    this.signer = signer;
    this.keys = new ApiKeyTable(db);
    this.nonces = new NonceTable(db);
    this.sessions = new ReadSessionTable(db);
    this.records = new UsageRecords(db, signer, next, this.keys);
  }

  nextSequence(): bigint {
    return this.records.nextSequence();
  }

  /**
   * See `UsageRecords.appendRecord`: sequence, record, signature and the key's spend in one transaction, with
   * the call's bytes when the gateway retains content.
   */
  appendRecord(input: UsageRecordInput, sign: (sequence: bigint) => SignedReceipt, content?: RetainedContent): StoredUsageRecord {
    return this.records.appendRecord(input, sign, content);
  }

  /** See `UsageRecords.appendRecords`: a group of records in one transaction, each in its own savepoint. */
  appendRecords(entries: readonly PendingAppend[]): AppendOutcome[] {
    return this.records.appendRecords(entries);
  }

  /** The retained request and response bytes of a record (retention on when it was served), or undefined. */
  contentOf(sequence: bigint): RetainedContent | undefined {
    return this.records.contentOf(sequence);
  }

  /** The receipt hashes of the records marked settled by batch `batchId`, in sequence order. */
  settledBatchLeaves(batchId: string): SettledBatchLeaves | undefined {
    return this.records.settledBatchLeaves(batchId);
  }

  /** In sequence order; filters combine with AND. */
  recordsOf(buyer: Address, filter: UsageFilter = {}): StoredUsageRecord[] {
    return this.records.recordsOf(buyer, filter);
  }

  /**
   * What routing saved a buyer over records served in [from, to) (unix seconds; open ends when omitted): the
   * routed calls, what they cost, what the dearest model of each call's policy would have cost, and the difference.
   */
  routingSavings(buyer: Address, from?: number, to?: number): RoutingSavings {
    return this.records.routingSavings(buyer, from, to);
  }

  recordBySequence(sequence: bigint): StoredUsageRecord | undefined {
    return this.records.recordBySequence(sequence);
  }

  /** Records with no settlement and sequence >= fromSequence, in sequence order. */
  unsettledRecords(fromSequence: bigint, limit: number): StoredUsageRecord[] {
    return this.records.unsettledRecords(fromSequence, limit);
  }

  /** See `UsageRecords.markSettled`: idempotent, and refuses to overwrite a different settlement. */
  markSettled(firstSequence: bigint, lastSequence: bigint, settlement: Settlement): number {
    return this.records.markSettled(firstSequence, lastSequence, settlement);
  }

  pendingUsage(fromSequence = 0n): PendingUsage {
    return this.records.pendingUsage(fromSequence);
  }

  /** See `UsageRecords.clearSettlementsFrom`: for a reorganisation that dropped a settlement. */
  clearSettlementsFrom(sequence: bigint): number {
    return this.records.clearSettlementsFrom(sequence);
  }

  recordCount(): number {
    return this.records.recordCount();
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

  insertReadSession(session: ReadSession, now: number = unixNow()): void {
    this.sessions.insert(session, now);
  }

  /** The live read session with this token hash, or undefined (unknown, ended or expired alike). */
  findReadSession(tokenHash: Hex, now: number = unixNow()): ReadSession | undefined {
    return this.sessions.find(tokenHash, now);
  }

  /** False when there was no such session. */
  endReadSession(tokenHash: Hex): boolean {
    return this.sessions.end(tokenHash);
  }

  /** Folds the WAL back into the database file, so the store is one self-contained file at rest. */
  close(): void {
    if (!this.db.open) return;
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    this.db.close();
  }
}
