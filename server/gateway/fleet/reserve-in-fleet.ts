/**
 * Fleet mode's step of `Meter.reserve`, after the local SpendLedger reserved the call: the same checks against what
 * the other instances hold and have not settled. A refusal (or the store failing) releases the local reservation
 * and answers as the single-instance gateway would, with the other instances' share named in the message.
 */
import type { Budget } from "../../store/usage-store";
import { BudgetExceededError } from "../budgets/budget-exceeded";
import { budgetStanding } from "../budgets/budget-status";
import { GatewayError } from "../errors";
import type { MarketplaceState } from "../marketplace-state";
import type { GatewayMetrics } from "../metrics";
import type { SpendableBreakdown, SpendLedger } from "../metering/spend-ledger";
import type { ReservedCall } from "../metering/meter";
import type { FleetHold, FleetLedger } from "./fleet-ledger";

export interface FleetReserveInput extends ReservedCall {
  amount: bigint;
  breakdown: SpendableBreakdown;
  keyRemaining: bigint | null;
  budgets: readonly Budget[];
  fleetBudgets: readonly { id: string; periodStart: number; left: bigint }[];
  signerNext: ReadonlyMap<string, bigint> | undefined;
  /** The version of the buyer's keys and budgets this instance adopted last (fleet-definitions.ts). */
  definitions: string;
}

export async function reserveInFleet(
  fleet: FleetLedger,
  call: FleetReserveInput,
  deps: { ledger: SpendLedger; state: MarketplaceState; metrics: GatewayMetrics; budgets?: { budgetSpent(id: string, periodStart: number): bigint } },
): Promise<{ hold: FleetHold; budgets: readonly { id: string; periodStart: number }[] } | "stale"> {
  const { key, amount, breakdown, servedAt } = call;
  let result;
  try {
    result = await fleet.reserve({
      buyer: key.buyer,
      amount,
      buyerLeft: breakdown.spendable,
      key: { id: key.id, left: call.keyRemaining },
      budgets: call.fleetBudgets,
      // A snapshot without the fleet's sequences (none joined yet when it was read): every other signer counts whole.
      signerNext: call.signerNext ?? new Map(),
      definitions: call.definitions,
    });
  } catch (error) {
    deps.ledger.release(call.reservation);
    throw error;
  }
  if ("hold" in result) return { hold: result.hold, budgets: call.fleetBudgets.map(({ id, periodStart }) => ({ id, periodStart })) };

  deps.ledger.release(call.reservation);
  // The buyer's keys or budgets changed elsewhere: the caller adopts them and checks the call again.
  if ("stale" in result) return "stale";
  const { limit, budgetIndex, others } = result.refused;
  const { state } = deps;
  const fmt = (value: bigint) => `${state.formatAmount(value)} ${state.token.symbol}`;
  if (limit === "budget") {
    deps.metrics.refusals.inc({ reason: "budget" });
    const budget = call.budgets[budgetIndex!];
    const period = call.fleetBudgets[budgetIndex!];
    const spent = deps.budgets!.budgetSpent(budget.id, period.periodStart);
    // The other instances' spend and holdings are shown as held: the budget's own figures stay this gateway's.
    const standing = budgetStanding(budget, servedAt, { budgetSpent: () => spent, budgetReserved: () => deps.ledger.budgetReserved(budget.id) + others });
    throw new BudgetExceededError(budget, standing, amount, servedAt, fmt);
  }
  state.forget(key.buyer);
  if (limit === "key") {
    deps.metrics.refusals.inc({ reason: "key_cap" });
    const left = call.keyRemaining! - others;
    throw new GatewayError(
      402,
      "insufficient_funds",
      `This call may cost up to ${fmt(amount)}, but API key ${key.id} has ${fmt(left > 0n ? left : 0n)} left of its ${fmt(key.spendCap!)} cap across this provider's gateways ` +
        `(${fmt(others)} of it spent or held on the others). Create a key with a higher cap, or lower max_tokens.`,
      "key_spend_cap_reached",
    );
  }
  deps.metrics.refusals.inc({ reason: "funds" });
  const left = breakdown.spendable - others;
  throw new GatewayError(
    402,
    "insufficient_funds",
    `This call may cost up to ${fmt(amount)}, but you can spend ${fmt(left > 0n ? left : 0n)} now: this gateway finds ${fmt(breakdown.spendable)} spendable ` +
      `(balance ${fmt(breakdown.balance)} + credits ${fmt(breakdown.creditValue)} − its unsettled usage ${fmt(breakdown.unsettledUsage)} − its calls in flight ${fmt(breakdown.openReservations)}), ` +
      `and this provider's other gateways hold or served ${fmt(others)} not settled yet. Deposit or buy credits, or lower max_tokens. GET /v1/balance shows the details.`,
    "insufficient_funds",
  );
}
