/**
 * The three prices of a model per million tokens (input, cached input, output), typed in token units and
 * parsed to base units exactly. Shared by listing a model and scheduling a price change.
 */
import type { ModelPrices } from "../../../../server/chain/pricing";
import { Field } from "../../components/field";
import { formatAmount, formatUnitsGrouped, parseAmount, type TokenInfo } from "../../lib/amounts";

export interface PriceTexts {
  input: string;
  cachedInput: string;
  output: string;
}

const PRICE_LABELS: Record<keyof PriceTexts, string> = {
  input: "Input price per 1M tokens",
  cachedInput: "Cached input price per 1M tokens",
  output: "Output price per 1M tokens",
};

export function priceTextsOf(prices: ModelPrices | undefined, token: TokenInfo): PriceTexts {
  const text = (value: bigint | undefined) => (value === undefined ? "" : formatUnitsGrouped(value, token.decimals).replace(/,/g, ""));
  return { input: text(prices?.input), cachedInput: text(prices?.cachedInput), output: text(prices?.output) };
}

/** Base units for each price, or the first problem with each; the contract's own bound (MAX_PRICE) is left to it, which names it. */
export function parsePrices(texts: PriceTexts, token: TokenInfo): { prices?: ModelPrices; errors: Partial<Record<keyof PriceTexts, string>> } {
  const errors: Partial<Record<keyof PriceTexts, string>> = {};
  const values: Partial<ModelPrices> = {};
  for (const key of Object.keys(PRICE_LABELS) as (keyof PriceTexts)[]) {
    const parsed = parseAmount(texts[key], token, { allowZero: true });
    if (parsed.ok) values[key] = parsed.value;
    else errors[key] = parsed.error;
  }
  return Object.keys(errors).length === 0 ? { prices: values as ModelPrices, errors } : { errors };
}

export function PriceFields({ texts, onChange, errors, token, disabled }: { texts: PriceTexts; onChange(texts: PriceTexts): void; errors: Partial<Record<keyof PriceTexts, string>>; token: TokenInfo; disabled?: boolean }) {
  return (
    <fieldset>
      <legend>Prices in {token.symbol} per million tokens</legend>
      {(Object.keys(PRICE_LABELS) as (keyof PriceTexts)[]).map((key) => (
        <Field
          key={key}
          label={PRICE_LABELS[key]}
          inputMode="decimal"
          autoComplete="off"
          value={texts[key]}
          onChange={(event) => onChange({ ...texts, [key]: event.target.value })}
          error={errors[key]}
          disabled={disabled}
          hint={key === "cachedInput" ? "For prompt tokens served from the provider's cache; usually below the input price." : undefined}
        />
      ))}
    </fieldset>
  );
}

export function formatPrices(prices: ModelPrices, token: TokenInfo): string {
  return `${formatAmount(prices.input, token)} in · ${formatAmount(prices.cachedInput, token)} cached · ${formatAmount(prices.output, token)} out`;
}
