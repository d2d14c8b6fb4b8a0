/**
 * A plain TypeScript model of Tollgate's money, credits, prices, limits and signers, written from the
 * interfaces' NatSpec (and the documented drawing rules of `UsageSettlement._drawTally`). The property test
 * runs every random operation against it first: it says whether the operation must revert (and with which
 * named error) and, if not, what the state must become. The chain must then agree exactly.
 *
 * Nothing here reads the chain: block times are passed in by the caller, who fixes them in advance.
 */

export const BPS = 10_000n;
export const TOKENS_PER_PRICE = 1_000_000n;
export const MAX_PRICE = (1n << 72n) - 1n;
export const MAX_UINT96 = (1n << 96n) - 1n;
export const MAX_LIMIT_PERIOD = 366 * 24 * 3600;
export const MAX_ACCOUNT_BALANCE = (1n << 104n) - 1n;
export const MAX_UINT256 = (1n << 256n) - 1n;
export const BOND_WITHDRAWAL_DELAY = 15 * 24 * 3600;
export const DISPUTE_WINDOW = 14 * 24 * 3600;
export const DISPUTE_PENALTY_BPS = 1_000n;

export interface Prices {
  input: bigint;
  cachedInput: bigint;
  output: bigint;
}

export interface Epoch extends Prices {
  from: number;
}

export interface ModelInfo {
  providerId: number;
  localIndex: number;
  epochs: Epoch[];
}

export interface PlanInfo {
  providerId: number;
  /** 0 = never expires. */
  expiresAt: number;
  price: bigint;
  value: bigint;
  mask: bigint;
}

export interface ProviderInfo {
  owner: string;
  payout: string;
}

export interface AccountState {
  balance: bigint;
  pending: bigint;
  withdrawableAt: number;
}

export interface LimitState {
  limit: bigint;
  /** 0 = no limit. */
  period: number;
  windowStart: number;
  spent: bigint;
}

export interface BondState {
  available: bigint;
  pending: bigint;
  withdrawableAt: number;
}

/** A beneficiary's unclaimed dispute awards (`disputeAwardOf`). */
export interface AwardState {
  amount: bigint;
  claimableAt: number;
}

export interface SignerState {
  providerId: number;
  authorized: boolean;
  nextSequence: bigint;
  /** Fraud by it was proven: unauthorized for good. */
  compromised?: boolean;
}

/** A revert the model expects: the named custom error, raised by `on` (the ERC-1155 credits may live in Tollgate itself or in its own token). */
export interface Revert {
  on: "tollgate" | "token" | "credits" | "subscriptions";
  error: string;
}

/** One record as the chain will decode it. */
export interface ModelRecord {
  buyer: string;
  planId: number;
  modelId: number;
  epochIndex: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  servedAt: number;
}

export interface BuyerResult {
  buyer: string;
  fromBalance: bigint;
  shortfall: bigint;
  creditsBurned: bigint;
}

export interface SettlementResult {
  providerId: number;
  firstSequence: bigint;
  recordCount: number;
  totalCost: bigint;
  providerEarnings: bigint;
  protocolFee: bigint;
  totalShortfall: bigint;
  /** In buyer-table order (ascending address). */
  buyers: BuyerResult[];
}

/** A subscription plan (`ITollgateSubscriptions.SubscriptionPlan`); `refuse` is the REFUSE overage rule. */
export interface SubscriptionPlanInfo {
  providerId: number;
  period: number;
  price: bigint;
  included: bigint;
  mask: bigint;
  refuse: boolean;
}

/** A buyer's subscription to one provider, as `subscriptionOf` returns it. */
export interface SubscriptionState {
  id: number;
  planId: number;
  startedAt: number;
  paidPeriods: number;
  active: boolean;
  cancelled: boolean;
}

export const MAX_RENEWALS_PER_CALL = 24;

const key = (a: string) => a.toLowerCase();
const min = (a: bigint, b: bigint) => (a < b ? a : b);

export function feeOn(amount: bigint, feeBps: bigint): bigint {
  return (amount * feeBps + BPS - 1n) / BPS;
}

