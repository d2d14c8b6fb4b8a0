/**
 * Everything the chain knows about what a buyer holds: wallet tokens, vault balance, pending withdrawal and
 * when it can be executed, credits per plan with their change, spending limits per provider.
 */
import type { Address } from "viem";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi } from "../../server/chain/abis";
import { chainTime } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface GetBuyerPositionParameters {
  buyer: Address;
  /** Only these plans (default: every plan of the deployment). */
  planIds?: readonly bigint[];
  /** Only these providers' spending limits (default: every provider). */
  providerIds?: readonly number[];
  blockNumber?: bigint;
}
export interface CreditHolding {
  planId: bigint;
  providerId: number;
  credits: bigint;
  /** Value left of the last credit burned (`creditChangeOf`). */
  change: bigint;
  pricePerCredit: bigint;
  valuePerCredit: bigint;
  /** Unix seconds; 0: never. */
  expiresAt: number;
}
export interface SpendingLimitHolding {
  providerId: number;
  limitPerPeriod: bigint;
  periodSeconds: number;
  windowStart: number;
  spentInWindow: bigint;
}
export interface GetBuyerPositionReturnType {
  buyer: Address;
  wallet: bigint;
  balance: bigint;
  pendingWithdrawal: bigint;
  withdrawableAt: bigint;
  /** A pending withdrawal whose delay has passed. */
  withdrawableNow: boolean;
  chainTime: bigint;
  /** Plans where the buyer holds credits or change. */
  credits: CreditHolding[];
  /** Providers the buyer has set a limit for. */
  spendingLimits: SpendingLimitHolding[];
}
export type GetBuyerPositionErrorType = Error;

/** Reads in groups, so a deployment with many plans or providers does not fire thousands of requests at once. */
async function inChunks<T, R>(items: readonly T[], size: number, read: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(read))));
  return results;
}

export async function getBuyerPosition(client: TollgateClient, parameters: GetBuyerPositionParameters): Promise<GetBuyerPositionReturnType> {
  const { buyer, blockNumber } = parameters;
  const { tollgate, credits, paymentToken } = client.contracts;
  const read = { address: tollgate, abi: tollgateAbi, blockNumber } as const;
  const [wallet, account, now, planCount, providerCount] = await Promise.all([
    client.public.readContract({ address: paymentToken, abi: testUsdAbi, functionName: "balanceOf", args: [buyer], blockNumber }),
    client.public.readContract({ ...read, functionName: "accountOf", args: [buyer] }),
    chainTime(client),
    parameters.planIds ? undefined : client.public.readContract({ ...read, functionName: "creditPlanCount" }),
    parameters.providerIds ? undefined : client.public.readContract({ ...read, functionName: "providerCount" }),
  ]);
  const planIds = parameters.planIds ?? Array.from({ length: Number(planCount) }, (_, i) => BigInt(i + 1));
  const held = await inChunks(planIds, 100, async (planId) => {
    const [count, change] = await Promise.all([
      client.public.readContract({ address: credits, abi: tollgateCreditsAbi, functionName: "balanceOf", args: [buyer, planId], blockNumber }),
      client.public.readContract({ ...read, functionName: "creditChangeOf", args: [buyer, planId] }),
    ]);
    return { planId, count, change };
  });
  const holdings = await Promise.all(
    held
      .filter((entry) => entry.count > 0n || entry.change > 0n)
      .map(async ({ planId, count, change }): Promise<CreditHolding> => {
        const plan = await client.public.readContract({ ...read, functionName: "creditPlanOf", args: [planId] });
        return { planId, providerId: plan.providerId, credits: count, change, pricePerCredit: plan.pricePerCredit, valuePerCredit: plan.valuePerCredit, expiresAt: plan.expiresAt };
      }),
  );
  const providerIds = parameters.providerIds ?? Array.from({ length: Number(providerCount) }, (_, i) => i + 1);
  const limits = await inChunks(providerIds, 100, async (providerId) => ({
    providerId,
    limit: await client.public.readContract({ ...read, functionName: "spendingLimitOf", args: [buyer, providerId] }),
  }));
  return {
    buyer,
    wallet,
    balance: account.balance,
    pendingWithdrawal: account.pendingWithdrawal,
    withdrawableAt: account.withdrawableAt,
    withdrawableNow: account.pendingWithdrawal > 0n && account.withdrawableAt <= now,
    chainTime: now,
    credits: holdings,
    spendingLimits: limits
      .filter((entry) => entry.limit.period !== 0)
      .map(({ providerId, limit }) => ({
        providerId,
        limitPerPeriod: limit.limitPerPeriod,
        periodSeconds: limit.period,
        windowStart: limit.windowStart,
        spentInWindow: limit.spentInWindow,
      })),
  };
}
