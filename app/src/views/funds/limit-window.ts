/**
 * Where a spending limit's window stands now, as the contract computes it (`_remainingAllowance`): windows
 * tile time from the first one, and a window that has ended counts nothing spent.
 */
import type { SpendingLimitHolding } from "../../../../client";

export interface LimitWindow {
  windowStart: bigint;
  resetsAt: bigint;
  spent: bigint;
  remaining: bigint;
}

export function limitWindowAt(limit: SpendingLimitHolding, now: bigint): LimitWindow {
  const period = BigInt(limit.periodSeconds);
  let windowStart = BigInt(limit.windowStart);
  let spent = limit.spentInWindow;
  // A limit never charged has no window yet: the first charge starts it.
  if (windowStart === 0n) return { windowStart: now, resetsAt: now + period, spent: 0n, remaining: limit.limitPerPeriod };
  if (now >= windowStart + period) {
    windowStart += ((now - windowStart) / period) * period;
    spent = 0n;
  }
  return { windowStart, resetsAt: windowStart + period, spent, remaining: spent >= limit.limitPerPeriod ? 0n : limit.limitPerPeriod - spent };
}
