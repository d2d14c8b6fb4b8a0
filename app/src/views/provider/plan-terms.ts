/** Plan terms as the page says them: the bonus a credit gives, and the models its mask covers. */
import type { ProviderModel } from "./load-provider-dashboard";

/** "+25%" for a credit worth 1.25 and costing 1: the bonus a buyer gets over paying per call. Exact to 0.01 %, from bigints. */
export function formatBonus(pricePerCredit: bigint, valuePerCredit: bigint): string {
  if (pricePerCredit === 0n) return "free credits";
  const basisPoints = ((valuePerCredit - pricePerCredit) * 10_000n) / pricePerCredit;
  const sign = basisPoints > 0n ? "+" : basisPoints < 0n ? "−" : "";
  const magnitude = basisPoints < 0n ? -basisPoints : basisPoints;
  const fraction = (magnitude % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${sign}${magnitude / 100n}${fraction ? `.${fraction}` : ""}%`;
}

export function modelsOfMask(mask: bigint, models: readonly ProviderModel[]): ProviderModel[] {
  return models.filter((model) => (mask >> BigInt(model.localIndex)) & 1n);
}