/** ceil(((input - cached) * inputPrice + cached * cachedPrice + output * outputPrice) / 1e6) */
export function recordCost(r: Pick<ModelRecord, "inputTokens" | "cachedInputTokens" | "outputTokens">, p: Prices) {
  const input = BigInt(r.inputTokens);
  const cached = BigInt(r.cachedInputTokens);
  const weighted = (input - cached) * p.input + cached * p.cachedInput + BigInt(r.outputTokens) * p.output;
  return (weighted + TOKENS_PER_PRICE - 1n) / TOKENS_PER_PRICE;
}

export class MarketModel {
  readonly accounts = new Map<string, AccountState>();
  readonly wallets = new Map<string, bigint>();
  /** ERC-20 allowances given to the vault; MAX_UINT256 is unlimited (never spent down). */
  readonly allowances = new Map<string, bigint>();
  /** Whether the owner paused settlement and credit purchases. */
  paused = false;
  /** Counts of what settlements exercised, for the test's report. */
  readonly trace = { limited: 0, capped: 0, burns: 0, extraBurns: 0, fromPending: 0, eligibleRecords: 0, laterEpochs: 0, includedDraws: 0, refusedRecords: 0, renewals: 0, subscriptionsEnded: 0 };
  readonly credits = new Map<string, bigint>();
  /** Value left from a partly used credit, per holder and plan (`creditChangeOf`). */
  readonly creditChange = new Map<string, bigint>();
  readonly earnings = new Map<number, bigint>();
  fees = 0n;
  readonly providers = new Map<number, ProviderInfo>();
  readonly models = new Map<number, ModelInfo>();
  readonly plans = new Map<number, PlanInfo>();
  readonly limits = new Map<string, LimitState>();
  readonly signers = new Map<string, SignerState>();
  readonly bonds = new Map<number, BondState>();
  /** Unclaimed dispute awards per beneficiary. */
  readonly awards = new Map<string, AwardState>();
  /** `signer:sequence` of every fraud proven. */
  readonly proven = new Set<string>();
  readonly subscriptionPlans = new Map<number, SubscriptionPlanInfo>();
  /** By `buyer:providerId`. */
  readonly subscriptions = new Map<string, SubscriptionState>();
  /** Included value drawn, by `subscriptionId:periodIndex`. */
  readonly includedUsed = new Map<string, bigint>();
  subscriptionCount = 0;

  constructor(
    readonly feeBps: bigint,
    readonly withdrawalDelay: number,
    readonly priceNotice: number,
    readonly treasury: string,
  ) {}

  // ---------- reads ----------

  account(a: string): AccountState {
    let acct = this.accounts.get(key(a));
    if (!acct) {
      acct = { balance: 0n, pending: 0n, withdrawableAt: 0 };
      this.accounts.set(key(a), acct);
    }
    return acct;
  }

  wallet(a: string): bigint {
    return this.wallets.get(key(a)) ?? 0n;
  }

  private addWallet(a: string, delta: bigint) {
    this.wallets.set(key(a), this.wallet(a) + delta);
  }

  creditChangeOf(a: string, planId: number): bigint {
    return this.creditChange.get(`${key(a)}:${planId}`) ?? 0n;
  }

  creditsOf(a: string, planId: number): bigint {
    return this.credits.get(`${key(a)}:${planId}`) ?? 0n;
  }

  private addCredits(a: string, planId: number, delta: bigint) {
    this.credits.set(`${key(a)}:${planId}`, this.creditsOf(a, planId) + delta);
  }

  earningsOf(providerId: number): bigint {
    return this.earnings.get(providerId) ?? 0n;
  }

  limitOf(a: string, providerId: number): LimitState {
    return this.limits.get(`${key(a)}:${providerId}`) ?? { limit: 0n, period: 0, windowStart: 0, spent: 0n };
  }

  signer(a: string): SignerState {
    return this.signers.get(key(a)) ?? { providerId: 0, authorized: false, nextSequence: 0n };
  }

  /** Index of the epoch in force at `t`: the last one starting at or before it. */
  epochAt(modelId: number, t: number): number {
    const epochs = this.models.get(modelId)!.epochs;
    let idx = -1;
    epochs.forEach((e, i) => {
      if (e.from <= t) idx = i;
    });
    return idx;
  }

  // ---------- vault ----------

  allowanceOf(owner: string): bigint {
    return this.allowances.get(key(owner)) ?? 0n;
  }

