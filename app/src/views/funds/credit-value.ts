/** What held credits are worth in usage: whole credits at the plan's value plus the change of the last one burned. */
import type { CreditHolding } from "../../../../client";

export function creditValue(holding: CreditHolding, now: bigint): bigint {
  // Expired credits pay for nothing served from then on.
  if (holding.expiresAt !== 0 && BigInt(holding.expiresAt) <= now) return 0n;
  return holding.credits * holding.valuePerCredit + holding.change;
}
