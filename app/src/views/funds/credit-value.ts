/** What held credits are worth in usage: whole credits at the plan's value plus the change of the last one burned. */
import type { CreditHolding } from "../../../../client";

/** Usage served at or after `expiresAt` is not covered; 0 never expires. */
export function expiredAt(expiresAt: number, now: bigint): boolean {
  return expiresAt !== 0 && BigInt(expiresAt) <= now;
}

export function creditValue(holding: CreditHolding, now: bigint): bigint {
  // Expired credits pay for nothing served from then on.
  if (expiredAt(holding.expiresAt, now)) return 0n;
  return holding.credits * holding.valuePerCredit + holding.change;
}