  /** An EIP-2612 permit of `value` for the vault, applied if it was valid. */
  permit(owner: string, value: bigint) {
    this.allowances.set(key(owner), value);
  }

  /** Checks a `transferFrom(from, vault, amount)`; returns a function that applies it. */
  private pull(from: string, amount: bigint): Revert | (() => void) {
    const allowance = this.allowanceOf(from);
    if (allowance < amount) return { on: "token", error: "ERC20InsufficientAllowance" };
    if (this.wallet(from) < amount) return { on: "token", error: "ERC20InsufficientBalance" };
    return () => {
      if (allowance !== MAX_UINT256) this.allowances.set(key(from), allowance - amount);
      this.addWallet(from, -amount);
    };
  }

  setPaused(caller: string, owner: string, paused: boolean): Revert | null {
    if (key(caller) !== key(owner)) return { on: "tollgate", error: "OwnableUnauthorizedAccount" };
    if (paused && this.paused) return { on: "tollgate", error: "EnforcedPause" };
    if (!paused && !this.paused) return { on: "tollgate", error: "ExpectedPause" };
    this.paused = paused;
    return null;
  }

  deposit(payer: string, buyer: string, amount: bigint): Revert | null {
    if (amount === 0n) return { on: "tollgate", error: "VaultZeroAmount" };
    const pulled = this.pull(payer, amount);
    if (typeof pulled !== "function") return pulled;
    const acct = this.account(buyer);
    if (acct.balance + amount > MAX_ACCOUNT_BALANCE) return { on: "tollgate", error: "VaultBalanceOverflow" };
    pulled();
    acct.balance += amount;
    return null;
  }

  // ---------- bonds and disputes ----------

  bond(providerId: number): BondState {
    let bond = this.bonds.get(providerId);
    if (!bond) {
      bond = { available: 0n, pending: 0n, withdrawableAt: 0 };
      this.bonds.set(providerId, bond);
    }
    return bond;
  }

  private providerOwnedBy(caller: string, providerId: number): Revert | ProviderInfo {
    const p = this.providers.get(providerId);
    if (!p) return { on: "tollgate", error: "RegistryUnknownProvider" };
    if (key(p.owner) !== key(caller)) return { on: "tollgate", error: "RegistryNotProviderOwner" };
    return p;
  }

  postBond(payer: string, providerId: number, amount: bigint): Revert | null {
    if (!this.providers.has(providerId)) return { on: "tollgate", error: "RegistryUnknownProvider" };
    if (amount === 0n) return { on: "tollgate", error: "BondZeroAmount" };
    const pulled = this.pull(payer, amount);
    if (typeof pulled !== "function") return pulled;
    const bond = this.bond(providerId);
    if (bond.available + bond.pending + amount > MAX_ACCOUNT_BALANCE) return { on: "tollgate", error: "BondOverflow" };
    pulled();
    bond.available += amount;
    return null;
  }

  requestBondWithdrawal(now: number, caller: string, providerId: number, amount: bigint): Revert | null {
    const owned = this.providerOwnedBy(caller, providerId);
    if ("error" in owned) return owned;
    if (amount === 0n) return { on: "tollgate", error: "BondZeroAmount" };
    const bond = this.bond(providerId);
    if (amount > bond.available) return { on: "tollgate", error: "BondInsufficient" };
    bond.available -= amount;
    bond.pending += amount;
    bond.withdrawableAt = now + BOND_WITHDRAWAL_DELAY;
    return null;
  }

  cancelBondWithdrawal(caller: string, providerId: number): Revert | null {
    const owned = this.providerOwnedBy(caller, providerId);
    if ("error" in owned) return owned;
    const bond = this.bond(providerId);
    if (bond.withdrawableAt === 0) return { on: "tollgate", error: "BondNoPendingWithdrawal" };
    bond.available += bond.pending;
    bond.pending = 0n;
    bond.withdrawableAt = 0;
    return null;
  }

  withdrawBond(now: number, caller: string, providerId: number): Revert | bigint {
    const owned = this.providerOwnedBy(caller, providerId);
    if ("error" in owned) return owned;
    const bond = this.bond(providerId);
    if (bond.withdrawableAt === 0) return { on: "tollgate", error: "BondNoPendingWithdrawal" };
    if (now < bond.withdrawableAt) return { on: "tollgate", error: "BondWithdrawalNotReady" };
    const amount = bond.pending;
    bond.pending = 0n;
    bond.withdrawableAt = 0;
    this.addWallet(owned.payout, amount);
    return amount;
  }

