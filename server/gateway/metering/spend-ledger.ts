/**
 * What a buyer can spend right now, from the gateway's point of view:
 *
 *   on-chain balance (pending withdrawals excluded: that money may leave before settlement)
 * + value of held credits whose plan covers the model and has not expired
 * − this gateway's usage the chain has not settled yet
 * − open reservations of calls in flight
 * and never more than what is left of the buyer's on-chain spending limit for the provider.
 *
 * A buyer subscribed to the provider adds, for a call of a model its plan covers served in a paid period, what is
 * left of that period's included value (its value, less what settlement drew on-chain, less the period's covered
 * unsettled usage and calls in flight); covered usage the included value absorbs is not counted against the
 * balance, and the balance the next renewal will take is held back (`renewalHold`). Under a REFUSE plan a covered
 * call may spend only that remainder, as settlement refuses the rest; under BILL_BALANCE the rest is billed as today.
 *
 * The check and the reservation happen in one synchronous step, so concurrent calls cannot both spend
 * the same money: Node runs one of them to completion before the other's check begins. The same step checks
 * the key's cap and every budget the call counts against (committed spend this period + open reservations).
 */
import type { Address } from "viem";
import type { BuyerSnapshot, ModelTerms, SubscriptionStatus } from "../../chain/marketplace-reader";
import { planCovers } from "../../chain/plan-eligibility";
import { coverPaid, coverKey, includedCoverAt, includedUsedOnChain, periodBounds, periodIndexAt, renewalHold, type IncludedCover } from "./subscription-cover";

interface UnsettledEntry {
  sequence: bigint;
  cost: bigint;
  cover?: IncludedCover;
  /** A record re-read at start-up: what tagging it with its subscription period needs, once a snapshot shows one. */
  untagged?: { modelId: number; servedAt: number };
}

/** Covered usage per subscription period (`IncludedCover.key`). */
type CoveredSums = Map<string, { cover: IncludedCover; amount: bigint }>;
const NO_COVERED: CoveredSums = new Map();

function addCovered(sums: CoveredSums, cover: IncludedCover, amount: bigint): void {
  const sum = sums.get(cover.key);
  const left = (sum?.amount ?? 0n) + amount;
  if (left === 0n) sums.delete(cover.key);
  else sums.set(cover.key, { cover, amount: left });
}

/** Per-buyer unsettled usage, oldest first, with a running total (and one per subscription period it is covered by). */
class UnsettledQueue {
  private entries: UnsettledEntry[] = [];
  private head = 0;
  total = 0n;
  private readonly covered: CoveredSums = new Map();
  /** Entries re-read at start-up wait for the buyer's first snapshot with a subscription to be tagged. */
  untagged = false;

  push(entry: UnsettledEntry): void {
    this.entries.push(entry);
    this.total += entry.cost;
    if (entry.cover) addCovered(this.covered, entry.cover, entry.cost);
    if (entry.untagged) this.untagged = true;
  }

