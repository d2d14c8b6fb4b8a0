/**
 * A buyer's subscription with a provider as the chain holds it at one block: the plan, when it started, how far
 * it is paid (`paidUntil`), whether it renews, was cancelled (ends at `paidUntil`) or has ended, and the current
 * paid period with the included usage settlement has drawn from it on-chain (`includedUsedOf`). Usage the gateway
 * served but the oracle has not settled yet is not in `includedUsed`: the chain only knows what was settled.
 * Unused included usage does not roll over. Browser-safe: viem only.
 */
import type { Address } from "viem";
import { tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { subscriptionsAddress } from "../internal/subscriptions-address";
import type { TollgateClient } from "../tollgate-client";
import type { SubscriptionOverage } from "./define-subscription-plan";
import { overageOf } from "./get-subscription-plans";

export interface GetSubscriptionParameters {
  buyer: Address;
  providerId: number;
}

/**
 * - `active`: paid for the current period; renews at `paidUntil` from the vault balance.
 * - `renewal-due`: its paid periods are over and nobody has called `renew` yet (the next call charges or ends it).
 * - `cancelled`: covered until `paidUntil`, then it ends; nothing is refunded.
 * - `ended`: cancelled and over, or a renewal the balance could not pay.
 */
export type SubscriptionStatus = "active" | "renewal-due" | "cancelled" | "ended";

export interface SubscriptionPeriod {
  index: number;
  /** [start, end) in unix seconds. */
  start: number;
  end: number;
  /** Included value settlement has drawn in this period so far, and what is left of it (forfeited at `end`). */
  includedUsed: bigint;
  includedRemaining: bigint;
}

export interface SubscriptionInfo {
  subscriptionId: bigint;
  planId: bigint;
  providerId: number;
  plan: { periodSeconds: number; price: bigint; includedValue: bigint; modelMask: bigint; overage: SubscriptionOverage };
  startedAt: number;
  paidPeriods: number;
  paidUntil: number;
  cancelled: boolean;
  status: SubscriptionStatus;
  /** The paid period chain time falls in, or null when none does (renewal due, or ended). */
  currentPeriod: SubscriptionPeriod | null;
  /** Always false: what a period leaves unused is forfeited. */
  rollsOver: false;
}

export interface GetSubscriptionReturnType {
  /** Null when the buyer never subscribed to this provider. */
  subscription: SubscriptionInfo | null;
  blockNumber: bigint;
  chainTime: number;
}
export type GetSubscriptionErrorType = Error;

export async function getSubscription(client: Pick<TollgateClient, "public" | "contracts">, { buyer, providerId }: GetSubscriptionParameters): Promise<GetSubscriptionReturnType> {
  const address = await subscriptionsAddress(client);
  const block = await client.public.getBlock();
  const blockNumber = block.number;
  const chainTime = Number(block.timestamp);
  const sub = await client.public.readContract({ address, abi: tollgateSubscriptionsAbi, functionName: "subscriptionOf", args: [buyer, providerId], blockNumber });
  if (sub.id === 0n) return { subscription: null, blockNumber, chainTime };
  const plan = await client.public.readContract({ address, abi: tollgateSubscriptionsAbi, functionName: "subscriptionPlanOf", args: [BigInt(sub.planId)], blockNumber });
  const period = Number(plan.period);
  const startedAt = Number(sub.startedAt);
  const paidPeriods = Number(sub.paidPeriods);
  const paidUntil = startedAt + paidPeriods * period;
  const inPaidPeriod = chainTime >= startedAt && chainTime < paidUntil;
  let currentPeriod: SubscriptionPeriod | null = null;
  if (inPaidPeriod) {
    const index = Math.floor((chainTime - startedAt) / period);
    const includedUsed = await client.public.readContract({ address, abi: tollgateSubscriptionsAbi, functionName: "includedUsedOf", args: [sub.id, BigInt(index)], blockNumber });
    const start = startedAt + index * period;
    currentPeriod = { index, start, end: start + period, includedUsed, includedRemaining: includedUsed < plan.includedValue ? plan.includedValue - includedUsed : 0n };
  }
  // A cancelled subscription past its end has ended even before anyone calls `renew` to say so.
  const status: SubscriptionStatus = !sub.active || (sub.cancelled && !inPaidPeriod) ? "ended" : sub.cancelled ? "cancelled" : inPaidPeriod ? "active" : "renewal-due";
  return {
    subscription: {
      subscriptionId: sub.id,
      planId: BigInt(sub.planId),
      providerId,
      plan: { periodSeconds: period, price: plan.price, includedValue: plan.includedValue, modelMask: plan.modelMask, overage: overageOf(plan.overage) },
      startedAt,
      paidPeriods,
      paidUntil,
      cancelled: sub.cancelled,
      status,
      currentPeriod,
      rollsOver: false,
    },
    blockNumber,
    chainTime,
  };
}
