/**
 * Budgets: a buyer's limit on what calls of one tag (a team, a workflow) or one trace (a workflow run) may
 * cost per calendar period, and what each has spent. Kept in the usage store's database because a budget's
 * spend moves in the same transaction (the record's own savepoint) as the record that spent it, like a key's
 * `spent`: a running counter per budget per period, not a sum over the records at each call, because the
 * gateway checks it on every call in a synchronous step and a sum over a month of records would not fit there.
 * The counter is durable, so a restart starts from it; an in-memory copy, updated only after COMMIT, is what
 * the reservation step reads.
 *
 * A threshold crossed by a record is written to `budget_alerts` in that same savepoint (a transactional
 * outbox): the webhook is sent later, off the request path, and the row's UNIQUE (budget, period, threshold)
 * makes each crossing one alert per period, across restarts.
 */
import type { Database, Statement, Transaction } from "better-sqlite3";
import { getAddress, type Address } from "viem";
import { periodEnd, periodStart, type BudgetPeriod } from "./budget-periods";
import { decodeAmount, encodeAmount } from "./migrations";

export type BudgetScope = "tag" | "trace";

export interface BudgetDegradeRule {
  /** Past this share of the limit (basis points), calls would go to `model` instead (not enforced yet: see README). */
  thresholdBps: number;
  model: string;
}

export interface Budget {
  /** "bud_…", public. */
  id: string;
  buyer: Address;
  scope: BudgetScope;
  /** A key tag ("team:support") or a trace id, by scope. */
  target: string;
  period: BudgetPeriod;
  /** Token base units per period. */
  limit: bigint;
  /** Ascending basis points of the limit at which an alert is sent (8000 = 80%). */
  thresholdsBps: number[];
  webhookUrl: string | null;
  /** The HMAC key of this budget's webhook signatures; shown to the buyer once, at creation. */
  webhookSecret: string | null;
  degrade: BudgetDegradeRule | null;
  label: string;
  createdAt: number;
  deletedAt: number | null;
}

export type NewBudget = Omit<Budget, "deletedAt">;

/** A budget's spend in one period. */
export interface BudgetSpend {
  periodStart: number;
  spent: bigint;
}

/** One record's cost added to one budget, inside the record's savepoint. */
export interface BudgetCharge {
  budgetId: string;
  periodStart: number;
  /** The period's spend after this record. */
  spent: bigint;
}

/** A crossed threshold waiting for (or retrying) its webhook, with what the webhook says. */
export interface PendingBudgetAlert {
  id: bigint;
  budget: Budget;
  periodStart: number;
  periodEnd: number;
  thresholdBps: number;
  /** The period's spend right after the record that crossed the threshold. */
  spent: bigint;
  crossedAt: number;
  /** The record that crossed it. */
  sequence: bigint | null;
  attempts: number;
}

/** The buyer already has a live budget on this scope, target and period. */
export class BudgetExistsError extends Error {
  override name = "BudgetExistsError";
  constructor(readonly existingId: string) {
    super(`a budget on the same scope, target and period already exists: ${existingId}`);
  }
}

interface BudgetRow {
  id: string;
  buyer: string;
  scope: BudgetScope;
  target: string;
  period: BudgetPeriod;
  limit_amount: string;
  thresholds: string;
  webhook_url: string | null;
  webhook_secret: string | null;
  degrade_threshold_bps: number | null;
  degrade_model: string | null;
  label: string;
  created_at: number;
  deleted_at: number | null;
}

interface AlertRow {
  id: bigint;
  budget_id: string;
  period_start: bigint;
  threshold_bps: bigint;
  spent: string;
  crossed_at: bigint;
  sequence: bigint | null;
  attempts: bigint;
}

function toBudget(row: BudgetRow): Budget {
  return {
    id: row.id,
    buyer: row.buyer as Address,
    scope: row.scope,
    target: row.target,
    period: row.period,
    limit: decodeAmount(row.limit_amount),
    thresholdsBps: JSON.parse(row.thresholds) as number[],
    webhookUrl: row.webhook_url,
    webhookSecret: row.webhook_secret,
    degrade: row.degrade_model === null ? null : { thresholdBps: row.degrade_threshold_bps ?? 0, model: row.degrade_model },
    label: row.label,
    createdAt: row.created_at,
    deletedAt: row.deleted_at,
  };
}

/** The live budgets of one buyer, by what they match. */
interface BuyerBudgets {
  byTag: Map<string, Budget[]>;
  byTrace: Map<string, Budget[]>;
}

function push(map: Map<string, Budget[]>, key: string, budget: Budget): void {
  const list = map.get(key);
  if (list) list.push(budget);
  else map.set(key, [budget]);
}

