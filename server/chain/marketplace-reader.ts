/**
 * The gateway's view of the chain: model prices, credit plans, the gateway key's authorization and
 * sequence, and a buyer's balance, credits, spending limit and subscription. Reads of one buyer are taken at one block,
 * together with the signer's `nextSequence`, so the gateway knows exactly which of its own records the
 * snapshot already includes (see `spendable.ts`).
 */
import type { Address, PublicClient } from "viem";
import { tollgateAbi, tollgateCreditsAbi, tollgateSubscriptionsAbi } from "./abis";
import type { ModelPrices } from "./pricing";
import { overageRuleOf, type SubscriptionPlanTerms } from "./subscription-plan";

export type { SubscriptionPlanTerms } from "./subscription-plan";

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


/** A buyer's subscription with the gateway's provider, at the snapshot's block. */
export interface SubscriptionStatus {
  subscriptionId: bigint;
  plan: SubscriptionPlanTerms;
  startedAt: number;
  paidPeriods: number;
  /** End of the last paid period: usage served at or after it is billed as without a subscription until renewed. */
  paidUntil: number;
  /** Renews at each period start; false once ended (its paid periods still cover late records). */
  active: boolean;
  /** Ends at `paidUntil` instead of renewing. */
  cancelled: boolean;
  /** The last paid period (the current one until its end): its index and the included value settlement drew from it. */
  periodIndex: number;
  includedUsed: bigint;
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
  /** The buyer's subscription to this provider (the latest, even if ended), or null if it never subscribed. */
  subscription: SubscriptionStatus | null;
  /** Fleet mode: every fleet signer's next sequence at this same block (lower-case address → sequence). */
  fleetNextSequences?: ReadonlyMap<string, bigint>;
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
  private subscriptionsAddress: Address | undefined;
  /** Subscription plans by id: immutable once defined, so read once. */
  private readonly subscriptionPlans = new Map<bigint, SubscriptionPlanTerms>();

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

  /** The subscriptions contract Tollgate deployed (`subscriptions()`). */
  async subscriptions(): Promise<Address> {
    this.subscriptionsAddress ??= await this.client.readContract({ address: this.tollgate, abi: tollgateAbi, functionName: "subscriptions" });
    return this.subscriptionsAddress;
  }

  async subscriptionPlan(planId: bigint): Promise<SubscriptionPlanTerms> {
    const cached = this.subscriptionPlans.get(planId);
    if (cached) return cached;
    const plan = await this.client.readContract({ address: await this.subscriptions(), abi: tollgateSubscriptionsAbi, functionName: "subscriptionPlanOf", args: [planId] });
    const terms: SubscriptionPlanTerms = {
      planId,
      providerId: plan.providerId,
      period: plan.period,
      price: plan.price,
      includedValue: plan.includedValue,
      modelMask: plan.modelMask,
      overage: overageRuleOf(plan.overage),
    };
    this.subscriptionPlans.set(planId, terms);
    return terms;
  }

  private async subscriptionStatus(
    sub: { id: bigint; planId: number; startedAt: number; paidPeriods: number; active: boolean; cancelled: boolean },
    blockNumber?: bigint,
  ): Promise<SubscriptionStatus> {
    // Renewal pays only periods that have started, so the last paid one is the current one until paidUntil.
    const periodIndex = sub.paidPeriods - 1;
    const [plan, includedUsed] = await Promise.all([
      this.subscriptionPlan(BigInt(sub.planId)),
      this.client.readContract({ address: await this.subscriptions(), abi: tollgateSubscriptionsAbi, functionName: "includedUsedOf", args: [sub.id, BigInt(periodIndex)], blockNumber }),
    ]);
    return {
      subscriptionId: sub.id,
      plan,
      startedAt: sub.startedAt,
      paidPeriods: sub.paidPeriods,
      paidUntil: sub.startedAt + sub.paidPeriods * plan.period,
      active: sub.active,
      cancelled: sub.cancelled,
      periodIndex,
      includedUsed,
    };
  }

  /** A buyer's spendable state at the latest block, with `signer`'s sequence at that same block. */
  async buyerSnapshot(buyer: Address, providerId: number, plans: readonly CreditPlanTerms[], signer: Address, fleetSigners?: readonly Address[]): Promise<BuyerSnapshot> {
    const blockNumber = await this.client.getBlockNumber({ cacheTime: 0 });
    const [credits, subscriptions] = await Promise.all([this.creditsToken(), this.subscriptions()]);
    const read = { address: this.tollgate, abi: tollgateAbi, blockNumber } as const;
    const [account, limit, signerView, balances, changes, sub, fleetViews] = await Promise.all([
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
      this.client.readContract({ address: subscriptions, abi: tollgateSubscriptionsAbi, functionName: "subscriptionOf", args: [buyer, providerId], blockNumber }),
      // Fleet mode: the other instances' sequences at the same block, so their settled usage is excluded exactly.
      fleetSigners && Promise.all(fleetSigners.map((other) => this.client.readContract({ ...read, functionName: "signerOf", args: [other] }))),
    ]);
    // A second round trip for subscribers only: the plan (cached) and the included value the last paid period used.
    const subscription = sub.id === 0n ? null : await this.subscriptionStatus(sub, blockNumber);
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
      subscription,
      ...(fleetSigners && { fleetNextSequences: new Map(fleetSigners.map((other, index) => [other.toLowerCase(), fleetViews![index].nextSequence])) }),
    };
  }
}