  /**
   * Two different receipts of `signer` for `sequence`, the later served at `servedAt`, proven at `now`: the
   * penalty (10% of the bond) goes to `beneficiary`'s award bucket (claimable BOND_WITHDRAWAL_DELAY from now, the
   * clock restarted) and the signer is compromised. Returns the penalty.
   */
  proveEquivocation(now: number, signer: string, sequence: bigint, servedAt: number, beneficiary: string): Revert | bigint {
    const s = this.signer(signer);
    if (s.providerId === 0) return { on: "tollgate", error: "DisputeUnknownSigner" };
    if (now > servedAt + DISPUTE_WINDOW) return { on: "tollgate", error: "DisputeWindowClosed" };
    if (this.proven.has(`${key(signer)}:${sequence}`)) return { on: "tollgate", error: "DisputeAlreadyProven" };
    const bond = this.bond(s.providerId);
    const penalty = ((bond.available + bond.pending) * DISPUTE_PENALTY_BPS) / BPS;
    const fromAvailable = min(penalty, bond.available);
    bond.available -= fromAvailable;
    bond.pending -= penalty - fromAvailable;
    // A zero penalty (an empty bond) awards nothing, so it leaves the clock alone.
    if (penalty !== 0n) this.awards.set(key(beneficiary), { amount: this.awardOf(beneficiary).amount + penalty, claimableAt: now + BOND_WITHDRAWAL_DELAY });
    this.proven.add(`${key(signer)}:${sequence}`);
    this.signers.set(key(signer), { ...s, authorized: false, compromised: true });
    return penalty;
  }

  awardOf(a: string): AwardState {
    return this.awards.get(key(a)) ?? { amount: 0n, claimableAt: 0 };
  }

  /** Pays `caller` its whole award bucket in tokens once claimable (paused or not). Returns what it paid. */
  claimDisputeAwards(now: number, caller: string): Revert | bigint {
    const { amount, claimableAt } = this.awardOf(caller);
    if (amount === 0n) return { on: "tollgate", error: "DisputeNoAward" };
    if (now < claimableAt) return { on: "tollgate", error: "DisputeAwardNotReady" };
    this.awards.delete(key(caller));
    this.addWallet(caller, amount);
    return amount;
  }

  requestWithdrawal(now: number, buyer: string, amount: bigint): Revert | null {
    if (amount === 0n) return { on: "tollgate", error: "VaultZeroAmount" };
    const acct = this.account(buyer);
    if (amount > acct.balance) return { on: "tollgate", error: "VaultInsufficientBalance" };
    if (acct.pending + amount > MAX_ACCOUNT_BALANCE) return { on: "tollgate", error: "VaultBalanceOverflow" };
    acct.balance -= amount;
    acct.pending += amount;
    acct.withdrawableAt = now + this.withdrawalDelay;
    return null;
  }

  cancelWithdrawal(buyer: string): Revert | null {
    const acct = this.account(buyer);
    if (acct.pending === 0n) return { on: "tollgate", error: "VaultNoPendingWithdrawal" };
    acct.balance += acct.pending;
    acct.pending = 0n;
    acct.withdrawableAt = 0;
    return null;
  }

  /** Returns the amount withdrawn, or the expected revert. */
  withdraw(now: number, buyer: string): Revert | bigint {
    const acct = this.account(buyer);
    if (acct.withdrawableAt === 0) return { on: "tollgate", error: "VaultNoPendingWithdrawal" };
    if (now < acct.withdrawableAt) return { on: "tollgate", error: "VaultWithdrawalNotReady" };
    const amount = acct.pending;
    acct.pending = 0n;
    acct.withdrawableAt = 0;
    this.addWallet(buyer, amount);
    return amount;
  }

  withdrawEarnings(caller: string, providerId: number): Revert | bigint {
    const p = this.providers.get(providerId);
    if (!p) return { on: "tollgate", error: "RegistryUnknownProvider" };
    if (key(p.owner) !== key(caller)) return { on: "tollgate", error: "RegistryNotProviderOwner" };
    const amount = this.earningsOf(providerId);
    if (amount === 0n) return { on: "tollgate", error: "VaultNoEarnings" };
    this.earnings.set(providerId, 0n);
    this.addWallet(p.payout, amount);
    return amount;
  }

