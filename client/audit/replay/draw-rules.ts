/**
 * Settlement's money rules, replayed: the spending cap's window (`SpendingLimits._remainingAllowance` and
 * `_recordSpending`), and one buyer's draw in one batch (`UsageSettlement._drawTally`, whose result the fast
 * path `_drawFromAccount` equals when there is no plan and no cap: the differential test holds the two
 * paths together on-chain). Pure functions over bigints, so the audit and its tests can call them directly.
 */
import { protocolFeeOn } from "../../../server/chain/pricing";
import type { SpendingLimitState } from "./ledger";

/** What a cap still allows at `now`, and the window it counts in; `undefined` when there is no cap. */
export interface Allowance {
  remaining: bigint;
  windowStart: number;
  spent: bigint;
}

/** `_remainingAllowance`: windows tile time from the first one, and a new window starts with nothing spent. */
export function remainingAllowance(limit: SpendingLimitState | undefined, now: number): Allowance | undefined {
  if (!limit || limit.period === 0) return undefined;
  let windowStart = limit.windowStart;
  let spent = limit.spentInWindow;
  if (now >= windowStart + limit.period) {
    windowStart += Math.floor((now - windowStart) / limit.period) * limit.period;
    spent = 0n;
  }
  const remaining = spent >= limit.limitPerPeriod ? 0n : limit.limitPerPeriod - spent;
  return { remaining, windowStart, spent };
}

export interface DrawInput {
  /** Cost of the buyer's records in the batch the named plan does not cover. */
  otherCost: bigint;
  /** Cost of those it covers. */
  eligibleCost: bigint;
  allowance: Allowance | undefined;
  /** Credits of the named plan held before the batch, their value each, and the change left from the last one burned. */
  credits: bigint;
  creditValue: bigint;
  creditChange: bigint;
  balance: bigint;
  pendingWithdrawal: bigint;
  feeBps: bigint;
}

export interface DrawResult {
  total: bigint;
  chargeable: bigint;
  coveredByCredits: bigint;
  creditsBurned: bigint;
  creditChange: bigint;
  fromBalance: bigint;
  balance: bigint;
  pendingWithdrawal: bigint;
  shortfall: bigint;
  fee: bigint;
  /** The cap's window after the batch, when there is a cap. */
  window: { windowStart: number; spent: bigint } | undefined;
}

const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/**
 * `_drawTally`: the cap limits what may be charged; the plan's credits cover the eligible part (change
 * first, then whole credits, the last one's unused value kept as change); the account pays the rest, balance
 * first then the pending withdrawal; what remains is shortfall; the fee is taken once on what the account paid.
 */
export function drawBuyer(input: DrawInput): DrawResult {
  const total = input.otherCost + input.eligibleCost;
  const chargeable = input.allowance ? min(total, input.allowance.remaining) : total;
  // Eligible usage is charged first, so the cap leaves it to credits where it can.
  const toCredits = min(input.eligibleCost, chargeable);
  let change = input.creditChange;
  let covered = min(toCredits, change);
  change -= covered;
  const need = toCredits - covered;
  let creditsBurned = 0n;
  if (need !== 0n && input.credits !== 0n) {
    const value = input.creditValue;
    creditsBurned = min((need + value - 1n) / value, input.credits);
    const burnedValue = creditsBurned * value;
    const fromBurned = min(need, burnedValue);
    change += burnedValue - fromBurned;
    covered += fromBurned;
  }
  const rest = chargeable - covered;
  const available = input.balance + input.pendingWithdrawal;
  const fromBalance = min(rest, available);
  const fromSpendable = min(fromBalance, input.balance);
  return {
    total,
    chargeable,
    coveredByCredits: covered,
    creditsBurned,
    creditChange: change,
    fromBalance,
    balance: input.balance - fromSpendable,
    pendingWithdrawal: input.pendingWithdrawal - (fromBalance - fromSpendable),
    shortfall: total - chargeable + rest - fromBalance,
    fee: protocolFeeOn(fromBalance, input.feeBps),
    // The cap counts what was actually charged (credits and balance), not what went unpaid.
    window: input.allowance ? { windowStart: input.allowance.windowStart, spent: input.allowance.spent + covered + fromBalance } : undefined,
  };
}
