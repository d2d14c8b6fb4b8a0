/**
 * The ledger the auditor rebuilds from events alone: every balance the contracts keep, and the registry
 * facts (providers, models, price epochs, plans, signers) settlement is checked against. One plain object
 * of maps, so a report or a test can read any part of it. Browser-safe.
 */
import type { Address } from "viem";
import type { CreditPlanTerms, PriceEpoch } from "../../../server/chain/marketplace-reader";
import type { SubscriptionPlanTerms } from "../../../server/chain/subscription-plan";

/** `SpendingLimits.SpendingLimit`, as settlement leaves it. */
export interface SpendingLimitState {
  limitPerPeriod: bigint;
  /** Seconds; a limit with period 0 does not exist. */
  period: number;
  windowStart: number;
  spentInWindow: bigint;
}

export interface BuyerLedger {
  buyer: Address;
  balance: bigint;
  pendingWithdrawal: bigint;
  withdrawableAt: bigint;
  /** ERC-1155 credits held, per plan id. A holder that never bought is here too when it received credits. */
  credits: Map<bigint, bigint>;
  /** Value left from the last credit burned, per plan id (`creditChangeOf`): in no event, rebuilt by replaying draws. */
  creditChange: Map<bigint, bigint>;
  /** Per provider id. */
  limits: Map<number, SpendingLimitState>;
}

export interface BondState {
  available: bigint;
  pending: bigint;
  withdrawableAt: bigint;
}

export interface ProviderLedger {
  providerId: number;
  owner: Address;
  payout: Address;
  /** Earnings not yet withdrawn. */
  earnings: bigint;
  bond: BondState;
  modelIds: number[];
}

export interface ModelState {
  modelId: number;
  providerId: number;
  localIndex: number;
  name: string;
  paused: boolean;
  /** Every epoch ever in force or scheduled, by index (a replaced, never-effective epoch is removed). */
  epochs: PriceEpoch[];
}

/** One change of a signer's authorization, in chain order. */
export interface SignerAuthorization {
  block: bigint;
  logIndex: number;
  providerId: number;
  authorized: boolean;
}

export interface SignerState {
  signer: Address;
  providerId: number;
  authorized: boolean;
  /** The sequence the next batch must start at, as the settled batches leave it. */
  nextSequence: bigint;
  history: SignerAuthorization[];
}


/** `ITollgateSubscriptions.Subscription` of one buyer with one provider, as its events leave it. */
export interface SubscriptionState {
  buyer: Address;
  providerId: number;
  id: bigint;
  planId: bigint;
  startedAt: number;
  /** Periods [0, paidPeriods) are paid: `paidUntil = startedAt + paidPeriods * period`. */
  paidPeriods: number;
  active: boolean;
  cancelled: boolean;
}

/** A beneficiary's unclaimed dispute awards (`disputeAwardOf`): refunds and penalties from provider bonds. */
export interface AwardState {
  amount: bigint;
  /** When `claimDisputeAwards` pays it: BOND_WITHDRAWAL_DELAY after the latest award. */
  claimableAt: bigint;
}

export interface Ledger {
  buyers: Map<Address, BuyerLedger>;
  /** Unclaimed dispute awards by beneficiary (an address that may never have deposited); a claim removes it. */
  awards: Map<Address, AwardState>;
  /** Every address ever awarded, claimed or not: the state check reads each one's bucket. */
  awardees: Set<Address>;
  providers: Map<number, ProviderLedger>;
  models: Map<number, ModelState>;
  plans: Map<bigint, CreditPlanTerms>;
  signers: Map<Address, SignerState>;
  subscriptionPlans: Map<bigint, SubscriptionPlanTerms>;
  /** The latest subscription of each buyer with each provider (`subscriptionKey`), ended or not, as the satellite keeps it. */
  subscriptions: Map<string, SubscriptionState>;
  /** Subscriptions ever started: the next one's id is this plus one. */
  subscriptionCount: bigint;
  /** Included value drawn per subscription id and period index (`includedUsedOf`), rebuilt by replaying settlement. */
  includedUsed: Map<bigint, Map<number, bigint>>;
  protocolFees: bigint;
  feeBps: bigint;
  /** Payment-token Transfer logs into and out of Tollgate, summed. */
  tokensIn: bigint;
  tokensOut: bigint;
  /**
   * What batches the auditor could not read drew from buyers it cannot name (their `buyerResults` sum).
   * The buyers' balances then disagree with the state by this much in total; conservation accounts for it.
   */
  unattributedDraws: bigint;
}

export function emptyLedger(): Ledger {
  return {
    buyers: new Map(),
    awards: new Map(),
    awardees: new Set(),
    providers: new Map(),
    models: new Map(),
    plans: new Map(),
    signers: new Map(),
    subscriptionPlans: new Map(),
    subscriptions: new Map(),
    subscriptionCount: 0n,
    includedUsed: new Map(),
    protocolFees: 0n,
    feeBps: 0n,
    tokensIn: 0n,
    tokensOut: 0n,
    unattributedDraws: 0n,
  };
}

export function buyerOf(ledger: Ledger, buyer: Address): BuyerLedger {
  let found = ledger.buyers.get(buyer);
  if (!found) {
    found = { buyer, balance: 0n, pendingWithdrawal: 0n, withdrawableAt: 0n, credits: new Map(), creditChange: new Map(), limits: new Map() };
    ledger.buyers.set(buyer, found);
  }
  return found;
}

export function subscriptionKey(buyer: Address, providerId: number): string {
  return `${buyer}:${providerId}`;
}

/** End of a subscription's paid periods: records served before it (and from `startedAt`) may draw included usage. */
export function paidUntil(subscription: SubscriptionState, plan: SubscriptionPlanTerms): number {
  return subscription.startedAt + subscription.paidPeriods * plan.period;
}

export function includedUsedOf(ledger: Ledger, subscriptionId: bigint, periodIndex: number): bigint {
  return ledger.includedUsed.get(subscriptionId)?.get(periodIndex) ?? 0n;
}

/** What the vault owes by the ledger: DESIGN invariant 1's right-hand side, bonds and unclaimed dispute awards included. */
export function ledgerOwed(ledger: Ledger): {
  buyerBalances: bigint;
  pendingWithdrawals: bigint;
  earnings: bigint;
  protocolFees: bigint;
  bonds: bigint;
  disputeAwards: bigint;
  total: bigint;
} {
  let buyerBalances = 0n;
  let pendingWithdrawals = 0n;
  for (const account of ledger.buyers.values()) {
    buyerBalances += account.balance;
    pendingWithdrawals += account.pendingWithdrawal;
  }
  let earnings = 0n;
  let bonds = 0n;
  for (const provider of ledger.providers.values()) {
    earnings += provider.earnings;
    bonds += provider.bond.available + provider.bond.pending;
  }
  let disputeAwards = 0n;
  for (const award of ledger.awards.values()) disputeAwards += award.amount;
  const protocolFees = ledger.protocolFees;
  const total = buyerBalances + pendingWithdrawals + earnings + protocolFees + bonds + disputeAwards;
  return { buyerBalances, pendingWithdrawals, earnings, protocolFees, bonds, disputeAwards, total };
}