  collectProtocolFees(): Revert | bigint {
    const amount = this.fees;
    if (amount === 0n) return { on: "tollgate", error: "VaultNoProtocolFees" };
    this.fees = 0n;
    this.addWallet(this.treasury, amount);
    return amount;
  }

  private creditEarnings(providerId: number, amount: bigint) {
    const fee = feeOn(amount, this.feeBps);
    this.earnings.set(providerId, this.earningsOf(providerId) + amount - fee);
    this.fees += fee;
  }

  // ---------- credits ----------

  private quote(now: number, planId: number, amount: bigint): Revert | { plan: PlanInfo; price: bigint } {
    if (this.paused) return { on: "tollgate", error: "EnforcedPause" };
    const plan = this.plans.get(planId);
    if (!plan) return { on: "tollgate", error: "CreditsUnknownPlan" };
    if (amount === 0n || amount > (1n << 128n) - 1n) return { on: "tollgate", error: "CreditsAmountOutOfRange" };
    if (plan.expiresAt !== 0 && now >= plan.expiresAt) return { on: "tollgate", error: "CreditsPlanExpired" };
    return { plan, price: amount * plan.price };
  }

  buyCredits(now: number, payer: string, planId: number, amount: bigint, recipient: string): Revert | bigint {
    const q = this.quote(now, planId, amount);
    if ("error" in q) return q;
    const pulled = this.pull(payer, q.price);
    if (typeof pulled !== "function") return pulled;
    pulled();
    this.creditEarnings(q.plan.providerId, q.price);
    this.addCredits(recipient, planId, amount);
    return q.price;
  }

  buyCreditsWithBalance(now: number, payer: string, planId: number, amount: bigint, recipient: string): Revert | bigint {
    const q = this.quote(now, planId, amount);
    if ("error" in q) return q;
    const acct = this.account(payer);
    if (q.price > acct.balance) return { on: "tollgate", error: "VaultInsufficientBalance" };
    acct.balance -= q.price;
    this.creditEarnings(q.plan.providerId, q.price);
    this.addCredits(recipient, planId, amount);
    return q.price;
  }

  transferCredits(from: string, to: string, planId: number, amount: bigint): Revert | null {
    if (this.creditsOf(from, planId) < amount) return { on: "credits", error: "ERC1155InsufficientBalance" };
    this.addCredits(from, planId, -amount);
    this.addCredits(to, planId, amount);
    return null;
  }

  // ---------- limits ----------

  setSpendingLimit(now: number, buyer: string, providerId: number, limit: bigint, period: number): Revert | null {
    if (!this.providers.has(providerId)) return { on: "tollgate", error: "RegistryUnknownProvider" };
    if (period === 0 || period > MAX_LIMIT_PERIOD) return { on: "tollgate", error: "LimitInvalidPeriod" };
    if (limit > MAX_UINT96) return { on: "tollgate", error: "LimitOutOfRange" };
    const cur = this.limitOf(buyer, providerId);
    this.limits.set(`${key(buyer)}:${providerId}`, {
      limit,
      period,
      windowStart: cur.windowStart === 0 ? now : cur.windowStart,
      spent: cur.spent,
    });
    return null;
  }

  clearSpendingLimit(buyer: string, providerId: number): Revert | null {
    if (!this.providers.has(providerId)) return { on: "tollgate", error: "RegistryUnknownProvider" };
    this.limits.delete(`${key(buyer)}:${providerId}`);
    return null;
  }

  /** What `providerId` may still charge `buyer` at `now`, and the window it counts in (null: unlimited). */
  private allowance(now: number, buyer: string, providerId: number) {
    const l = this.limitOf(buyer, providerId);
    if (l.period === 0) return null;
    let windowStart = l.windowStart;
    let spent = l.spent;
    if (now >= windowStart + l.period) {
      windowStart += Math.floor((now - windowStart) / l.period) * l.period;
      spent = 0n;
    }
    return { remaining: spent >= l.limit ? 0n : l.limit - spent, windowStart, spent };
  }

  // ---------- registry ----------

