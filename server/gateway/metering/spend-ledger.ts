/**
 * What a buyer can spend right now, from the gateway's point of view:
 *
 *   on-chain balance (pending withdrawals excluded: that money may leave before settlement)
 * + value of held credits whose plan covers the model and has not expired
 * − this gateway's usage the chain has not settled yet
 * − open reservations of calls in flight
 * and never more than what is left of the buyer's on-chain spending limit for the provider.
 *
 * The check and the reservation happen in one synchronous step, so concurrent calls cannot both spend
 * the same money: Node runs one of them to completion before the other's check begins. The same step checks
 * the key's cap and every budget the call counts against (committed spend this period + open reservations).
 */
import type { Address } from "viem";
import type { BuyerSnapshot, ModelTerms } from "../../chain/marketplace-reader";
import { planCovers } from "../../chain/plan-eligibility";

interface UnsettledEntry {
  sequence: bigint;
  cost: bigint;
}

/** Per-buyer unsettled usage, oldest first, with a running total. */
class UnsettledQueue {
  private entries: UnsettledEntry[] = [];
  private head = 0;
  total = 0n;

  push(entry: UnsettledEntry): void {
    this.entries.push(entry);
    this.total += entry.cost;
  }

  /** Drops what the chain has settled: every sequence below the snapshot's `signerNextSequence`. */
  dropBefore(sequence: bigint): void {
    while (this.head < this.entries.length && this.entries[this.head].sequence < sequence) {
      this.total -= this.entries[this.head].cost;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Unsettled usage not yet reflected in a snapshot taken when the signer's next sequence was `sequence`. */
  totalFrom(sequence: bigint): bigint {
    let sum = this.total;
    for (let i = this.head; i < this.entries.length && this.entries[i].sequence < sequence; i++) sum -= this.entries[i].cost;
    return sum;
  }
}

export interface SpendableBreakdown {
  balance: bigint;
  pendingWithdrawal: bigint;
  creditValue: bigint;
  unsettledUsage: bigint;
  openReservations: bigint;
  /** What is left of the on-chain spending limit this period, or null when the buyer set none. */
  limitRemaining: bigint | null;
  spendable: bigint;
}

export interface Reservation {
  readonly buyer: Address;
  readonly keyId: string;
  readonly amount: bigint;
  /** The budgets this reservation counts against until it is released. */
  readonly budgetIds: readonly string[];
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
  private open = 0;

  /** Records one served call; called right after its usage record is durable. */
  addUnsettled(buyer: Address, sequence: bigint, cost: bigint): void {
    let queue = this.unsettled.get(buyer);
    if (!queue) this.unsettled.set(buyer, (queue = new UnsettledQueue()));
    queue.push({ sequence, cost });
  }

  /** Forgets usage the chain has settled, once a snapshot shows the signer's sequence moved past it. */
  observeSnapshot(snapshot: BuyerSnapshot): void {
    this.unsettled.get(snapshot.buyer)?.dropBefore(snapshot.signerNextSequence);
  }

  breakdown(snapshot: BuyerSnapshot, model: ModelTerms, now: number): SpendableBreakdown {
    let creditValue = 0n;
    for (const held of snapshot.credits) {
      const plan = held.plan;
      // Settlement rejects a plan of another provider, and pays from a plan only for what it covers.
      if (plan.providerId !== model.providerId || !planCovers(plan, model.localIndex, now)) continue;
      creditValue += held.credits * plan.valuePerCredit + held.change;
    }
    const unsettledUsage = this.unsettled.get(snapshot.buyer)?.totalFrom(snapshot.signerNextSequence) ?? 0n;
    const openReservations = this.reservedByBuyer.get(snapshot.buyer) ?? 0n;
    const committed = unsettledUsage + openReservations;
    let spendable = snapshot.balance + creditValue - committed;

    let limitRemaining: bigint | null = null;
    const limit = snapshot.spendingLimit;
    if (limit.period > 0) {
      // Windows are tiled from when the limit was set; a window that has ended no longer counts its spend.
      const windowOpen = now < limit.windowStart + limit.period;
      limitRemaining = limit.limitPerPeriod - (windowOpen ? limit.spentInWindow : 0n);
      if (limitRemaining - committed < spendable) spendable = limitRemaining - committed;
    }
    return {
      balance: snapshot.balance,
      pendingWithdrawal: snapshot.pendingWithdrawal,
      creditValue,
      unsettledUsage,
      openReservations,
      limitRemaining,
      spendable: spendable > 0n ? spendable : 0n,
    };
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
    this.open++;
    const budgetIds = budgets.map((budget) => budget.id);
    return { reservation: { buyer: snapshot.buyer, keyId: key.id, amount, budgetIds, released: false }, breakdown, keyRemaining };
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
  }

  openReservations(): number {
    return this.open;
  }
}
