/**
 * Money on the page: base units (bigint) shown with the token's decimals, and typed amounts parsed back to
 * base units exactly. No floats anywhere between the chain and the screen.
 */
import { formatUnits, parseUnits } from "viem";

export interface TokenInfo {
  symbol: string;
  decimals: number;
}

/** Groups the whole part in thousands and trims trailing zeros of the fraction: 1234567.5 → "1,234,567.5". */
export function formatUnitsGrouped(value: bigint, decimals: number, maxFractionDigits = decimals): string {
  const negative = value < 0n;
  const [whole, fraction = ""] = formatUnits(negative ? -value : value, decimals).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const shownFraction = fraction.slice(0, maxFractionDigits).replace(/0+$/, "");
  return `${negative ? "-" : ""}${grouped}${shownFraction ? `.${shownFraction}` : ""}`;
}

/** "12.5 tUSD". Every digit the token has is kept: a bill must add up to the unit. */
export function formatAmount(value: bigint, token: TokenInfo): string {
  return `${formatUnitsGrouped(value, token.decimals)} ${token.symbol}`;
}

export type ParsedAmount = { ok: true; value: bigint } | { ok: false; error: string };

/** A typed amount ("12.5", "1,000") as base units, or why it is not one. */
export function parseAmount(text: string, token: TokenInfo, options: { allowZero?: boolean } = {}): ParsedAmount {
  const cleaned = text.trim().replace(/[,_\s]/g, "");
  if (cleaned === "") return { ok: false, error: "Enter an amount." };
  if (!/^\d*\.?\d*$/.test(cleaned) || cleaned === ".") return { ok: false, error: `Enter a number such as 12.5 (${token.symbol}).` };
  const fraction = cleaned.split(".")[1] ?? "";
  if (fraction.length > token.decimals) return { ok: false, error: `${token.symbol} has ${token.decimals} decimals; use at most ${token.decimals} digits after the point.` };
  const value = parseUnits(cleaned, token.decimals);
  if (value === 0n && !options.allowZero) return { ok: false, error: "Enter an amount above zero." };
  return { ok: true, value };
}

/** A whole number (credits, seconds), or why it is not one. */
export function parseWhole(text: string, what: string, options: { min?: bigint; max?: bigint } = {}): ParsedAmount {
  const cleaned = text.trim().replace(/[,_\s]/g, "");
  if (!/^\d+$/.test(cleaned)) return { ok: false, error: `Enter ${what} as a whole number.` };
  const value = BigInt(cleaned);
  if (options.min !== undefined && value < options.min) return { ok: false, error: `Enter at least ${options.min} ${what}.` };
  if (options.max !== undefined && value > options.max) return { ok: false, error: `Enter at most ${options.max} ${what}.` };
  return { ok: true, value };
}

/** Price per million tokens, as the market lists it: "2.5 tUSD / 1M". */
export function formatPerMillion(value: bigint, token: TokenInfo): string {
  return `${formatAmount(value, token)} / 1M`;
}