  scheduleModelPrice(now: number, caller: string, modelId: number, prices: Prices): Revert | number {
    const model = this.models.get(modelId);
    if (!model) return { on: "tollgate", error: "RegistryUnknownModel" };
    if (key(this.providers.get(model.providerId)!.owner) !== key(caller)) {
      return { on: "tollgate", error: "RegistryNotProviderOwner" };
    }
    for (const p of [prices.input, prices.cachedInput, prices.output]) {
      if (p > MAX_PRICE) return { on: "tollgate", error: "RegistryPriceTooHigh" };
    }
    // A not-yet-effective last epoch is replaced: nothing can have been served under it.
    if (model.epochs[model.epochs.length - 1].from > now) model.epochs.pop();
    const from = now + this.priceNotice;
    model.epochs.push({ from, ...prices });
    return from;
  }

  // ---------- subscriptions ----------

  subscriptionOf(buyer: string, providerId: number): SubscriptionState | undefined {
    return this.subscriptions.get(`${key(buyer)}:${providerId}`);
  }

  includedUsedOf(subscriptionId: number, periodIndex: number): bigint {
    return this.includedUsed.get(`${subscriptionId}:${periodIndex}`) ?? 0n;
  }

  private paidUntil(sub: SubscriptionState): number {
    return sub.startedAt + sub.paidPeriods * this.subscriptionPlans.get(sub.planId)!.period;
  }

  /** Charges a period from the spendable balance (never the pending withdrawal); false if it is short. */
  private chargePeriod(buyer: string, plan: SubscriptionPlanInfo): boolean {
    const acct = this.account(buyer);
    if (plan.price > acct.balance) return false;
    acct.balance -= plan.price;
    this.creditEarnings(plan.providerId, plan.price);
    return true;
  }

  /** Returns the price paid. */
  subscribe(now: number, buyer: string, planId: number): Revert | bigint {
    const plan = this.subscriptionPlans.get(planId);
    if (!plan) return { on: "subscriptions", error: "SubscriptionsUnknownPlan" };
    const current = this.subscriptionOf(buyer, plan.providerId);
    if (current?.active && (!current.cancelled || now < this.paidUntil(current))) {
      return { on: "subscriptions", error: "SubscriptionsAlreadySubscribed" };
    }
    // Judge the charge before ending the old subscription: a revert undoes both.
    if (this.paused) return { on: "tollgate", error: "EnforcedPause" };
    if (!this.chargePeriod(buyer, plan)) return { on: "subscriptions", error: "SubscriptionsInsufficientBalance" };
    this.subscriptionCount++;
    this.subscriptions.set(`${key(buyer)}:${plan.providerId}`, {
      id: this.subscriptionCount,
      planId,
      startedAt: now,
      paidPeriods: 1,
      active: true,
      cancelled: false,
    });
    return plan.price;
  }

  cancelSubscription(buyer: string, providerId: number): Revert | null {
    const sub = this.subscriptionOf(buyer, providerId);
    if (!sub?.active) return { on: "subscriptions", error: "SubscriptionsNotSubscribed" };
    if (sub.cancelled) return { on: "subscriptions", error: "SubscriptionsAlreadyCancelled" };
    sub.cancelled = true;
    return null;
  }

  /** Returns what the buyer paid. */
  renew(now: number, buyer: string, providerId: number): Revert | bigint {
    const sub = this.subscriptionOf(buyer, providerId);
    if (!sub?.active) return { on: "subscriptions", error: "SubscriptionsNotSubscribed" };
    const plan = this.subscriptionPlans.get(sub.planId)!;
    let until = this.paidUntil(sub);
    if (now < until) return { on: "subscriptions", error: "SubscriptionsRenewalNotDue" };
    // The first period due is charged unless the subscription was cancelled, and a paused vault reverts the call.
    if (!sub.cancelled && this.paused) return { on: "tollgate", error: "EnforcedPause" };
    let paid = 0n;
    for (let count = 0; now >= until && count < MAX_RENEWALS_PER_CALL; count++) {
      // Cancelled: ends at the period's end. A period the balance cannot pay: ends unpaid, charging nothing.
      if (sub.cancelled || !this.chargePeriod(buyer, plan)) {
        sub.active = false;
        this.trace.subscriptionsEnded++;
        break;
      }
      this.trace.renewals++;
      paid += plan.price;
      sub.paidPeriods++;
      until += plan.period;
    }
    return paid;
  }

