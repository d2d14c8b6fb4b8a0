/** The three price fields of a model per million tokens, shared by listing a model and scheduling a price change. */
import { parsePrices, PRICE_KEYS, type PriceTexts } from "./price-texts";
import { Field } from "../../components/field";
import type { TokenInfo } from "../../lib/amounts";

const PRICE_LABELS: Record<keyof PriceTexts, string> = {
  input: "Input price per 1M tokens",
  cachedInput: "Cached input price per 1M tokens",
  output: "Output price per 1M tokens",
};

export function PriceFields({ texts, onChange, errors, token, disabled }: { texts: PriceTexts; onChange(texts: PriceTexts): void; errors: Partial<Record<keyof PriceTexts, string>>; token: TokenInfo; disabled?: boolean }) {
  return (
    <fieldset>
      <legend>Prices in {token.symbol} per million tokens</legend>
      {PRICE_KEYS.map((key) => (
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
