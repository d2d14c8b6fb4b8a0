/**
 * A model's three prices per million tokens (input, cached input, output) as typed in token units, and back:
 * parsed to base units exactly, never through a float.
 */
import type { ModelPrices } from "../../../../server/chain/pricing";
import { formatUnitsGrouped, parseAmount, type TokenInfo } from "../../lib/amounts";

export interface PriceTexts {
  input: string;
  cachedInput: string;
  output: string;
}

export const PRICE_KEYS: readonly (keyof PriceTexts)[] = ["input", "cachedInput", "output"];

export function priceTextsOf(prices: ModelPrices | undefined, token: TokenInfo): PriceTexts {
  const text = (value: bigint | undefined) => (value === undefined ? "" : formatUnitsGrouped(value, token.decimals).replace(/,/g, ""));
  return { input: text(prices?.input), cachedInput: text(prices?.cachedInput), output: text(prices?.output) };
}

/** Base units for each price, or the first problem with each; the contract's own bound (MAX_PRICE) is left to it, which names it. */
export function parsePrices(texts: PriceTexts, token: TokenInfo): { prices?: ModelPrices; errors: Partial<Record<keyof PriceTexts, string>> } {
  const errors: Partial<Record<keyof PriceTexts, string>> = {};
  const values: Partial<ModelPrices> = {};
  for (const key of PRICE_KEYS) {
    const parsed = parseAmount(texts[key], token, { allowZero: true });
    if (parsed.ok) values[key] = parsed.value;
    else errors[key] = parsed.error;
  }
  return Object.keys(errors).length === 0 ? { prices: values as ModelPrices, errors } : { errors };
}