export class BudgetTable {
  /** Live budgets, by buyer then tag or trace: the reservation step's lookup, with no SQL. */
  private readonly live = new Map<Address, BuyerBudgets>();
  /** Each live budget's spend in its latest charged period, as committed. */
  private readonly spend = new Map<string, BudgetSpend>();
  /** Spend moved by the records of the group being written, by budget and period: written once per group by `flush`. */
  private readonly pending = new Map<string, BudgetCharge>();

  private readonly insertStmt: Statement<[Record<string, unknown>]>;
  private readonly liveStmt: Statement<[], BudgetRow>;
  private readonly byBuyerStmt: Statement<[string], BudgetRow>;
  private readonly byIdStmt: Statement<[string], BudgetRow>;
  private readonly sameStmt: Statement<[string, string, string, string], { id: string }>;
  private readonly deleteStmt: Statement<[number, string, string]>;
  private readonly latestSpendStmt: Statement<[string], { period_start: number; spent: string }>;
  private readonly spendStmt: Statement<[string, number], { spent: string }>;
  private readonly upsertSpendStmt: Statement<[string, number, string]>;
  private readonly insertAlertStmt: Statement<[Record<string, unknown>]>;
  private readonly tagCostsStmt: Statement<[string, string, number, number], { cost: string }>;
  private readonly traceCostsStmt: Statement<[string, string, number, number], { cost: string }>;
  private readonly dueAlertsStmt: Statement<[number, number], AlertRow>;
  private readonly deliveredStmt: Statement<[number, bigint]>;
  private readonly retryStmt: Statement<[number, number, string, bigint]>;
  private readonly gaveUpStmt: Statement<[number, number, string, bigint]>;
  private readonly createTx: Transaction<(budget: NewBudget, now: number) => BudgetSpend>;

  constructor(private readonly db: Database) {
    this.insertStmt = db.prepare(`
      INSERT INTO budgets (id, buyer, scope, target, period, limit_amount, thresholds, webhook_url, webhook_secret,
                           degrade_threshold_bps, degrade_model, label, created_at)
      VALUES (@id, @buyer, @scope, @target, @period, @limit, @thresholds, @webhookUrl, @webhookSecret,
              @degradeThresholdBps, @degradeModel, @label, @createdAt)`);
    this.liveStmt = db.prepare("SELECT * FROM budgets WHERE deleted_at IS NULL");
    this.byBuyerStmt = db.prepare("SELECT * FROM budgets WHERE buyer = ? AND deleted_at IS NULL ORDER BY created_at, rowid");
    this.byIdStmt = db.prepare("SELECT * FROM budgets WHERE id = ?");
    this.sameStmt = db.prepare("SELECT id FROM budgets WHERE buyer = ? AND scope = ? AND target = ? AND period = ? AND deleted_at IS NULL");
    this.deleteStmt = db.prepare("UPDATE budgets SET deleted_at = ? WHERE id = ? AND buyer = ? AND deleted_at IS NULL");
    this.latestSpendStmt = db.prepare("SELECT period_start, spent FROM budget_spend WHERE budget_id = ? ORDER BY period_start DESC LIMIT 1");
    this.spendStmt = db.prepare("SELECT spent FROM budget_spend WHERE budget_id = ? AND period_start = ?");
    this.upsertSpendStmt = db.prepare(
      "INSERT INTO budget_spend (budget_id, period_start, spent) VALUES (?, ?, ?) ON CONFLICT (budget_id, period_start) DO UPDATE SET spent = excluded.spent",
    );
    this.insertAlertStmt = db.prepare(`
      INSERT INTO budget_alerts (budget_id, period_start, threshold_bps, spent, crossed_at, sequence, next_attempt_at)
      VALUES (@budgetId, @periodStart, @thresholdBps, @spent, @crossedAt, @sequence, @nextAttemptAt)
      ON CONFLICT (budget_id, period_start, threshold_bps) DO NOTHING`);
    this.tagCostsStmt = db.prepare(`
      SELECT cost FROM usage_records
      WHERE buyer = ? AND EXISTS (SELECT 1 FROM json_each(usage_records.tags) WHERE value = ?) AND served_at >= ? AND served_at < ?`);
    this.traceCostsStmt = db.prepare(`
      SELECT r.cost FROM call_attribution a JOIN usage_records r ON r.sequence = a.sequence
      WHERE a.buyer = ? AND a.trace_id = ? AND r.served_at >= ? AND r.served_at < ?`);
    this.dueAlertsStmt = db
      .prepare<[number, number], AlertRow>(`
        SELECT id, budget_id, period_start, threshold_bps, spent, crossed_at, sequence, attempts FROM budget_alerts
        WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`)
      .safeIntegers(true);
    this.deliveredStmt = db.prepare("UPDATE budget_alerts SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?");
    this.retryStmt = db.prepare("UPDATE budget_alerts SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?");
    this.gaveUpStmt = db.prepare("UPDATE budget_alerts SET attempts = ?, failed_at = ?, last_error = ? WHERE id = ?");
    this.createTx = db.transaction((budget: NewBudget, now: number) => this.writeBudget(budget, now));
    this.load();
  }

