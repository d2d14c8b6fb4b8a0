/**
 * The buyer's calls one by one in the console's form (`GET /v1/usage/summary?view=log`): time, key id, model,
 * tokens in, cached and out, and the bill; in sequence order, paged (pass `nextAfter` back as `after`).
 */
import { z } from "zod";
import { bearerOf, gatewayRequest, type ReadCredential } from "../internal/gateway-request";
import { parseGatewayResponse } from "../internal/parse-response";
import type { TollgateGatewayClient } from "../tollgate-client";
import { usageSummaryQuery, type UsageSummaryFilters } from "./get-usage-summary";

export const usageLogSchema = z.object({
  object: z.literal("list"),
  buyer: z.string(),
  has_more: z.boolean(),
  next_after: z.string().regex(/^\d+$/).nullable(),
  data: z.array(
    z.object({
      /** ISO 8601, UTC. */
      time: z.string(),
      sequence: z.string().regex(/^\d+$/),
      key_id: z.string(),
      model: z.string(),
      input_tokens: z.number().int().nonnegative(),
      cached_input_tokens: z.number().int().nonnegative(),
      output_tokens: z.number().int().nonnegative(),
      cost: z.string().regex(/^\d+$/),
      cost_formatted: z.string(),
    }),
  ),
});

export type GetUsageLogParameters = Omit<UsageSummaryFilters, "groupBy"> &
  ReadCredential & {
    /** Calls after this sequence number (the previous page's `next_after`). */
    after?: bigint | string;
    /** At most this many calls (1 to 10,000; the gateway's default is 1,000). */
    limit?: number;
  };
export type GetUsageLogReturnType = z.infer<typeof usageLogSchema>;
/** GatewayRequestError: refused, unreachable, or an answer of the wrong shape. */
export type GetUsageLogErrorType = Error;

export async function getUsageLog(client: TollgateGatewayClient, { apiKey, session, after, limit, ...filters }: GetUsageLogParameters): Promise<GetUsageLogReturnType> {
  const path = usageSummaryQuery(filters, { view: "log", after, limit });
  const body = await gatewayRequest<unknown>(client, path, { method: "GET", apiKey: bearerOf({ apiKey, session }, "getUsageLog") });
  return parseGatewayResponse(usageLogSchema, body, "usage log");
}

/** The same page as CSV: time, sequence, key_id, model, tokens, cost and cost_formatted. */
export async function getUsageLogCsv(client: TollgateGatewayClient, { apiKey, session, after, limit, ...filters }: GetUsageLogParameters): Promise<string> {
  const path = usageSummaryQuery(filters, { view: "log", format: "csv", after, limit });
  return gatewayRequest<string>(client, path, { method: "GET", apiKey: bearerOf({ apiKey, session }, "getUsageLogCsv"), text: true });
}