  /** Tags the entries re-read at start-up with the subscription period each falls in, as a record served now would be. */
  tag(coverOf: (entry: { modelId: number; servedAt: number }) => IncludedCover | undefined): void {
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i];
      if (!entry.untagged) continue;
      entry.cover = coverOf(entry.untagged);
      entry.untagged = undefined;
      if (entry.cover) addCovered(this.covered, entry.cover, entry.cost);
    }
    this.untagged = false;
  }

  /** Drops what the chain has settled: every sequence below the snapshot's `signerNextSequence`. */
  dropBefore(sequence: bigint): void {
    while (this.head < this.entries.length && this.entries[this.head].sequence < sequence) {
      const entry = this.entries[this.head];
      this.total -= entry.cost;
      if (entry.cover) addCovered(this.covered, entry.cover, -entry.cost);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Unsettled usage not yet reflected in a snapshot taken when the signer's next sequence was `sequence`. */
  totalFrom(sequence: bigint): { total: bigint; covered: CoveredSums } {
    let sum = this.total;
    const covered: CoveredSums = this.covered.size === 0 ? NO_COVERED : new Map(this.covered);
    for (let i = this.head; i < this.entries.length && this.entries[i].sequence < sequence; i++) {
      const entry = this.entries[i];
      sum -= entry.cost;
      if (entry.cover) addCovered(covered, entry.cover, -entry.cost);
    }
    return { total: sum, covered };
  }
}

/** The subscription as one call (or `/v1/balance`) sees it: its period and what is left of the included value. */
export interface SubscriptionStanding {
  status: SubscriptionStatus;
  /** Set when the call's model is covered and it is served in a paid period: its cost draws from this period first. */
  cover?: IncludedCover;
  periodIndex: number;
  periodStart: number;
  periodEnd: number;
  includedValue: bigint;
  /** Drawn by settlement on-chain, as of the snapshot. */
  usedOnChain: bigint;
  /** This gateway's covered usage of the period that the snapshot does not include yet. */
  unsettledCovered: bigint;
  /** Covered calls of the period in flight. */
  reservedCovered: bigint;
  /** Included value left: included − used on-chain − unsettled covered − in flight, never negative. */
  remaining: bigint;
  /** Balance held back for the next renewal(s) (`renewalHold`). */
  renewalHold: bigint;
  /** Of the unsettled usage and calls in flight (all periods), what included value takes instead of credits or balance. */
  absorbed: bigint;
  /** A REFUSE plan and a covered call: it may spend only `remaining`. */
  refusesOverage: boolean;
}

export interface SpendableBreakdown {
  balance: bigint;
  pendingWithdrawal: bigint;
  creditValue: bigint;
  unsettledUsage: bigint;
  openReservations: bigint;
  /** What is left of the on-chain spending limit this period, or null when the buyer set none. */
  limitRemaining: bigint | null;
  /** The buyer's subscription to the provider as this call sees it, or null without one. */
  subscription: SubscriptionStanding | null;
  /** The subscription period the call's model and time fall in (paid or not yet renewed): its reservation's tag. */
  cover?: IncludedCover;
  spendable: bigint;
}

export interface Reservation {
  readonly buyer: Address;
  readonly keyId: string;
  readonly amount: bigint;
  /** The budgets this reservation counts against until it is released. */
  readonly budgetIds: readonly string[];
  /** The subscription period whose included value the call draws first, if its model is covered and the period paid. */
  readonly cover?: IncludedCover;
  released: boolean;
}

/** A budget as the reservation step sees it: its limit and what its current period has committed. */
export interface BudgetCheck {
  id: string;
  limit: bigint;
  /** Recorded spend in the current period, as committed. */
  spent: bigint;
}

/** The first budget a call would overrun: its figures at the moment of the check. */
export interface BudgetRefusal {
  budget: BudgetCheck;
  /** Open reservations of calls in flight that count against it. */
  reserved: bigint;
}

export class SpendLedger {
  private readonly unsettled = new Map<Address, UnsettledQueue>();
  private readonly reservedByBuyer = new Map<Address, bigint>();
  private readonly reservedByKey = new Map<string, bigint>();
  private readonly reservedByBudget = new Map<string, bigint>();
  private readonly reservedCoveredByBuyer = new Map<Address, CoveredSums>();
  private open = 0;

  /**
   * Records one served call; called right after its usage record is durable, with its reservation's cover (none: the
   * call's model or time is not covered, and it counts against credits and balance until it settles).
   */
  addUnsettled(buyer: Address, sequence: bigint, cost: bigint, cover?: IncludedCover): void {
    let queue = this.unsettled.get(buyer);
    if (!queue) this.unsettled.set(buyer, (queue = new UnsettledQueue()));
    queue.push({ sequence, cost, cover });
  }

  /**
   * A record re-read from the store at start-up: its subscription period is not known until the buyer's first
   * snapshot (`observeSnapshot` tags it then; until then, and if the model is not known, it counts against the balance).
   */
  addRebuilt(buyer: Address, sequence: bigint, cost: bigint, modelId: number, servedAt: number): void {
    let queue = this.unsettled.get(buyer);
    if (!queue) this.unsettled.set(buyer, (queue = new UnsettledQueue()));
    queue.push({ sequence, cost, untagged: { modelId, servedAt } });
  }

  /** The local index of an on-chain model this gateway serves, for tagging rebuilt records; set once the models are read. */
  localIndexOf: (modelId: number) => number | undefined = () => undefined;

  /** Forgets usage the chain has settled, once a snapshot shows the signer's sequence moved past it. */
  observeSnapshot(snapshot: BuyerSnapshot): void {
    const queue = this.unsettled.get(snapshot.buyer);
    if (!queue) return;
    queue.dropBefore(snapshot.signerNextSequence);
    const sub = snapshot.subscription;
    if (queue.untagged && sub) {
      queue.tag(({ modelId, servedAt }) => {
        const localIndex = this.localIndexOf(modelId);
        return localIndex === undefined ? undefined : includedCoverAt(sub, localIndex, servedAt);
      });
    }
  }

  breakdown(snapshot: BuyerSnapshot, model: ModelTerms, now: number): SpendableBreakdown {
    let creditValue = 0n;
    for (const held of snapshot.credits) {
      const plan = held.plan;
      // Settlement rejects a plan of another provider, and pays from a plan only for what it covers.
      if (plan.providerId !== model.providerId || !planCovers(plan, model.localIndex, now)) continue;
      creditValue += held.credits * plan.valuePerCredit + held.change;
    }
    const unsettled = this.unsettled.get(snapshot.buyer)?.totalFrom(snapshot.signerNextSequence);
    const unsettledUsage = unsettled?.total ?? 0n;
    const openReservations = this.reservedByBuyer.get(snapshot.buyer) ?? 0n;
    const committed = unsettledUsage + openReservations;

    const sub = snapshot.subscription;
    let includedLeft = 0n;
    let absorbed = 0n;
    let subscription: SubscriptionStanding | null = null;
    const cover = sub ? includedCoverAt(sub, model.localIndex, now) : undefined;
    if (sub) {
      const paid = cover && coverPaid(sub, cover) ? cover : undefined;
      const reservedCovered = this.reservedCoveredByBuyer.get(snapshot.buyer) ?? NO_COVERED;
      absorbed = this.absorbed(sub, unsettled?.covered ?? NO_COVERED, reservedCovered);
      subscription = { ...this.standing(snapshot, sub, paid, now, unsettled?.covered ?? NO_COVERED, reservedCovered), absorbed };
      if (paid) includedLeft = subscription.remaining;
    }
    // What credits and balance must still pay: committed usage less what included value absorbs.
    const billedCommitted = committed - absorbed;
    const hold = subscription?.renewalHold ?? 0n;
    let billable = snapshot.balance + creditValue - hold - billedCommitted;

    let limitRemaining: bigint | null = null;
    const limit = snapshot.spendingLimit;
    if (limit.period > 0) {
      // Windows are tiled from when the limit was set; a window that has ended no longer counts its spend.
      const windowOpen = now < limit.windowStart + limit.period;
      limitRemaining = limit.limitPerPeriod - (windowOpen ? limit.spentInWindow : 0n);
      // Included usage is not charged, so only what is billed counts against the limit (as `_drawTally` counts it).
      if (limitRemaining - billedCommitted < billable) billable = limitRemaining - billedCommitted;
    }
    if (billable < 0n) billable = 0n;
    const spendable = subscription?.refusesOverage ? includedLeft : includedLeft + billable;
    return {
      balance: snapshot.balance,
      pendingWithdrawal: snapshot.pendingWithdrawal,
      creditValue,
      unsettledUsage,
      openReservations,
      limitRemaining,
      subscription,
      cover,
      spendable,
    };
  }

  /**
   * The subscription's standing for a call with `cover` (or, without one, for its current or last paid period):
   * `/v1/balance` shows it, the 402 of a REFUSE plan names its numbers.
   */
  subscriptionStanding(snapshot: BuyerSnapshot, now: number): SubscriptionStanding | null {
    const sub = snapshot.subscription;
    if (!sub) return null;
    const unsettled = this.unsettled.get(snapshot.buyer)?.totalFrom(snapshot.signerNextSequence)?.covered ?? NO_COVERED;
    const reserved = this.reservedCoveredByBuyer.get(snapshot.buyer) ?? NO_COVERED;
    return { ...this.standing(snapshot, sub, undefined, now, unsettled, reserved), absorbed: this.absorbed(sub, unsettled, reserved) };
  }

  private standing(
    snapshot: BuyerSnapshot,
    sub: SubscriptionStatus,
    cover: IncludedCover | undefined,
    now: number,
    unsettled: CoveredSums,
    reserved: CoveredSums,
  ): Omit<SubscriptionStanding, "absorbed"> {
    const periodIndex = cover?.periodIndex ?? (now < sub.paidUntil && now >= sub.startedAt ? periodIndexAt(sub, now) : sub.periodIndex);
    const key = cover?.key ?? coverKey(sub.subscriptionId, periodIndex);
    const usedOnChain = includedUsedOnChain(sub, sub.subscriptionId, periodIndex);
    const unsettledCovered = unsettled.get(key)?.amount ?? 0n;
    const reservedCovered = reserved.get(key)?.amount ?? 0n;
    const left = sub.plan.includedValue - usedOnChain - unsettledCovered - reservedCovered;
    const { start, end } = periodBounds(sub, periodIndex);
    return {
      status: sub,
      cover,
      periodIndex,
      periodStart: start,
      periodEnd: end,
      includedValue: sub.plan.includedValue,
      usedOnChain,
      unsettledCovered,
      reservedCovered,
      remaining: left > 0n ? left : 0n,
      renewalHold: renewalHold(sub, snapshot.balance, now),
      refusesOverage: cover !== undefined && sub.plan.overage === "refuse",
    };
  }

  /**
   * Committed covered usage that included value takes instead of credits or balance: under REFUSE all of it (what
   * exceeds the included value is refused, never billed), under BILL_BALANCE per period up to what it has left.
   * Usage of a period not paid in this snapshot (served after `paidUntil`, not renewed yet), or of another subscription
   * than the snapshot's (the buyer subscribed anew), counts against the balance, as settlement would then bill it.
   */
  private absorbed(sub: SubscriptionStatus, unsettled: CoveredSums, reserved: CoveredSums): bigint {
    if (unsettled.size === 0 && reserved.size === 0) return 0n;
    const perPeriod = new Map<string, { cover: IncludedCover; amount: bigint }>();
    for (const sums of [unsettled, reserved]) for (const { cover, amount } of sums.values()) addCovered(perPeriod, cover, amount);
    let absorbed = 0n;
    for (const { cover, amount } of perPeriod.values()) {
      if (!coverPaid(sub, cover)) continue;
      if (sub.plan.overage === "refuse") {
        absorbed += amount;
        continue;
      }
      const left = sub.plan.includedValue - includedUsedOnChain(sub, cover.subscriptionId, cover.periodIndex);
      absorbed += left <= 0n ? 0n : amount < left ? amount : left;
    }
    return absorbed;
  }

  /** What calls in flight hold against a budget. */
  budgetReserved(budgetId: string): bigint {
    return this.reservedByBudget.get(budgetId) ?? 0n;
  }

  /**
   * Reserves `amount` if the buyer can spend it, the key's cap allows it and every budget in `budgets` has it
   * left; returns no reservation otherwise, with `budgetRefusal` naming the budget when one is what refused.
   * Synchronous on purpose: see the file comment.
   */
  tryReserve(
    snapshot: BuyerSnapshot,
    model: ModelTerms,
    now: number,
    key: { id: string; spendCap: bigint | null; spent: bigint },
    amount: bigint,
    budgets: readonly BudgetCheck[] = [],
  ): { reservation?: Reservation; breakdown: SpendableBreakdown; keyRemaining: bigint | null; budgetRefusal?: BudgetRefusal } {
    const breakdown = this.breakdown(snapshot, model, now);
    const keyReserved = this.reservedByKey.get(key.id) ?? 0n;
    const keyRemaining = key.spendCap === null ? null : key.spendCap - key.spent - keyReserved;
    for (const budget of budgets) {
      const reserved = this.budgetReserved(budget.id);
      if (amount > budget.limit - budget.spent - reserved) return { breakdown, keyRemaining, budgetRefusal: { budget, reserved } };
    }
    if (amount > breakdown.spendable || (keyRemaining !== null && amount > keyRemaining)) {
      return { breakdown, keyRemaining };
    }
    this.reservedByBuyer.set(snapshot.buyer, (this.reservedByBuyer.get(snapshot.buyer) ?? 0n) + amount);
    this.reservedByKey.set(key.id, keyReserved + amount);
    for (const budget of budgets) this.reservedByBudget.set(budget.id, this.budgetReserved(budget.id) + amount);
    const cover = breakdown.cover;
    if (cover) {
      let sums = this.reservedCoveredByBuyer.get(snapshot.buyer);
      if (!sums) this.reservedCoveredByBuyer.set(snapshot.buyer, (sums = new Map()));
      addCovered(sums, cover, amount);
    }
    this.open++;
    const budgetIds = budgets.map((budget) => budget.id);
    return { reservation: { buyer: snapshot.buyer, keyId: key.id, amount, budgetIds, cover, released: false }, breakdown, keyRemaining };
  }

  /** Releases a reservation; safe to call twice. */
  release(reservation: Reservation): void {
    if (reservation.released) return;
    reservation.released = true;
    this.open--;
    const buyerLeft = (this.reservedByBuyer.get(reservation.buyer) ?? 0n) - reservation.amount;
    if (buyerLeft === 0n) this.reservedByBuyer.delete(reservation.buyer);
    else this.reservedByBuyer.set(reservation.buyer, buyerLeft);
    const keyLeft = (this.reservedByKey.get(reservation.keyId) ?? 0n) - reservation.amount;
    if (keyLeft === 0n) this.reservedByKey.delete(reservation.keyId);
    else this.reservedByKey.set(reservation.keyId, keyLeft);
    for (const budgetId of reservation.budgetIds) {
      const budgetLeft = this.budgetReserved(budgetId) - reservation.amount;
      if (budgetLeft === 0n) this.reservedByBudget.delete(budgetId);
      else this.reservedByBudget.set(budgetId, budgetLeft);
    }
    if (reservation.cover) {
      const sums = this.reservedCoveredByBuyer.get(reservation.buyer);
      if (sums) {
        addCovered(sums, reservation.cover, -reservation.amount);
        if (sums.size === 0) this.reservedCoveredByBuyer.delete(reservation.buyer);
      }
    }
  }

  openReservations(): number {
    return this.open;
  }
}