  private load(): void {
    for (const row of this.liveStmt.all()) {
      const budget = toBudget(row);
      this.index(budget);
      const latest = this.latestSpendStmt.get(budget.id);
      if (latest) this.spend.set(budget.id, { periodStart: latest.period_start, spent: decodeAmount(latest.spent) });
    }
  }

  private index(budget: Budget): void {
    let buyer = this.live.get(budget.buyer);
    if (!buyer) this.live.set(budget.buyer, (buyer = { byTag: new Map(), byTrace: new Map() }));
    push(budget.scope === "tag" ? buyer.byTag : buyer.byTrace, budget.target, budget);
  }

  private unindex(budget: Budget): void {
    const buyer = this.live.get(budget.buyer);
    const map = budget.scope === "tag" ? buyer?.byTag : buyer?.byTrace;
    const list = map?.get(budget.target)?.filter((other) => other.id !== budget.id);
    if (!map || !list) return;
    if (list.length === 0) map.delete(budget.target);
    else map.set(budget.target, list);
    this.spend.delete(budget.id);
  }

  /**
   * Creates a budget and counts what the current period (at `now`) has already spent on its tag or trace, in one
   * transaction: a budget made mid-month limits the whole month, and no record commits between the count and
   * the budget taking effect. Throws BudgetExistsError when the same scope, target and period already has one.
   */
  create(budget: NewBudget, now: number): BudgetSpend {
    const spend = this.createTx.immediate(budget, now);
    const stored: Budget = { ...budget, buyer: getAddress(budget.buyer), deletedAt: null };
    this.index(stored);
    this.spend.set(stored.id, spend);
    return spend;
  }

  private writeBudget(budget: NewBudget, now: number): BudgetSpend {
    const buyer = getAddress(budget.buyer);
    const existing = this.sameStmt.get(buyer, budget.scope, budget.target, budget.period);
    if (existing) throw new BudgetExistsError(existing.id);
    this.insertStmt.run({
      id: budget.id,
      buyer,
      scope: budget.scope,
      target: budget.target,
      period: budget.period,
      limit: encodeAmount(budget.limit, "budget limit"),
      thresholds: JSON.stringify(budget.thresholdsBps),
      webhookUrl: budget.webhookUrl,
      webhookSecret: budget.webhookSecret,
      degradeThresholdBps: budget.degrade?.thresholdBps ?? null,
      degradeModel: budget.degrade?.model ?? null,
      label: budget.label,
      createdAt: budget.createdAt,
    });
    const start = periodStart(budget.period, now);
    const end = periodEnd(budget.period, now);
    const rows = (budget.scope === "tag" ? this.tagCostsStmt : this.traceCostsStmt).all(buyer, budget.target, start, end);
    // Amounts are decimal text (uint256): summed here, never by SQL, which would pass through a float.
    const spent = rows.reduce((sum, row) => sum + decodeAmount(row.cost), 0n);
    this.upsertSpendStmt.run(budget.id, start, encodeAmount(spent, "budget spend"));
    return { periodStart: start, spent };
  }

  /** The buyer's live budgets, oldest first. */
  listOf(buyer: Address): Budget[] {
    return this.byBuyerStmt.all(getAddress(buyer)).map(toBudget);
  }

  byId(id: string): Budget | undefined {
    const row = this.byIdStmt.get(id);
    return row && toBudget(row);
  }

  /** Ends a live budget of `buyer`; false when it has none by that id. Its spend rows and alerts stay, for the record. */
  delete(buyer: Address, id: string, at: number): boolean {
    const budget = this.byId(id);
    if (!budget || this.deleteStmt.run(at, id, getAddress(buyer)).changes !== 1) return false;
    this.unindex(budget);
    return true;
  }

  /** The live budgets a call counts against: one per tag of its key that has budgets, and its trace's. No SQL. */
  applicable(buyer: Address, tags: readonly string[], traceId: string | undefined): Budget[] {
    const budgets = this.live.get(buyer);
    if (!budgets) return [];
    const found: Budget[] = [];
    for (const tag of tags) {
      const list = budgets.byTag.get(tag);
      // A key's tags may repeat one: a budget counts a call once.
      if (list) for (const budget of list) if (!found.includes(budget)) found.push(budget);
    }
    if (traceId !== undefined) {
      const list = budgets.byTrace.get(traceId);
      if (list) found.push(...list);
    }
    return found;
  }

  /** What the budget's period starting at `start` has spent, as committed. No SQL. */
  spentIn(budgetId: string, start: number): bigint {
    const spend = this.spend.get(budgetId);
    return spend && spend.periodStart === start ? spend.spent : 0n;
  }

