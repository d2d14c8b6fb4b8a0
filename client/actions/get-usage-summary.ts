/**
 * Where the money went (`GET /v1/usage/summary`): the buyer's calls, tokens and cost over [from, to) grouped by
 * any of key, tag, model, trace, day and month (UTC), the total counted once, and per workflow the retry tail,
 * first-try success, cost per completed run and what outcomes cost. With an API key or a read session.
 * Amounts are base-unit decimal strings, each with a `_formatted` twin in token units.
 */
import { z } from "zod";
import { bearerOf, gatewayRequest, type ReadCredential } from "../internal/gateway-request";
import { parseGatewayResponse } from "../internal/parse-response";
import type { TollgateGatewayClient } from "../tollgate-client";

export const USAGE_SUMMARY_DIMENSIONS = ["key", "tag", "model", "trace", "day", "month"] as const;
export type UsageSummaryDimension = (typeof USAGE_SUMMARY_DIMENSIONS)[number];

const units = z.string().regex(/^\d+$/, "base units");
const optionalUnits = units.nullable();

const totals = z.object({
  calls: z.number().int().nonnegative(),
  input_tokens: z.number().int().nonnegative(),
  cached_input_tokens: z.number().int().nonnegative(),
  output_tokens: z.number().int().nonnegative(),
  cost: units,
  cost_formatted: z.string(),
});

const outcomeFigures = z.object({
  outcomes: z.number().int().nonnegative(),
  successes: z.number().int().nonnegative(),
  failures: z.number().int().nonnegative(),
  cost: units,
  cost_formatted: z.string(),
  cost_per_outcome: optionalUnits,
  cost_per_outcome_formatted: z.string().nullable(),
  cost_per_successful_outcome: optionalUnits,
  cost_per_successful_outcome_formatted: z.string().nullable(),
});

const share = z.string().regex(/^\d+\.\d{4}$/).nullable();

export const usageSummarySchema = z.object({
  object: z.literal("usage.summary"),
  buyer: z.string(),
  token: z.object({ symbol: z.string(), decimals: z.number().int() }),
  filters: z.object({
    from: z.number().nullable(),
    to: z.number().nullable(),
    key_id: z.string().nullable(),
    tag: z.string().nullable(),
    model: z.string().nullable(),
  }),
  group_by: z.array(z.enum(USAGE_SUMMARY_DIMENSIONS)),
  total: totals,
  /** Each group's dimension values under key_id, tag, model, trace_id, day, month (null: no tag, no trace). */
  groups: z.array(
    totals.extend({
      key_id: z.string().optional(),
      tag: z.string().nullable().optional(),
      model: z.string().optional(),
      trace_id: z.string().nullable().optional(),
      day: z.string().optional(),
      month: z.string().optional(),
    }),
  ),
  /** Calls counted under more than one group (a key with several tags): the groups then add up to more than the total. */
  records_in_several_groups: z.number().int().nonnegative(),
  notes: z.array(z.string()),
  workflows: z.array(
    z.object({
      workflow: z.string(),
      calls: z.number().int().nonnegative(),
      cost: units,
      cost_formatted: z.string(),
      retry_calls: z.number().int().nonnegative(),
      retry_cost: units,
      retry_cost_formatted: z.string(),
      retry_cost_share: share,
      runs: z.number().int().nonnegative(),
      runs_cost: units,
      runs_cost_formatted: z.string(),
      successful_runs: z.number().int().nonnegative(),
      first_try_successes: z.number().int().nonnegative(),
      first_try_success_rate: share,
      cost_per_completed_run: optionalUnits,
      cost_per_completed_run_formatted: z.string().nullable(),
      outcomes: z.array(outcomeFigures.extend({ type: z.string(), by_day: z.array(outcomeFigures.extend({ day: z.string() })) })),
    }),
  ),
  /**
   * What routing (`auto`, the provider's aliases) saved against each policy's dearest model for the same counts.
   * `whole_range`: a key, tag or model filter was given, but these figures cover every routed call in the range.
   */
  routing: z.object({
    routed_calls: z.number().int().nonnegative(),
    cost: units,
    cost_formatted: z.string(),
    dearest_cost: units,
    dearest_cost_formatted: z.string(),
    saved: units,
    saved_formatted: z.string(),
    saved_share: share,
    whole_range: z.boolean(),
  }),
});

export interface UsageSummaryFilters {
  groupBy?: readonly UsageSummaryDimension[];
  keyId?: string;
  tag?: string;
  model?: string;
  /** Unix seconds, inclusive. */
  from?: number;
  /** Unix seconds, exclusive: a call served exactly then belongs to the next period. */
  to?: number;
}
export type GetUsageSummaryParameters = UsageSummaryFilters & ReadCredential;
export type GetUsageSummaryReturnType = z.infer<typeof usageSummarySchema>;
/** GatewayRequestError: refused (invalid_value, unknown_parameter, invalid_api_key), unreachable, or an answer of the wrong shape. */
export type GetUsageSummaryErrorType = Error;

/** The query string of a summary or log request; shared with getUsageLog. */
export function usageSummaryQuery(filters: UsageSummaryFilters, extra: Record<string, string | number | bigint | undefined> = {}): string {
  const query = new URLSearchParams();
  const put = (name: string, value: string | number | bigint | undefined) => value !== undefined && query.set(name, String(value));
  if (filters.groupBy && filters.groupBy.length > 0) put("group_by", filters.groupBy.join(","));
  put("key_id", filters.keyId);
  put("tag", filters.tag);
  put("model", filters.model);
  put("from", filters.from);
  put("to", filters.to);
  for (const [name, value] of Object.entries(extra)) put(name, value);
  return `/v1/usage/summary?${query}`;
}

export async function getUsageSummary(client: TollgateGatewayClient, { apiKey, session, ...filters }: GetUsageSummaryParameters): Promise<GetUsageSummaryReturnType> {
  const body = await gatewayRequest<unknown>(client, usageSummaryQuery(filters), { method: "GET", apiKey: bearerOf({ apiKey, session }, "getUsageSummary") });
  return parseGatewayResponse(usageSummarySchema, body, "usage summary");
}

/** The same groups as CSV: a `row` column ("group" or "total"), the dimensions, then calls, tokens and cost. */
export async function getUsageSummaryCsv(client: TollgateGatewayClient, { apiKey, session, ...filters }: GetUsageSummaryParameters): Promise<string> {
  return gatewayRequest<string>(client, usageSummaryQuery(filters, { format: "csv" }), {
    method: "GET",
    apiKey: bearerOf({ apiKey, session }, "getUsageSummaryCsv"),
    text: true,
  });
}
