/** A row of `GET /v1/usage` as this page reads it: the fields the gateway sends beyond the client's `UsageRow`. */
import type { Hex } from "viem";
import type { GetUsageReturnType, UsageFilters, UsageRow } from "../../../../client";

export interface ShownUsageRow extends UsageRow {
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  settlement: { txHash: Hex; batchId: Hex } | null;
}

export type ShownUsage = Omit<GetUsageReturnType, "data"> & { data: ShownUsageRow[] };

/** The filters the page applies, as `/v1/usage` takes them (paging apart). */
export type PageFilters = Pick<UsageFilters, "keyId" | "model" | "tag" | "from" | "to">;
