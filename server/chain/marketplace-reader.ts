/**
 * The gateway's view of the chain: model prices, credit plans, the gateway key's authorization and
 * sequence, and a buyer's balance, credits and spending limit. Reads of one buyer are taken at one block,
 * together with the signer's `nextSequence`, so the gateway knows exactly which of its own records the
 * snapshot already includes (see `spendable.ts`).
 */
import type { Address, PublicClient } from "viem";
import { tollgateAbi, tollgateCreditsAbi } from "./abis";
import type { ModelPrices } from "./pricing";

export interface PriceEpoch extends ModelPrices {
  index: number;
  effectiveFrom: number;
}

export interface ModelTerms {
  modelId: number;
  providerId: number;
  /** The model's index among its provider's models: its bit in a credit plan's model mask. */
  localIndex: number;
  paused: boolean;
  epochs: PriceEpoch[];
}

export interface CreditPlanTerms {
  planId: bigint;
  providerId: number;
  /** Unix seconds; usage served at or after it is not covered. 0: never expires. */
  expiresAt: number;
  pricePerCredit: bigint;
  valuePerCredit: bigint;
  modelMask: bigint;
}

export interface SignerStatus {
  providerId: number;
  authorized: boolean;
  nextSequence: bigint;
}

export interface HeldCredits {
  plan: CreditPlanTerms;
  credits: bigint;
  /** Unused value of the last credit burned, spent before the next credit (`creditChangeOf`). */
  change: bigint;
}

export interface BuyerSnapshot {
  buyer: Address;
  blockNumber: bigint;
  /** The gateway signer's next sequence at this block: records from it on are not yet in these numbers. */
  signerNextSequence: bigint;
  balance: bigint;
  pendingWithdrawal: bigint;
  withdrawableAt: number;
  credits: HeldCredits[];
  spendingLimit: { limitPerPeriod: bigint; period: number; windowStart: number; spentInWindow: bigint };
  /** Wall-clock milliseconds when read, for cache expiry. */
  readAt: number;
}

/** The epoch in force at `servedAt`: the last one whose `effectiveFrom` is not after it. */
export function priceEpochAt(epochs: readonly PriceEpoch[], servedAt: number): PriceEpoch | undefined {
  let found: PriceEpoch | undefined;
  for (const epoch of epochs) {
    if (epoch.effectiveFrom <= servedAt) found = epoch;
    else break;
  }
  return found;
}

export class MarketplaceReader {
  private creditsAddress: Address | undefined;

  constructor(
    readonly client: PublicClient,
    readonly tollgate: Address,
  ) {}

  async signerStatus(signer: Address, blockNumber?: bigint): Promise<SignerStatus> {
    const view = await this.client.readContract({ address: this.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer], blockNumber });
    return { providerId: view.providerId, authorized: view.authorized, nextSequence: view.nextSequence };
  }

  /** At `blockNumber` when given (a page reading several things at one block), else the latest. */
  async modelTerms(modelId: number, blockNumber?: bigint): Promise<ModelTerms> {
    const view = await this.client.readContract({ address: this.tollgate, abi: tollgateAbi, functionName: "modelOf", args: [modelId], blockNumber });
    const count = Number(view.epochCount);
    const epochs = await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const epoch = await this.client.readContract({
          address: this.tollgate,
          abi: tollgateAbi,
          functionName: "priceEpochOf",
          args: [modelId, BigInt(index)],
          blockNumber,
        });
        return { index, effectiveFrom: epoch.effectiveFrom, input: epoch.input, cachedInput: epoch.cachedInput, output: epoch.output };
      }),
    );
    return { modelId, providerId: view.providerId, localIndex: view.localIndex, paused: view.paused, epochs };
  }

  /** Every credit plan of `providerId`. Plans are append-only, so callers may cache and read only new ids. */
  async creditPlans(providerId: number, fromPlanId = 1n): Promise<CreditPlanTerms[]> {
    const count = await this.client.readContract({ address: this.tollgate, abi: tollgateAbi, functionName: "creditPlanCount" });
    const plans: CreditPlanTerms[] = [];
    for (let planId = fromPlanId; planId <= count; planId++) {
      const plan = await this.client.readContract({ address: this.tollgate, abi: tollgateAbi, functionName: "creditPlanOf", args: [planId] });
      if (plan.providerId !== providerId) continue;
      plans.push({
        planId,
        providerId: plan.providerId,
        expiresAt: plan.expiresAt,
        pricePerCredit: plan.pricePerCredit,
        valuePerCredit: plan.valuePerCredit,
        modelMask: plan.modelMask,
      });
    }
    return plans;
  }

  async creditsToken(): Promise<Address> {
    this.creditsAddress ??= await this.client.readContract({ address: this.tollgate, abi: tollgateAbi, functionName: "credits" });
    return this.creditsAddress;
  }

  /** A buyer's spendable state at the latest block, with `signer`'s sequence at that same block. */
  async buyerSnapshot(buyer: Address, providerId: number, plans: readonly CreditPlanTerms[], signer: Address): Promise<BuyerSnapshot> {
    const blockNumber = await this.client.getBlockNumber({ cacheTime: 0 });
    const credits = await this.creditsToken();
    const read = { address: this.tollgate, abi: tollgateAbi, blockNumber } as const;
    const [account, limit, signerView, balances, changes] = await Promise.all([
      this.client.readContract({ ...read, functionName: "accountOf", args: [buyer] }),
      this.client.readContract({ ...read, functionName: "spendingLimitOf", args: [buyer, providerId] }),
      this.client.readContract({ ...read, functionName: "signerOf", args: [signer] }),
      plans.length === 0
        ? Promise.resolve([] as readonly bigint[])
        : this.client.readContract({
            address: credits,
            abi: tollgateCreditsAbi,
            functionName: "balanceOfBatch",
            args: [plans.map(() => buyer), plans.map((plan) => plan.planId)],
            blockNumber,
          }),
      Promise.all(plans.map((plan) => this.client.readContract({ ...read, functionName: "creditChangeOf", args: [buyer, plan.planId] }))),
    ]);
    return {
      buyer,
      blockNumber,
      signerNextSequence: signerView.nextSequence,
      balance: account.balance,
      pendingWithdrawal: account.pendingWithdrawal,
      withdrawableAt: Number(account.withdrawableAt),
      credits: plans.map((plan, index) => ({ plan, credits: balances[index], change: changes[index] })),
      spendingLimit: {
        limitPerPeriod: limit.limitPerPeriod,
        period: limit.period,
        windowStart: limit.windowStart,
        spentInWindow: limit.spentInWindow,
      },
      readAt: Date.now(),
    };
  }
}
