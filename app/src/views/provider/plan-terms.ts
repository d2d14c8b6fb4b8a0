/** A plan's terms as the page says them: the bonus a credit gives over paying per call. */

/** "+25%" for a credit worth 1.25 and costing 1: the bonus a buyer gets over paying per call. Exact to 0.01 %, from bigints. */
export function formatBonus(pricePerCredit: bigint, valuePerCredit: bigint): string {
  if (pricePerCredit === 0n) return "free credits";
  const basisPoints = ((valuePerCredit - pricePerCredit) * 10_000n) / pricePerCredit;
  const sign = basisPoints > 0n ? "+" : basisPoints < 0n ? "−" : "";
  const magnitude = basisPoints < 0n ? -basisPoints : basisPoints;
  const fraction = (magnitude % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${sign}${magnitude / 100n}${fraction ? `.${fraction}` : ""}%`;
}
