/** A credit plan's terms as every page says them: the bonus of a credit's usage value over its price. */

/**
 * "+25%" for a credit worth 1.25 that costs 1; "−10%" when it is worth less than it costs; "0%"; "free credits".
 * Exact to 0.01 % from bigints, truncated toward zero, so a bonus is never overstated.
 */
export function formatBonus(pricePerCredit: bigint, valuePerCredit: bigint): string {
  if (pricePerCredit === 0n) return "free credits";
  const basisPoints = ((valuePerCredit - pricePerCredit) * 10_000n) / pricePerCredit;
  const sign = basisPoints > 0n ? "+" : basisPoints < 0n ? "−" : "";
  const magnitude = basisPoints < 0n ? -basisPoints : basisPoints;
  const fraction = (magnitude % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${sign}${magnitude / 100n}${fraction ? `.${fraction}` : ""}%`;
}
