/**
 * The gateway's durable usage store: one SQLite database (WAL) per gateway signer key. A facade over the
 * parts, each a file of its own: opening and its checks (open-store.ts), the usage records and their
 * settlement (usage-records.ts, over the table declared in usage-table.ts), API keys and signed-message
 * nonces (api-keys.ts), read sessions (read-sessions.ts), outcomes (outcomes.ts), the usage summary (usage-summary.ts), and budgets,
 * their spend and alerts (budgets.ts). One object, so the gateway and the oracle hold one handle per database.
 */
import type Database from "better-sqlite3";
import type { Address, Hex } from "viem";
import { ApiKeyTable, NonceTable, type ApiKeyRecord } from "./api-keys";
import { BudgetTable, type Budget, type BudgetSpend, type NewBudget, type PendingBudgetAlert } from "./budgets";
import { openStore, type UsageStoreOptions } from "./open-store";
import { OutcomeTable, type OutcomeInput, type RecordOutcomeResult, type StoredOutcome } from "./outcomes";
import { ReadSessionTable, type ReadSession } from "./read-sessions";
import type { RoutingSavings } from "./routing-decisions";
import type { RetainedContent } from "./usage-content";
import { UsageSummaries, type SummaryDimension, type SummaryFilter, type UsageSummary, type WorkflowCosts } from "./usage-summary";
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
export type { OutcomeInput, OutcomeRefusal, RecordOutcomeResult, StoredOutcome } from "./outcomes";
export {
  SUMMARY_DIMENSIONS,
  costPer,
  ratio,
  type OutcomeCosts,
  type SummaryDimension,
  type SummaryFilter,
  type SummaryGroup,
  type UsageSummary,
  type UsageTotals,
  type WorkflowCosts,
} from "./usage-summary";
export { BudgetExistsError, type Budget, type BudgetDegradeRule, type BudgetScope, type BudgetSpend, type NewBudget, type PendingBudgetAlert } from "./budgets";
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
  private readonly outcomes: OutcomeTable;
  private readonly summaries: UsageSummaries;
  private readonly budgets: BudgetTable;

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
    this.outcomes = new OutcomeTable(db);
    this.summaries = new UsageSummaries(db);
    this.budgets = new BudgetTable(db);
    this.records = new UsageRecords(db, signer, next, this.keys, this.budgets);
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

  /** See `UsageSummaries.summarize`: totals grouped by key, tag, model, trace, day or month; costs summed as bigint. */
  usageSummary(buyer: Address, groupBy: readonly SummaryDimension[], filter: SummaryFilter = {}): UsageSummary {
    return this.summaries.summarize(buyer, groupBy, filter);
  }

  /** See `UsageSummaries.workflows`: per workflow, the retry tail, runs and their success, and what outcomes cost. */
  workflowCosts(buyer: Address, filter: SummaryFilter = {}): WorkflowCosts[] {
    return this.summaries.workflows(buyer, this.outcomes.outcomesOf(buyer), filter);
  }

  /**
   * The summary and the workflow report read in one transaction, so both see the same records and outcomes:
   * a call recorded between the two passes would otherwise make the workflows disagree with the total.
   */
  usageReport(buyer: Address, groupBy: readonly SummaryDimension[], filter: SummaryFilter = {}): { summary: UsageSummary; workflows: WorkflowCosts[] } {
    return this.db.transaction(() => ({ summary: this.usageSummary(buyer, groupBy, filter), workflows: this.workflowCosts(buyer, filter) }))();
  }

  /** See `OutcomeTable.record`: refused, writing nothing, for a trace none of the buyer's calls carry or a repeat. */
  recordOutcome(input: OutcomeInput): RecordOutcomeResult {
    return this.outcomes.record(input);
  }

  outcomesOf(buyer: Address): StoredOutcome[] {
    return this.outcomes.outcomesOf(buyer);
  }

  outcomeCount(): number {
    return this.outcomes.count();
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

  /** Whether a usage record has this request id: a client's `x-request-id` is used for one call only. */
  hasRequestId(requestId: string): boolean {
    return this.records.hasRequestId(requestId);
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

  /** See `BudgetTable.create`: the budget and its current period's spend so far (at `now`), in one transaction. */
  createBudget(budget: NewBudget, now: number): BudgetSpend {
    return this.budgets.create(budget, now);
  }

  /** The buyer's live budgets, oldest first. */
  listBudgets(buyer: Address): Budget[] {
    return this.budgets.listOf(buyer);
  }

  /** A budget by id, live or deleted. */
  budgetById(id: string): Budget | undefined {
    return this.budgets.byId(id);
  }

  /** False if the buyer has no live budget by that id. */
  deleteBudget(buyer: Address, id: string, at: number): boolean {
    return this.budgets.delete(buyer, id, at);
  }

  /** The live budgets a call of this key's tags and trace counts against. In memory: safe in a synchronous step. */
  applicableBudgets(buyer: Address, tags: readonly string[], traceId: string | undefined): Budget[] {
    return this.budgets.applicable(buyer, tags, traceId);
  }

  /** A budget's committed spend in the period starting at `periodStart`. In memory: safe in a synchronous step. */
  budgetSpent(budgetId: string, periodStart: number): bigint {
    return this.budgets.spentIn(budgetId, periodStart);
  }

  /** Threshold alerts whose webhook is due at `nowMs`. */
  dueBudgetAlerts(nowMs: number, limit = 32): PendingBudgetAlert[] {
    return this.budgets.dueAlerts(nowMs, limit);
  }

  budgetAlertDelivered(id: bigint, atMs: number = Date.now()): void {
    this.budgets.alertDelivered(id, atMs);
  }

  budgetAlertFailed(id: bigint, attempts: number, error: string, next: { nextAttemptAtMs: number } | { gaveUpAtMs: number }): void {
    this.budgets.alertAttemptFailed(id, attempts, error, next);
  }

  /** Folds the WAL back into the database file, so the store is one self-contained file at rest. */
  close(): void {
    if (!this.db.open) return;
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    this.db.close();
  }
}