  /**
   * Inside a record's savepoint: adds its cost to every live budget it counts against, in the period of its
   * `servedAt`, and writes an alert for each threshold the addition crosses. The new spend is held for the
   * group (`flush` writes it once per budget, before COMMIT) and reaches the in-memory copy only after COMMIT
   * (`applyCommitted`): a record that rolls back counts nowhere. It is taken into the group only once nothing
   * more can throw, so a savepoint that rolls back leaves it untouched too.
   */
  charge(record: { sequence: bigint; buyer: Address; tags: readonly string[]; cost: bigint; servedAt: number }, traceId: string | undefined): void {
    if (record.cost === 0n) return;
    const budgets = this.applicable(record.buyer, record.tags, traceId);
    if (budgets.length === 0) return;
    const charges: BudgetCharge[] = [];
    for (const budget of budgets) {
      const start = periodStart(budget.period, record.servedAt);
      const before = this.spentBefore(budget.id, start);
      const after = before + record.cost;
      for (const bps of budget.thresholdsBps) {
        const mark = budget.limit * BigInt(bps);
        if (before * 10_000n < mark && after * 10_000n >= mark) {
          this.insertAlertStmt.run({
            budgetId: budget.id,
            periodStart: start,
            thresholdBps: bps,
            spent: encodeAmount(after, "budget spend"),
            crossedAt: record.servedAt,
            sequence: record.sequence,
            nextAttemptAt: Date.now(),
          });
        }
      }
      charges.push({ budgetId: budget.id, periodStart: start, spent: after });
    }
    for (const charge of charges) this.pending.set(`${charge.budgetId}:${charge.periodStart}`, charge);
  }

  /** The spend of a budget's period so far: this group's, else the committed copy, else the row (an older period). */
  private spentBefore(budgetId: string, start: number): bigint {
    const inGroup = this.pending.get(`${budgetId}:${start}`);
    if (inGroup) return inGroup.spent;
    const committed = this.spend.get(budgetId);
    if (committed && committed.periodStart === start) return committed.spent;
    return decodeAmount(this.spendStmt.get(budgetId, start)?.spent ?? "0");
  }

  /** Inside the group's transaction, after its records: writes the spend they moved; returns it for `applyCommitted`. */
  flush(): BudgetCharge[] {
    const charges = [...this.pending.values()];
    this.pending.clear();
    for (const charge of charges) this.upsertSpendStmt.run(charge.budgetId, charge.periodStart, encodeAmount(charge.spent, "budget spend"));
    return charges;
  }

  /** The group's transaction failed: what its records moved was never written. */
  discardPending(): void {
    this.pending.clear();
  }

  /** After COMMIT: the in-memory spend takes the committed values (a later period replaces an earlier one). */
  applyCommitted(charges: readonly BudgetCharge[]): void {
    for (const charge of charges) {
      const current = this.spend.get(charge.budgetId);
      if (current && current.periodStart > charge.periodStart) continue; // a late record of a period already over
      if (current && current.periodStart === charge.periodStart && current.spent > charge.spent) continue;
      if (!current && !this.isLive(charge.budgetId)) continue;
      this.spend.set(charge.budgetId, { periodStart: charge.periodStart, spent: charge.spent });
    }
  }

  private isLive(budgetId: string): boolean {
    const budget = this.byId(budgetId);
    return budget !== undefined && budget.deletedAt === null;
  }

  /** Alerts whose next delivery attempt is due at `nowMs`, oldest first. */
  dueAlerts(nowMs: number, limit: number): PendingBudgetAlert[] {
    const alerts: PendingBudgetAlert[] = [];
    for (const row of this.dueAlertsStmt.all(nowMs, limit)) {
      const budget = this.byId(row.budget_id);
      if (!budget) continue;
      const start = Number(row.period_start);
      alerts.push({
        id: row.id,
        budget,
        periodStart: start,
        periodEnd: periodEnd(budget.period, start),
        thresholdBps: Number(row.threshold_bps),
        spent: decodeAmount(row.spent),
        crossedAt: Number(row.crossed_at),
        sequence: row.sequence,
        attempts: Number(row.attempts),
      });
    }
    return alerts;
  }

  alertDelivered(id: bigint, atMs: number): void {
    this.deliveredStmt.run(atMs, id);
  }

  /** A failed attempt: try again at `nextAttemptAtMs`, or, with `gaveUp`, never again. */
  alertAttemptFailed(id: bigint, attempts: number, error: string, next: { nextAttemptAtMs: number } | { gaveUpAtMs: number }): void {
    if ("gaveUpAtMs" in next) this.gaveUpStmt.run(attempts, next.gaveUpAtMs, error.slice(0, 500), id);
    else this.retryStmt.run(attempts, next.nextAttemptAtMs, error.slice(0, 500), id);
  }
}
