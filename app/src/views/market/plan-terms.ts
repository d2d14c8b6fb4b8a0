/** What a credit plan gives for its price, said as a buyer compares plans: the bonus of value over price. */

/**
 * "+10%", "−5%", "none", "free": the value per credit over its price, exact to a tenth of a percent
 * (bigint arithmetic, truncated toward zero, so a bonus is never overstated).
 */
export function formatBonus(pricePerCredit: bigint, valuePerCredit: bigint): string {
  if (pricePerCredit === 0n) return "free";
  const tenthsOfPercent = ((valuePerCredit - pricePerCredit) * 1000n) / pricePerCredit;
  if (tenthsOfPercent === 0n) return "none";
  const magnitude = tenthsOfPercent < 0n ? -tenthsOfPercent : tenthsOfPercent;
  const whole = magnitude / 10n;
  const tenth = magnitude % 10n;
  return `${tenthsOfPercent < 0n ? "−" : "+"}${whole}${tenth ? `.${tenth}` : ""}%`;
}
