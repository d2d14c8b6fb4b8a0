/**
 * One event of the subscriptions contract applied to the ledger, as the contract changed its state. A period's
 * payment moves money inside the vault without a Tollgate event (`chargeSubscription` is the vault's door, the
 * satellite emits): `Subscribed` and `SubscriptionRenewed` carry the price and the fee, so the buyer's balance,
 * the provider's earnings and the protocol fees follow them, each checked against the plan and the fee rate.
 * `IncludedUsageDrawn` is held for the `BatchSettled` that follows it in the same transaction (`settleBatch`
 * replays the draw and compares). Browser-safe.
 */
import { getAddress } from "viem";
import { protocolFeeOn } from "../../../server/chain/pricing";
import type { AuditEvent } from "./decode-logs";
import type { EventContext } from "./apply-event";
import type { FindingLocation } from "./findings";
import { overageRuleOf, type SubscriptionPlanTerms } from "../../../server/chain/subscription-plan";
import { buyerOf, includedUsedOf, paidUntil, subscriptionKey, type SubscriptionState } from "./ledger";

/** `EndReason.UNPAID` in `ITollgateSubscriptions`. */
const END_UNPAID = 1;

export function applySubscriptionEvent(context: EventContext, event: AuditEvent): void {
  const { ledger, findings, flows, log, time, where } = context;

  /** The buyer's subscription with the provider the event names, checked to be the one the event means. */
  const subscriptionOf = (buyer: `0x${string}`, providerId: number, subscriptionId: bigint, at: FindingLocation): { sub: SubscriptionState; plan: SubscriptionPlanTerms } | undefined => {
    const sub = ledger.subscriptions.get(subscriptionKey(getAddress(buyer), providerId));
    const plan = sub && ledger.subscriptionPlans.get(sub.planId);
    if (!sub || !plan || sub.id !== subscriptionId) {
      findings.add("event_mismatch", `an event names subscription ${subscriptionId} of ${buyer} with provider ${providerId}, which ${sub ? `is subscription ${sub.id} by the events before` : "never subscribed"}`, at, { expected: sub?.id ?? 0n, found: subscriptionId });
      return undefined;
    }
    return { sub, plan };
  };

  /** A period's payment: from the buyer's balance (never its pending withdrawal) to the provider, minus the fee. */
  const pay = (buyer: `0x${string}`, providerId: number, price: bigint, fee: bigint, plan: SubscriptionPlanTerms, at: FindingLocation, what: string) => {
    findings.compare("event_mismatch", `the price of ${what} (plan ${plan.planId}'s period price)`, at, plan.price, price);
    findings.compare("fee_mismatch", `the protocol fee on ${what} of ${price} at ${ledger.feeBps} bps`, at, protocolFeeOn(price, ledger.feeBps), fee);
    const account = buyerOf(ledger, getAddress(buyer));
    if (account.balance < price) findings.add("event_mismatch", `${account.buyer} paid ${what} of ${price} from a balance of ${account.balance} by the events before`, at, { expected: account.balance, found: price });
    account.balance -= price;
    const provider = ledger.providers.get(providerId);
    if (provider) provider.earnings += price - fee;
    else findings.add("event_mismatch", `${what} paid provider ${providerId}, which was never registered`, at);
    ledger.protocolFees += fee;
  };

  /** Included value a period left unused, as settled so far: the contract reports it forfeited (no rollover). */
  const unused = (sub: SubscriptionState, plan: SubscriptionPlanTerms, periodIndex: number) => {
    const used = includedUsedOf(ledger, sub.id, periodIndex);
    return used < plan.includedValue ? plan.includedValue - used : 0n;
  };

  switch (event.eventName) {
    case "SubscriptionPlanDefined": {
      const { planId, providerId, period, price, includedValue, modelMask, overage } = event.args;
      if (!ledger.providers.has(providerId)) findings.add("event_mismatch", `subscription plan ${planId} names provider ${providerId}, which was never registered`, { ...where, providerId });
      ledger.subscriptionPlans.set(planId, { planId, providerId, period: Number(period), price, includedValue, modelMask, overage: overageRuleOf(overage) });
      return;
    }
    case "Subscribed": {
      const { providerId, planId, subscriptionId, periodStart, periodEnd, price, fee, includedValue } = event.args;
      const buyer = getAddress(event.args.buyer);
      const at = { ...where, buyer, providerId };
      const plan = ledger.subscriptionPlans.get(planId);
      if (!plan || plan.providerId !== providerId) {
        findings.add("event_mismatch", `${buyer} subscribed to plan ${planId} of provider ${providerId}, ${plan ? `a plan of provider ${plan.providerId}` : "a plan never defined"}`, at);
        return;
      }
      const before = ledger.subscriptions.get(subscriptionKey(buyer, providerId));
      if (before?.active) findings.add("event_mismatch", `${buyer} subscribed to provider ${providerId} again while subscription ${before.id} had not ended`, at);
      findings.compare("event_mismatch", "the new subscription's id (one more than the subscriptions before)", at, ledger.subscriptionCount + 1n, subscriptionId);
      findings.compare("event_mismatch", `${buyer}'s first period start (the block's time)`, at, BigInt(time), periodStart);
      findings.compare("event_mismatch", `${buyer}'s first period end`, at, periodStart + BigInt(plan.period), periodEnd);
      findings.compare("event_mismatch", `the included value of plan ${planId}`, at, plan.includedValue, includedValue);
      pay(buyer, providerId, price, fee, plan, at, `plan ${planId}'s first period`);
      ledger.subscriptionCount = subscriptionId;
      ledger.subscriptions.set(subscriptionKey(buyer, providerId), { buyer, providerId, id: subscriptionId, planId, startedAt: Number(periodStart), paidPeriods: 1, active: true, cancelled: false });
      return;
    }
    case "SubscriptionRenewed": {
      const { providerId, subscriptionId, periodIndex, periodStart, periodEnd, price, fee, forfeited } = event.args;
      const buyer = getAddress(event.args.buyer);
      const at = { ...where, buyer, providerId };
      const found = subscriptionOf(buyer, providerId, subscriptionId, at);
      if (!found) return;
      const { sub, plan } = found;
      const due = paidUntil(sub, plan);
      if (!sub.active || sub.cancelled) findings.add("event_mismatch", `subscription ${sub.id} renewed though it was ${sub.active ? "cancelled" : "ended"}`, at);
      findings.compare("event_mismatch", `the period subscription ${sub.id} renewed`, at, BigInt(sub.paidPeriods), periodIndex);
      findings.compare("event_mismatch", `the start of period ${periodIndex} of subscription ${sub.id}`, at, BigInt(due), periodStart);
      findings.compare("event_mismatch", `the end of period ${periodIndex} of subscription ${sub.id}`, at, BigInt(due + plan.period), periodEnd);
      if (time < due) findings.add("event_mismatch", `subscription ${sub.id} renewed at ${time}, before its paid period ended at ${due}`, at, { expected: BigInt(due), found: BigInt(time) });
      findings.compare("event_mismatch", `included value period ${sub.paidPeriods - 1} of subscription ${sub.id} left unused (forfeited: no rollover)`, at, unused(sub, plan, sub.paidPeriods - 1), forfeited);
      pay(buyer, providerId, price, fee, plan, at, `period ${periodIndex} of subscription ${sub.id}`);
      sub.paidPeriods += 1;
      return;
    }
    case "SubscriptionCancelled": {
      const { providerId, subscriptionId, endsAt } = event.args;
      const buyer = getAddress(event.args.buyer);
      const at = { ...where, buyer, providerId };
      const found = subscriptionOf(buyer, providerId, subscriptionId, at);
      if (!found) return;
      const { sub, plan } = found;
      if (!sub.active || sub.cancelled) findings.add("event_mismatch", `subscription ${sub.id} cancelled though it was ${sub.active ? "already cancelled" : "ended"}`, at);
      findings.compare("event_mismatch", `when cancelled subscription ${sub.id} ends (its paid periods' end)`, at, BigInt(paidUntil(sub, plan)), endsAt);
      sub.cancelled = true;
      return;
    }
    case "SubscriptionEnded": {
      const { providerId, subscriptionId, reason, endedAt, due, balance, forfeited } = event.args;
      const buyer = getAddress(event.args.buyer);
      const at = { ...where, buyer, providerId };
      const found = subscriptionOf(buyer, providerId, subscriptionId, at);
      if (!found) return;
      const { sub, plan } = found;
      if (!sub.active) findings.add("event_mismatch", `subscription ${sub.id} ended twice`, at);
      findings.compare("event_mismatch", `when subscription ${sub.id} ended (its paid periods' end)`, at, BigInt(paidUntil(sub, plan)), endedAt);
      findings.compare("event_mismatch", `included value the last period of subscription ${sub.id} left unused (forfeited: no rollover)`, at, unused(sub, plan, sub.paidPeriods - 1), forfeited);
      if (reason === END_UNPAID) {
        // Ended unpaid: the balance the renewal found must really have been short of the period price.
        const account = buyerOf(ledger, buyer);
        findings.compare("event_mismatch", `the period price subscription ${sub.id} could not pay`, at, plan.price, due);
        findings.compare("event_mismatch", `${buyer}'s balance when its renewal could not be paid`, at, account.balance, balance);
        if (account.balance >= plan.price) findings.add("event_mismatch", `subscription ${sub.id} ended unpaid though ${buyer}'s balance ${account.balance} covered the price ${plan.price}`, at, { expected: plan.price, found: account.balance });
      } else if (!sub.cancelled) {
        findings.add("event_mismatch", `subscription ${sub.id} ended as cancelled, but it was never cancelled`, at);
      }
      sub.active = false;
      return;
    }
    case "IncludedUsageDrawn": {
      const { buyer, providerId, subscriptionId, firstSequence, periodIndex, drawn, refused, usedInPeriod, includedValue } = event.args;
      flows.includedDraws.push({ buyer: getAddress(buyer), providerId, subscriptionId, firstSequence, periodIndex, drawn, refused, usedInPeriod, includedValue, log });
      return;
    }
    default:
      return;
  }
}
