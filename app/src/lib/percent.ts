/** Shares as people read them, from the gateway's exact decimal ratios. */

/** "0.1234" (the gateway's ratio) → "12.34%", by digits: no float between the gateway and the page. */
export function percent(share: string | null): string {
  if (share === null) return "—";
  const [whole, fraction = ""] = share.split(".");
  const basisPoints = BigInt(whole) * 10_000n + BigInt(fraction.padEnd(4, "0").slice(0, 4) || "0");
  const hundredths = (basisPoints % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${basisPoints / 100n}${hundredths ? `.${hundredths}` : ""}%`;
}
