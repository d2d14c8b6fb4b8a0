/**
 * Token amounts as people type them ("12.5") and as the chain holds them (12500000n for a 6-decimal
 * token). Parsing is exact string arithmetic: a float would round 0.1 + 0.2 and lose base units.
 */
import { CliError } from "./errors";

const MAX_UINT256 = 2n ** 256n - 1n;

export interface TokenUnits {
  decimals: number;
  symbol: string;
}

export interface ParseAmountOptions {
  /** What the amount is for, named in error messages ("deposit amount", "--input"). */
  what?: string;
  /** Zero is a valid value (e.g. a free cached-input price); most amounts must be positive. */
  allowZero?: boolean;
}

/** "12.5" → 12500000n for 6 decimals. Rejects negatives, exponents, more decimals than the token has. */
export function parseAmount(text: string, token: TokenUnits, options: ParseAmountOptions = {}): bigint {
  const what = options.what ?? "amount";
  const trimmed = text.trim();
  const example = `e.g. "12.5" for 12.5 ${token.symbol}`;
  if (trimmed.startsWith("-")) {
    throw new CliError(`${what} "${text}" is negative`, `amounts are positive numbers of ${token.symbol}, ${example}`);
  }
  const match = /^(\d*)(?:\.(\d*))?$/.exec(trimmed);
  if (!match || (match[1] === "" && (match[2] ?? "") === "")) {
    throw new CliError(`${what} "${text}" is not a number`, `write it in ${token.symbol} with a dot for decimals, ${example}`);
  }
  const whole = match[1] === "" ? "0" : match[1];
  const fraction = (match[2] ?? "").replace(/0+$/, "");
  if (fraction.length > token.decimals) {
    throw new CliError(
      `${what} "${text}" has ${fraction.length} decimal places; ${token.symbol} has ${token.decimals}`,
      `the smallest amount of ${token.symbol} is ${formatAmount(1n, token)}; round to ${token.decimals} decimal places`,
    );
  }
  const units = BigInt(whole) * 10n ** BigInt(token.decimals) + BigInt(fraction.padEnd(token.decimals, "0") || "0");
  if (units > MAX_UINT256) throw new CliError(`${what} "${text}" is too large`, "it must fit in a uint256");
  if (units === 0n && !options.allowZero) throw new CliError(`${what} must be more than zero`, `e.g. "1" for 1 ${token.symbol}`);
  return units;
}

/** 12500000n → "12.5" for 6 decimals: exact, trailing zeros dropped, no grouping so it parses back. */
export function formatUnitsExact(value: bigint, decimals: number): string {
  const sign = value < 0n ? "-" : "";
  const abs = value < 0n ? -value : value;
  const base = 10n ** BigInt(decimals);
  const whole = abs / base;
  const fraction = (abs % base).toString().padStart(decimals, "0").replace(/0+$/, "");
  return `${sign}${whole}${fraction ? `.${fraction}` : ""}`;
}

/** 12500000n → "12.5 tUSD". */
export function formatAmount(value: bigint, token: TokenUnits): string {
  return `${formatUnitsExact(value, token.decimals)} ${token.symbol}`;
}
