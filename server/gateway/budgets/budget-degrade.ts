/**
 * A budget may degrade instead of refusing (issue 13): once its spend this period has passed the threshold its
 * degrade rule names, calls it governs go to the cheaper model the rule names instead of the one asked for,
 * and the answer says so (the routing headers and the receipt's `routing`). This is advice on which model to
 * serve, not a money check: the limit itself is enforced with the reservation (spend-ledger.ts), so reading
 * spend here outside that synchronous step can at worst degrade one call early or late.
 */
import type { Budget, UsageStore } from "../../store/usage-store";
import { periodStart } from "../../store/budget-periods";

export interface BudgetDegrade {
  budget: Budget;
  /** The model the budget's rule names. */
  model: string;
  /** The budget's spend this period when the decision was made, in basis points of its limit (floored). */
  spentBps: bigint;
}

/**
 * The first budget governing this call (its key's tags, its trace) whose spend has reached its degrade
 * threshold and whose model is not the one already chosen; undefined when none applies.
 */
export function budgetDegrade(
  store: Pick<UsageStore, "applicableBudgets" | "budgetSpent">,
  call: { buyer: Budget["buyer"]; tags: readonly string[]; traceId: string | undefined; chosenModel: string; now: number },
): BudgetDegrade | undefined {
  for (const budget of store.applicableBudgets(call.buyer, call.tags, call.traceId)) {
    const rule = budget.degrade;
    if (!rule || rule.model === call.chosenModel || budget.limit === 0n) continue;
    const spent = store.budgetSpent(budget.id, periodStart(budget.period, call.now));
    // Integers only: spent / limit ≥ threshold / 10,000.
    if (spent * 10_000n >= budget.limit * BigInt(rule.thresholdBps)) return { budget, model: rule.model, spentBps: (spent * 10_000n) / budget.limit };
  }
  return undefined;
}
