/**
 * A budget as the gateway shows it, in one shape for every answer that names one: the listing, the 402 that
 * refuses a call, `/v1/balance` and the webhook. Amounts are base-unit decimal strings; the reset is given as
 * ISO time and as unix seconds.
 */
import { periodEnd, periodStart } from "../../store/budget-periods";
import type { Budget } from "../../store/usage-store";
import type { GatewayContext } from "../context";

/** Where a budget stands in the period holding some moment. */
export interface BudgetStanding {
  periodStart: number;
  /** When the period ends and spend starts again from zero. */
  resetsAt: number;
  /** Recorded spend this period, as committed. */
  spent: bigint;
  /** Open reservations of calls in flight counted against it. */
  reserved: bigint;
}

/** The budget's standing at `now`, from the store's committed spend and the ledger's open reservations. */
export function budgetStanding(
  budget: Budget,
  now: number,
  sources: { budgetSpent(id: string, periodStart: number): bigint; budgetReserved(id: string): bigint },
): BudgetStanding {
  const start = periodStart(budget.period, now);
  return { periodStart: start, resetsAt: periodEnd(budget.period, now), spent: sources.budgetSpent(budget.id, start), reserved: sources.budgetReserved(budget.id) };
}

export function isoTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(".000Z", "Z");
}

export function describeBudget(budget: Budget, standing: BudgetStanding, formatAmount: (value: bigint) => string) {
  const remaining = budget.limit - standing.spent - standing.reserved;
  return {
    id: budget.id,
    object: "budget" as const,
    buyer: budget.buyer,
    label: budget.label,
    scope: budget.scope,
    /** The key tag or the trace id the budget counts. */
    target: budget.target,
    period: budget.period,
    limit: budget.limit.toString(),
    limit_formatted: formatAmount(budget.limit),
    spent: standing.spent.toString(),
    spent_formatted: formatAmount(standing.spent),
    reserved: standing.reserved.toString(),
    remaining: (remaining > 0n ? remaining : 0n).toString(),
    period_start: isoTime(standing.periodStart),
    period_start_unix: standing.periodStart,
    resets_at: isoTime(standing.resetsAt),
    resets_at_unix: standing.resetsAt,
    thresholds_bps: budget.thresholdsBps,
    webhook_url: budget.webhookUrl,
    /** Stored and returned for the router to come; today the gateway refuses at the limit whatever this says. */
    degrade: budget.degrade && { threshold_bps: budget.degrade.thresholdBps, model: budget.degrade.model },
    created_at: budget.createdAt,
  };
}

export type BudgetDescription = ReturnType<typeof describeBudget>;

/** The budget with where it stands this period, at the gateway's clock. */
export function budgetView(ctx: Pick<GatewayContext, "state" | "store" | "ledger">, budget: Budget): BudgetDescription {
  const standing = budgetStanding(budget, ctx.state.now(), { budgetSpent: (id, start) => ctx.store.budgetSpent(id, start), budgetReserved: (id) => ctx.ledger.budgetReserved(id) });
  return describeBudget(budget, standing, (value) => ctx.state.formatAmount(value));
}
