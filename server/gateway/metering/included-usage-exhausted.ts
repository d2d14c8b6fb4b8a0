/**
 * The 402 a call of a covered model gets under a REFUSE subscription plan when it may cost more than the period's
 * included value has left: settlement would refuse the excess, so the gateway does not serve it. OpenAI's error
 * JSON (code `subscription_usage_exhausted`) with the subscription's figures under `error.subscription`, and
 * `retry-after` set to the seconds until the period renews (none if the subscription ends then). Nothing was
 * reserved or charged.
 */
import { isoTime } from "../budgets/budget-status";
import { GatewayError } from "../errors";
import type { SubscriptionStanding } from "./spend-ledger";
import { subscriptionState, subscriptionView, type SubscriptionView } from "./subscription-view";

export class IncludedUsageExhaustedError extends GatewayError {
  override name = "IncludedUsageExhaustedError";
  readonly subscription: SubscriptionView & { requested: string };

  constructor(standing: SubscriptionStanding, requested: bigint, formatAmount: (value: bigint) => string, now: number) {
    const { status } = standing;
    const used = standing.usedOnChain + standing.unsettledCovered + standing.reservedCovered;
    const renews = subscriptionState(standing, now) === "active";
    const next = renews
      ? `The period renews at ${isoTime(standing.periodEnd)} (unix ${standing.periodEnd}) with ${formatAmount(standing.includedValue)} included again; unused included usage does not roll over.`
      : `The subscription is cancelled and ends at ${isoTime(status.paidUntil)} (unix ${status.paidUntil}); unused included usage does not roll over.`;
    super(
      402,
      "insufficient_funds",
      `This call may cost up to ${formatAmount(requested)}, but subscription plan ${status.plan.planId} includes ${formatAmount(standing.includedValue)} of usage per period ` +
        `and this period (from ${isoTime(standing.periodStart)}) has used ${formatAmount(used)} (${formatAmount(standing.usedOnChain)} settled, ${formatAmount(standing.unsettledCovered)} not yet settled, ` +
        `${formatAmount(standing.reservedCovered)} held by calls in flight), leaving ${formatAmount(standing.remaining)}. The plan refuses overage, so nothing was charged. ${next} Lower max_tokens, or wait for the renewal.`,
      "subscription_usage_exhausted",
      null,
      renews ? { "retry-after": String(Math.max(1, standing.periodEnd - now)) } : {},
    );
    this.subscription = { ...subscriptionView(standing, now), requested: requested.toString() };
  }

  override toJSON() {
    const { error } = super.toJSON();
    return { error: { ...error, subscription: this.subscription } };
  }
}

/** The subscription's part of the insufficient-funds message: what included value added and what a renewal holds back. */
export function subscriptionTerms(standing: SubscriptionStanding | null, formatAmount: (value: bigint) => string): string {
  if (!standing) return "";
  const absorbed = standing.absorbed > 0n ? ` + of that usage, what the subscription's included value takes ${formatAmount(standing.absorbed)}` : "";
  const included = standing.cover ? ` + included usage left ${formatAmount(standing.remaining)} of plan ${standing.status.plan.planId}` : "";
  const hold = standing.renewalHold > 0n ? ` − held for the subscription's renewal ${formatAmount(standing.renewalHold)}` : "";
  return absorbed + included + hold;
}
