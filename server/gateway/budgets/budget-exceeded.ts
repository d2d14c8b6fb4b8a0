/**
 * The 402 a call gets when it would overrun one of its budgets: OpenAI's error JSON (code `budget_exceeded`)
 * with the budget's figures under `error.budget`, and `retry-after` set to the seconds until the period resets.
 * Nothing was reserved or charged.
 */
import type { Budget } from "../../store/usage-store";
import { GatewayError } from "../errors";
import { describeBudget, isoTime, type BudgetDescription, type BudgetStanding } from "./budget-status";

export class BudgetExceededError extends GatewayError {
  override name = "BudgetExceededError";
  readonly budget: BudgetDescription & { requested: string };

  constructor(budget: Budget, standing: BudgetStanding, requested: bigint, now: number, formatAmount: (value: bigint) => string) {
    const what = budget.scope === "tag" ? `tag ${budget.target}` : `trace ${budget.target}`;
    const wait = Math.max(1, standing.resetsAt - now);
    super(
      402,
      "insufficient_funds",
      `This call may cost up to ${formatAmount(requested)}, but budget ${budget.id}${budget.label ? ` ("${budget.label}")` : ""} on ${what} allows ${formatAmount(budget.limit)} per ${budget.period}, ` +
        `and this ${budget.period} has spent ${formatAmount(standing.spent)} with ${formatAmount(standing.reserved)} held by calls in flight. ` +
        `It resets at ${isoTime(standing.resetsAt)} (unix ${standing.resetsAt}). Lower max_tokens, raise the budget (delete it and create a larger one), or wait for the reset.`,
      "budget_exceeded",
      null,
      { "retry-after": String(wait) },
    );
    this.budget = { ...describeBudget(budget, standing, formatAmount), requested: requested.toString() };
  }

  override toJSON() {
    const { error } = super.toJSON();
    return { error: { ...error, budget: this.budget } };
  }
}
