/**
 * What a record costs: the one TypeScript copy of the contract's formula (`UsageSettlement._chargeRecords`).
 * All amounts are bigint base units of the payment token; never a float.
 */

export const TOKENS_PER_PRICE = 1_000_000n;

/** Prices per million tokens, in payment-token base units. */
export interface ModelPrices {
  input: bigint;
  cachedInput: bigint;
  output: bigint;
}

export interface TokenCounts {
  /** All prompt tokens, cached ones included. */
  inputTokens: number;
  /** The part of `inputTokens` served from the provider's cache. */
  cachedInputTokens: number;
  /** Completion tokens, reasoning tokens included. */
  outputTokens: number;
}

/** ceil(((input - cached) * inputPrice + cached * cachedPrice + output * outputPrice) / 1e6) */
export function recordCost(counts: TokenCounts, prices: ModelPrices): bigint {
  const input = BigInt(counts.inputTokens);
  const cached = BigInt(counts.cachedInputTokens);
  const output = BigInt(counts.outputTokens);
  if (cached > input) throw new RangeError(`cachedInputTokens (${cached}) exceeds inputTokens (${input})`);
  const weighted = (input - cached) * prices.input + cached * prices.cachedInput + output * prices.output;
  return (weighted + TOKENS_PER_PRICE - 1n) / TOKENS_PER_PRICE;
}

/** The protocol fee on an amount drawn from a balance, rounded up as the contract does. */
export function protocolFeeOn(amount: bigint, feeBps: bigint): bigint {
  return (amount * feeBps + 9_999n) / 10_000n;
}
