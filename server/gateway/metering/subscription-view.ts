/**
 * A subscription's standing as the gateway shows it (`GET /v1/balance`, and the 402 of a REFUSE plan): the plan, the
 * period, the included value and how much of it is used (settled on-chain, unsettled, in flight), the overage rule,
 * when it renews or ends, and that unused included usage does not roll over. Amounts are base-unit strings.
 */
import type { SubscriptionStanding } from "./spend-ledger";

export const NO_ROLLOVER = "Included usage does not roll over: what a period leaves unused is forfeited when the period ends.";

export type SubscriptionState = "active" | "cancelled" | "renewal_due" | "ended";

/** active: renews at paidUntil; cancelled: ends then; renewal_due: a period started that nobody has renewed on-chain yet. */
export function subscriptionState(standing: SubscriptionStanding, now: number): SubscriptionState {
  const { status } = standing;
  if (!status.active || (status.cancelled && now >= status.paidUntil)) return "ended";
  if (now >= status.paidUntil) return "renewal_due";
  return status.cancelled ? "cancelled" : "active";
}

export interface SubscriptionView {
  subscription_id: string;
  plan_id: string;
  state: SubscriptionState;
  period_index: number;
  period_start: number;
  period_end: number;
  included: string;
  used_on_chain: string;
  unsettled_covered_usage: string;
  in_flight_covered: string;
  remaining: string;
  overage: "bill_balance" | "refuse";
  price: string;
  paid_until: number;
  /** When the next period's price is taken from the balance; null once cancelled or ended. */
  renews_at: number | null;
  cancelled: boolean;
  /** When coverage ends (cancelled or ended); null while it renews. */
  ends_at: number | null;
  held_for_renewal: string;
  rollover: string;
}

export function subscriptionView(standing: SubscriptionStanding, now: number): SubscriptionView {
  const { status } = standing;
  const state = subscriptionState(standing, now);
  const renews = state === "active" || state === "renewal_due";
  return {
    subscription_id: status.subscriptionId.toString(),
    plan_id: status.plan.planId.toString(),
    state,
    period_index: standing.periodIndex,
    period_start: standing.periodStart,
    period_end: standing.periodEnd,
    included: standing.includedValue.toString(),
    used_on_chain: standing.usedOnChain.toString(),
    unsettled_covered_usage: standing.unsettledCovered.toString(),
    in_flight_covered: standing.reservedCovered.toString(),
    remaining: standing.remaining.toString(),
    overage: status.plan.overage,
    price: status.plan.price.toString(),
    paid_until: status.paidUntil,
    renews_at: renews ? status.paidUntil : null,
    cancelled: status.cancelled,
    ends_at: renews ? null : status.paidUntil,
    held_for_renewal: standing.renewalHold.toString(),
    rollover: NO_ROLLOVER,
  };
}
