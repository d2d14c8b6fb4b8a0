/**
 * Which usage a buyer's subscription pays for, decided the way `TollgateSubscriptions.drawIncluded` decides it
 * when it settles a record: a model the plan's mask covers, served in a paid period
 * (`startedAt <= servedAt < paidUntil`), draws from that period's included value first. The spend ledger uses it
 * to count the included value a call may still spend, `/v1/balance` to show it.
 */
import type { SubscriptionStatus } from "../../chain/marketplace-reader";
import { modelBit } from "../../chain/plan-eligibility";

/** The subscription period a call's cost is drawn from: what the ledger tags its reservation and record with. */
export interface IncludedCover {
  subscriptionId: bigint;
  periodIndex: number;
  /** `subscriptionId:periodIndex`, the ledger's map key. */
  key: string;
}

export function coverKey(subscriptionId: bigint, periodIndex: number): string {
  return `${subscriptionId}:${periodIndex}`;
}

/** The period containing `at`, counted from the subscription's start (periods tile time from it). */
export function periodIndexAt(sub: SubscriptionStatus, at: number): number {
  return Math.floor((at - sub.startedAt) / sub.plan.period);
}

/** [start, end) of period `periodIndex`, unix seconds. */
export function periodBounds(sub: SubscriptionStatus, periodIndex: number): { start: number; end: number } {
  const start = sub.startedAt + periodIndex * sub.plan.period;
  return { start, end: start + sub.plan.period };
}

/**
 * The subscription period a call of the model at `localIndex` served at `servedAt` falls in, if the plan covers the
 * model: the tag its reservation and record carry. The period need not be paid yet (`coverPaid` says whether it is):
 * a call served after `paidUntil` of a live subscription draws that period's included value if the renewal happens
 * before its record settles, and is billed as without a subscription otherwise. An ended subscription tags nothing new.
 */
export function includedCoverAt(sub: SubscriptionStatus | null, localIndex: number, servedAt: number): IncludedCover | undefined {
  if (!sub || (sub.plan.modelMask & modelBit(localIndex)) === 0n || servedAt < sub.startedAt) return undefined;
  if (servedAt >= sub.paidUntil && !sub.active) return undefined;
  const periodIndex = periodIndexAt(sub, servedAt);
  return { subscriptionId: sub.subscriptionId, periodIndex, key: coverKey(sub.subscriptionId, periodIndex) };
}

/** Whether `cover`'s period is paid in this snapshot: settlement then draws its included value first. */
export function coverPaid(sub: SubscriptionStatus, cover: IncludedCover): boolean {
  return cover.subscriptionId === sub.subscriptionId && periodBounds(sub, cover.periodIndex).start < sub.paidUntil;
}

/**
 * Included value of `periodIndex` already drawn on-chain, as far as the snapshot tells. A later period than the
 * snapshot's had not started at its block, so nothing of it can have settled; an earlier one was not read, so it
 * counts as used up (its late records are then counted against the balance: never more than the chain allows).
 */
export function includedUsedOnChain(sub: SubscriptionStatus, subscriptionId: bigint, periodIndex: number): bigint {
  if (subscriptionId !== sub.subscriptionId || periodIndex < sub.periodIndex) return sub.plan.includedValue;
  return periodIndex === sub.periodIndex ? sub.includedUsed : 0n;
}

/**
 * What the next renewals will take from the balance, held back from what calls may spend from it: anyone may call
 * `renew` once a period starts, and it pays from the balance before the usage the gateway already served there
 * settles, so without this hold that usage could settle as shortfall. It counts the periods already due at `now`
 * and the next one, as many as the balance can pay (a renewal the balance cannot pay ends the subscription and
 * takes nothing). A cancelled or ended subscription takes nothing more.
 */
export function renewalHold(sub: SubscriptionStatus | null, balance: bigint, now: number): bigint {
  if (!sub || !sub.active || sub.cancelled || sub.plan.price === 0n) return 0n;
  const due = now >= sub.paidUntil ? Math.floor((now - sub.paidUntil) / sub.plan.period) + 1 : 0;
  const periods = BigInt(due + 1);
  const payable = balance / sub.plan.price;
  return sub.plan.price * (periods < payable ? periods : payable);
}
