/**
 * Settlement's draw of subscriptions' included usage, replayed (`TollgateSubscriptions.drawIncluded`): for each
 * record of a subscribed buyer, of a model its plan covers, served in a paid period (`startedAt <= servedAt <
 * paidUntil`), the cost comes first out of that period's remaining included value; beyond it a REFUSE plan
 * refuses the rest (shortfall, never charged) and a BILL_BALANCE plan leaves it to credits and balance. Unused
 * included value never carries into the next period: each period starts at 0. The draws of one period in one
 * batch are written and reported once (`IncludedUsageDrawn`), in the order the contract reports them, so the
 * replay can compare the events one by one. Pure over the ledger it updates. Browser-safe.
 */
import type { Address } from "viem";
import { paidUntil, subscriptionKey, type Ledger } from "./ledger";

export interface IncludedDrawInput {
  providerId: number;
  firstSequence: bigint;
  /** The batch's buyer table, in order. */
  buyers: readonly Address[];
  /** Per record, in batch order: its buyer's and model's table index, when it was served, and its cost. */
  buyerIndex: ArrayLike<number>;
  modelIndex: ArrayLike<number>;
  servedAt: (record: number) => number;
  costs: readonly bigint[];
  /** Per record: whether the buyer's named credit plan covers it (settlement's bucket for it). */
  eligible: ArrayLike<number>;
  /** Per model table entry: its bit in a plan's mask (`1 << localIndex`), or undefined for a model the audit cannot price. */
  maskBits: readonly (bigint | undefined)[];
}

/** One `IncludedUsageDrawn` as the rules produce it. */
export interface ExpectedIncludedDraw {
  buyer: Address;
  providerId: number;
  subscriptionId: bigint;
  firstSequence: bigint;
  periodIndex: bigint;
  drawn: bigint;
  refused: bigint;
  usedInPeriod: bigint;
  includedValue: bigint;
}

export interface BuyerIncludedDraw {
  /** Covered cost taken out of the credit-eligible bucket, and out of the other one (drawn or refused). */
  fromEligible: bigint;
  fromOther: bigint;
  /** Of the covered cost: drawn from included value, and refused under REFUSE. */
  included: bigint;
  refused: bigint;
}

export interface IncludedDrawResult {
  /** Per buyer of the table. */
  buyers: BuyerIncludedDraw[];
  /** Per record: the part of its cost drawn from included value, and the part refused. */
  included: bigint[];
  refused: bigint[];
  events: ExpectedIncludedDraw[];
}

interface Cover {
  buyer: Address;
  subscriptionId: bigint;
  startedAt: number;
  period: number;
  paidUntil: number;
  includedValue: bigint;
  modelMask: bigint;
  refuse: boolean;
  periodIndex: number;
  used: bigint;
  drawn: bigint;
  refused: bigint;
}

export function drawIncludedUsage(ledger: Ledger, input: IncludedDrawInput): IncludedDrawResult {
  const count = input.costs.length;
  const result: IncludedDrawResult = {
    buyers: input.buyers.map(() => ({ fromEligible: 0n, fromOther: 0n, included: 0n, refused: 0n })),
    included: new Array<bigint>(count).fill(0n),
    refused: new Array<bigint>(count).fill(0n),
    events: [],
  };
  // The satellite looks up every buyer's subscription with the batch's provider, ended or not: paid periods stay covered.
  const covers = input.buyers.map((buyer): Cover | undefined => {
    const sub = ledger.subscriptions.get(subscriptionKey(buyer, input.providerId));
    const plan = sub && ledger.subscriptionPlans.get(sub.planId);
    if (!sub || !plan) return undefined;
    return {
      buyer,
      subscriptionId: sub.id,
      startedAt: sub.startedAt,
      period: plan.period,
      paidUntil: paidUntil(sub, plan),
      includedValue: plan.includedValue,
      modelMask: plan.modelMask,
      refuse: plan.overage === "refuse",
      periodIndex: -1,
      used: 0n,
      drawn: 0n,
      refused: 0n,
    };
  });
  if (!covers.some(Boolean)) return result;

  const flush = (cover: Cover) => {
    if (cover.drawn === 0n && cover.refused === 0n) return;
    if (cover.drawn !== 0n) {
      let periods = ledger.includedUsed.get(cover.subscriptionId);
      if (!periods) ledger.includedUsed.set(cover.subscriptionId, (periods = new Map()));
      periods.set(cover.periodIndex, cover.used);
    }
    result.events.push({
      buyer: cover.buyer,
      providerId: input.providerId,
      subscriptionId: cover.subscriptionId,
      firstSequence: input.firstSequence,
      periodIndex: BigInt(cover.periodIndex),
      drawn: cover.drawn,
      refused: cover.refused,
      usedInPeriod: cover.used,
      includedValue: cover.includedValue,
    });
    cover.drawn = 0n;
    cover.refused = 0n;
  };

  for (let n = 0; n < count; n++) {
    const buyerIndex = input.buyerIndex[n];
    const cover = covers[buyerIndex];
    if (!cover) continue;
    const maskBit = input.maskBits[input.modelIndex[n]];
    const servedAt = input.servedAt(n);
    if (maskBit === undefined || (cover.modelMask & maskBit) === 0n || servedAt < cover.startedAt || servedAt >= cover.paidUntil) continue;
    const periodIndex = Math.floor((servedAt - cover.startedAt) / cover.period);
    if (periodIndex !== cover.periodIndex) {
      flush(cover);
      cover.periodIndex = periodIndex;
      // A period's draws start from what settlement already drew in it; a new period from 0 (no rollover).
      cover.used = ledger.includedUsed.get(cover.subscriptionId)?.get(periodIndex) ?? 0n;
    }
    const cost = input.costs[n];
    const remaining = cover.includedValue > cover.used ? cover.includedValue - cover.used : 0n;
    const drawn = cost < remaining ? cost : remaining;
    cover.used += drawn;
    cover.drawn += drawn;
    result.included[n] = drawn;
    let covered = drawn;
    if (cover.refuse) {
      const excess = cost - drawn;
      cover.refused += excess;
      result.refused[n] = excess;
      covered = cost;
    }
    const buyer = result.buyers[buyerIndex];
    buyer.included += drawn;
    buyer.refused += covered - drawn;
    if (input.eligible[n]) buyer.fromEligible += covered;
    else buyer.fromOther += covered;
  }
  covers.forEach((cover) => cover && flush(cover));
  return result;
}

/** An `IncludedUsageDrawn` in one line, to compare what the rules produce with what the contract reported. */
export function describeIncludedDraw(draw: Omit<ExpectedIncludedDraw, "firstSequence" | "providerId"> & { firstSequence: bigint; providerId: number }): string {
  return `${draw.buyer} subscription ${draw.subscriptionId} provider ${draw.providerId} batch ${draw.firstSequence} period ${draw.periodIndex}: drew ${draw.drawn}, refused ${draw.refused}, ${draw.usedInPeriod} of ${draw.includedValue} used`;
}
