/** The key's (or read session's) buyer's usage records with their receipts and settlement status (`GET /v1/usage`), or the CSV export. */
import { bearerOf, gatewayRequest, type ReadCredential } from "../internal/gateway-request";
import type { TollgateGatewayClient } from "../tollgate-client";
import type { ReceiptEnvelope } from "../../server/chain/receipt-envelope";

export interface UsageFilters {
  keyId?: string;
  tag?: string;
  model?: string;
  /** Unix seconds, inclusive. */
  from?: number;
  to?: number;
  /** Records after this sequence number (paging). */
  after?: bigint;
  limit?: number;
}
/** With an API key or a read session (`openSession`): the records of all the buyer's keys either way. */
export type GetUsageParameters = UsageFilters &
  ReadCredential & {
    /** JSON only: each call's retained request and response bytes (base64), where the gateway keeps them. */
    includeContent?: boolean;
  };
export interface UsageRow {
  sequence: string;
  served_at: number;
  model: string;
  key_id: string;
  tags: string[];
  cost: string;
  status: "settled" | "unsettled";
  receipt?: ReceiptEnvelope;
  [more: string]: unknown;
}
export interface GetUsageReturnType {
  object: "list";
  buyer: string;
  total_cost: string;
  has_more: boolean;
  data: UsageRow[];
}
export type GetUsageErrorType = Error;

function usageQuery(filters: UsageFilters, format: "json" | "csv"): string {
  const query = new URLSearchParams({ format });
  const put = (name: string, value: string | number | bigint | undefined) => value !== undefined && query.set(name, String(value));
  put("key_id", filters.keyId);
  put("tag", filters.tag);
  put("model", filters.model);
  put("from", filters.from);
  put("to", filters.to);
  put("after", filters.after);
  put("limit", filters.limit);
  return `/v1/usage?${query}`;
}

export async function getUsage(client: TollgateGatewayClient, { apiKey, session, includeContent, ...filters }: GetUsageParameters): Promise<GetUsageReturnType> {
  const path = usageQuery(filters, "json") + (includeContent ? "&include_content=true" : "");
  return gatewayRequest<GetUsageReturnType>(client, path, { method: "GET", apiKey: bearerOf({ apiKey, session }, "getUsage") });
}

/** The same records as CSV, one row per call. */
export async function getUsageCsv(client: TollgateGatewayClient, { apiKey, session, includeContent: _jsonOnly, ...filters }: GetUsageParameters): Promise<string> {
  return gatewayRequest<string>(client, usageQuery(filters, "csv"), { method: "GET", apiKey: bearerOf({ apiKey, session }, "getUsageCsv"), text: true });
}