  // ---------- settlement ----------

  /**
   * Settles a batch signed by `signer` at block time `now`. `records` are in sequence order; `buyerPlans`
   * is the buyer table (each buyer once, with the plan it names). Returns the revert the chain must give
   * for an invalid batch, or what settlement must have done (already applied to the model).
   */
  settle(
    now: number,
    signer: string,
    firstSequence: bigint,
    buyerPlans: ReadonlyMap<string, number>,
    records: readonly ModelRecord[],
  ): Revert | SettlementResult {
    if (this.paused) return { on: "tollgate", error: "EnforcedPause" };
    const s = this.signer(signer);
    if (!s.authorized) return { on: "tollgate", error: s.compromised ? "SettlementSignerCompromised" : "SettlementUnauthorizedSigner" };
    if (firstSequence !== s.nextSequence) return { on: "tollgate", error: "SettlementSequenceMismatch" };
    if (records.length === 0) return { on: "tollgate", error: "SettlementMalformedSection" };
    const providerId = s.providerId;

    // Model table, in first-use order (as the encoder builds it).
    const modelKeys: string[] = [];
    for (const r of records) {
      const k = `${r.modelId}:${r.epochIndex}`;
      if (!modelKeys.includes(k)) modelKeys.push(k);
    }
    for (const k of modelKeys) {
      const [modelId, epochIndex] = k.split(":").map(Number);
      const model = this.models.get(modelId);
      if (!model || model.providerId !== providerId) return { on: "tollgate", error: "SettlementModelNotOfProvider" };
      if (epochIndex >= model.epochs.length) return { on: "tollgate", error: "RegistryUnknownPriceEpoch" };
    }
    const table = [...buyerPlans.entries()].sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : 1));
    for (const [, planId] of table) {
      if (planId !== 0 && this.plans.get(planId)?.providerId !== providerId) {
        return { on: "tollgate", error: "SettlementPlanNotOfProvider" };
      }
    }

    const eligible = new Map<string, bigint>();
    const other = new Map<string, bigint>();
    /** Per buyer: cost the subscription took (included, or refused), and the refused part of it. */
    const subscribed = new Map<string, bigint>();
    const refused = new Map<string, bigint>();
    /** Included value drawn by this batch, written only once the batch is known to be valid. */
    const stagedUsed = new Map<string, bigint>();
    for (const r of records) {
      const model = this.models.get(r.modelId)!;
      if (r.cachedInputTokens > r.inputTokens) return { on: "tollgate", error: "SettlementCachedExceedsInput" };
      if (r.servedAt > now) return { on: "tollgate", error: "SettlementServedInFuture" };
      const epoch = model.epochs[r.epochIndex];
      const next = model.epochs[r.epochIndex + 1];
      let until = next ? next.from : Number.MAX_SAFE_INTEGER;
      if (until > now) until = now + 1;
      if (r.servedAt < epoch.from || r.servedAt >= until) {
        return { on: "tollgate", error: "SettlementPriceEpochMismatch" };
      }
      const cost = recordCost(r, epoch);
      const planId = buyerPlans.get(r.buyer) ?? 0;
      const plan = planId === 0 ? undefined : this.plans.get(planId);
      const covered =
        plan !== undefined &&
        (plan.mask & (1n << BigInt(model.localIndex))) !== 0n &&
        (plan.expiresAt === 0 || r.servedAt < plan.expiresAt);
      if (covered) this.trace.eligibleRecords++;
      if (r.epochIndex > 0) this.trace.laterEpochs++;
      // A subscription covering the model, for a record served in a paid period: that period's included value
      // first; beyond it, REFUSE takes the rest out of what is charged (as shortfall), BILL_BALANCE leaves it.
      let taken = 0n;
      const sub = this.subscriptionOf(r.buyer, providerId);
      if (sub) {
        const subPlan = this.subscriptionPlans.get(sub.planId)!;
        if ((subPlan.mask & (1n << BigInt(model.localIndex))) !== 0n && r.servedAt >= sub.startedAt && r.servedAt < this.paidUntil(sub)) {
          const periodIndex = Math.floor((r.servedAt - sub.startedAt) / subPlan.period);
          const usedKey = `${sub.id}:${periodIndex}`;
          const used = stagedUsed.get(usedKey) ?? this.includedUsedOf(sub.id, periodIndex);
          const drawn = min(cost, subPlan.included > used ? subPlan.included - used : 0n);
          if (drawn !== 0n) stagedUsed.set(usedKey, used + drawn);
          if (drawn !== 0n) this.trace.includedDraws++;
          if (subPlan.refuse && cost > drawn) this.trace.refusedRecords++;
          taken = subPlan.refuse ? cost : drawn;
          if (subPlan.refuse) refused.set(key(r.buyer), (refused.get(key(r.buyer)) ?? 0n) + cost - drawn);
          subscribed.set(key(r.buyer), (subscribed.get(key(r.buyer)) ?? 0n) + taken);
        }
      }
      const bucket = covered ? eligible : other;
      bucket.set(key(r.buyer), (bucket.get(key(r.buyer)) ?? 0n) + cost - taken);
    }

    for (const [usedKey, used] of stagedUsed) this.includedUsed.set(usedKey, used);

    const result: SettlementResult = {
      providerId,
      firstSequence,
      recordCount: records.length,
      totalCost: 0n,
      providerEarnings: 0n,
      protocolFee: 0n,
      totalShortfall: 0n,
      buyers: [],
    };
    let paidTotal = 0n;
    for (const [buyer, planId] of table) {
      const eligibleCost = eligible.get(key(buyer)) ?? 0n;
      const total = eligibleCost + (other.get(key(buyer)) ?? 0n);
      const acct = this.account(buyer);
      const available = acct.balance + acct.pending;

      // The spending cap bounds what may be charged at all (credits and balance together).
      let chargeable = total;
      const allowance = this.allowance(now, buyer, providerId);
      if (allowance) chargeable = min(chargeable, allowance.remaining);

      // Credits of the named plan cover the eligible part first: change left from an earlier credit, then
      // whole credits, the last one's unused value kept as change.
      const toCredits = min(eligibleCost, chargeable);
      let change = planId === 0 ? 0n : this.creditChangeOf(buyer, planId);
      let covered = min(toCredits, change);
      change -= covered;
      const need = toCredits - covered;
      let burned = 0n;
      const held = planId === 0 ? 0n : this.creditsOf(buyer, planId);
      if (need !== 0n && held !== 0n) {
        const value = this.plans.get(planId)!.value;
        burned = min((need + value - 1n) / value, held);
        const fromBurned = min(need, burned * value);
        if (burned * value > need) this.trace.extraBurns++;
        change += burned * value - fromBurned;
        covered += fromBurned;
      }
      if (planId !== 0) this.creditChange.set(`${key(buyer)}:${planId}`, change);
      const rest = chargeable - covered;
      const paid = min(rest, available);
      const shortfall = total - chargeable + rest - paid + (refused.get(key(buyer)) ?? 0n);
      if (allowance) this.trace.limited++;
      if (chargeable < total) this.trace.capped++;
      if (burned !== 0n) this.trace.burns++;
      if (paid > acct.balance) this.trace.fromPending++;

      // Apply: spendable balance first, then the pending withdrawal.
      const fromSpendable = min(paid, acct.balance);
      acct.balance -= fromSpendable;
      acct.pending -= paid - fromSpendable;
      if (burned !== 0n) this.addCredits(buyer, planId, -burned);
      if (allowance) {
        const l = this.limitOf(buyer, providerId);
        this.limits.set(`${key(buyer)}:${providerId}`, {
          ...l,
          windowStart: allowance.windowStart,
          // The cap counts what was charged (credits and balance), not what went unpaid.
          spent: allowance.spent + covered + paid,
        });
      }
      const fee = feeOn(paid, this.feeBps);
      result.protocolFee += fee;
      result.totalCost += total + (subscribed.get(key(buyer)) ?? 0n);
      result.totalShortfall += shortfall;
      paidTotal += paid;
      result.buyers.push({ buyer, fromBalance: paid, shortfall, creditsBurned: burned });
    }
    result.providerEarnings = paidTotal - result.protocolFee;
    this.earnings.set(providerId, this.earningsOf(providerId) + result.providerEarnings);
    this.fees += result.protocolFee;
    s.nextSequence = firstSequence + BigInt(records.length);
    this.signers.set(key(signer), s);
    return result;
  }
}
