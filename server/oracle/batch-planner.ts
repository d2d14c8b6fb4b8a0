/**
 * What goes into the next batch: the longest run of waiting records that one `settleBatch` accepts, and
 * for each buyer the one credit plan settlement should burn (the batch names one plan per buyer).
 */
import { getAddress, type Address } from "viem";
import { MAX_BATCH_BUYERS, MAX_BATCH_MODEL_EPOCHS, MAX_SERVED_OFFSET } from "../chain/batch-limits";
import type { HeldCredits } from "../chain/marketplace-reader";
import { planCovers, planExpiryOrder } from "../chain/plan-eligibility";
import type { UsageRecord } from "../chain/usage-batch";

/**
 * The longest prefix of `records` (contiguous, in sequence order) of at most `maxRecords` that fits one
 * batch: a record that would need a 257th model epoch, a 65,537th buyer, or a serving time more than
 * 2^24 s from the batch's earliest starts the next batch instead.
 */
export function batchPrefix<R extends UsageRecord>(records: readonly R[], maxRecords: number): R[] {
  const buyers = new Set<string>();
  const epochs = new Set<string>();
  let minServed = Infinity;
  let maxServed = -Infinity;
  const out: R[] = [];
  for (const record of records) {
    if (out.length >= maxRecords) break;
    const buyer = record.buyer.toLowerCase();
    const epoch = `${record.modelId}:${record.priceEpoch}`;
    const low = Math.min(minServed, record.servedAt);
    const high = Math.max(maxServed, record.servedAt);
    const fits =
      (buyers.has(buyer) || buyers.size < MAX_BATCH_BUYERS) &&
      (epochs.has(epoch) || epochs.size < MAX_BATCH_MODEL_EPOCHS) &&
      high - low <= MAX_SERVED_OFFSET;
    if (!fits) break;
    buyers.add(buyer);
    epochs.add(epoch);
    minServed = low;
    maxServed = high;
    out.push(record);
  }
  return out;
}

export interface PlanChoiceInput {
  records: readonly (UsageRecord & { cost: bigint })[];
  /** Credits each buyer holds, per plan of the batch's provider. */
  holdings: ReadonlyMap<Address, readonly HeldCredits[]>;
  /** A model's bit in a plan's model mask (its index among its provider's models). */
  localIndexOf: (modelId: number) => number;
}

/**
 * Per buyer, the plan whose credits can pay for the most of its usage in this batch: the value the plan
 * covers (records of its models, served before it expires) capped by what the buyer holds of it. Ties go
 * to the plan that expires first, so credits are not left to lapse, then to the lower plan id. A buyer
 * with no useful plan is left out (plan 0: balance only).
 */
export function chooseCreditPlans(input: PlanChoiceInput): Map<Address, number> {
  const usageByBuyer = new Map<Address, (UsageRecord & { cost: bigint })[]>();
  for (const record of input.records) {
    const buyer = getAddress(record.buyer);
    const list = usageByBuyer.get(buyer) ?? [];
    list.push(record);
    usageByBuyer.set(buyer, list);
  }
  const choice = new Map<Address, number>();
  for (const [buyer, usage] of usageByBuyer) {
    let best: { planId: bigint; usable: bigint; expiresAt: number } | undefined;
    for (const held of input.holdings.get(buyer) ?? []) {
      const available = held.credits * held.plan.valuePerCredit + held.change;
      if (available === 0n) continue;
      let covered = 0n;
      for (const record of usage) {
        if (planCovers(held.plan, input.localIndexOf(record.modelId), record.servedAt)) covered += record.cost;
      }
      const usable = covered < available ? covered : available;
      if (usable === 0n) continue;
      const expiresAt = planExpiryOrder(held.plan);
      const better =
        !best ||
        usable > best.usable ||
        (usable === best.usable && (expiresAt < best.expiresAt || (expiresAt === best.expiresAt && held.plan.planId < best.planId)));
      if (better) best = { planId: held.plan.planId, usable, expiresAt };
    }
    if (best) choice.set(buyer, Number(best.planId));
  }
  return choice;
}
