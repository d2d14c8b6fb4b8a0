/**
 * The audit's report: usage and money per buyer, provider, model and UTC day, summed from the rebuilt
 * records and draws. Draws are per buyer and batch on-chain, not per record; to split them over models and
 * days, each buyer's draw in a batch is attributed to its records in sequence order: credits to the records
 * the plan covers first, then balance, the rest shortfall. Per buyer and per provider the sums are exact
 * whatever the attribution. Browser-safe.
 */
import type { Address } from "viem";

export interface UsageTotals {
  records: number;
  inputTokens: bigint;
  cachedInputTokens: bigint;
  outputTokens: bigint;
  cost: bigint;
  fromBalance: bigint;
  coveredByCredits: bigint;
  shortfall: bigint;
}

export interface UsageReport {
  totals: UsageTotals;
  buyers: ({ buyer: Address } & UsageTotals)[];
  providers: ({ providerId: number } & UsageTotals)[];
  models: ({ modelId: number; providerId: number; name: string } & UsageTotals)[];
  /** `day` is the UTC date of `servedAt`, YYYY-MM-DD. */
  days: ({ day: string } & UsageTotals)[];
}

export function emptyTotals(): UsageTotals {
  return { records: 0, inputTokens: 0n, cachedInputTokens: 0n, outputTokens: 0n, cost: 0n, fromBalance: 0n, coveredByCredits: 0n, shortfall: 0n };
}
