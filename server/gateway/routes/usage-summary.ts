/**
 * `GET /v1/usage/summary` (API key or read session, like `/v1/usage`): where the buyer's money went over [from, to).
 *
 * - default view: calls, tokens (in, cached, out) and cost totalled by any of `group_by=key,tag,model,trace,day,month`
 *   (UTC), the grand total counted once, and per workflow the retry tail, first-try success, the cost per completed
 *   run and what outcomes cost (JSON; `format=csv` gives the group rows and a total row);
 * - `view=log`: the calls one by one in the console's form (time, key id, model, tokens, bill), paged with `after`.
 *
 * Amounts are base-unit decimal strings with a `_formatted` twin in token units. Unknown query parameters are
 * refused rather than ignored: a misspelt filter must not yield totals that look right.
 */
import type { Request, Response } from "express";
import { z } from "zod";
import {
  costPer,
  ratio,
  SUMMARY_DIMENSIONS,
  type OutcomeCosts,
  type SummaryDimension,
  type SummaryFilter,
  type UsageSummary,
  type UsageTotals,
  type WorkflowCosts,
} from "../../store/usage-store";
import type { RoutingSavings } from "../../store/routing-decisions";
import type { GatewayContext } from "../context";
import { invalidRequest } from "../errors";
import { csvDocument } from "../http/csv";
import { readerOf } from "../middleware/authenticate";

const MAX_LOG_LIMIT = 10_000;

/** The field each dimension's value is given under, in JSON and as a CSV column. */
const DIMENSION_FIELD: Record<SummaryDimension, string> = { key: "key_id", tag: "tag", model: "model", trace: "trace_id", day: "day", month: "month" };

const groupBy = z
  .string()
  .max(100)
  .transform((text, ctx) => {
    const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
    for (const name of names) {
      if (!(SUMMARY_DIMENSIONS as readonly string[]).includes(name)) {
        ctx.addIssue({ code: "custom", message: `'${name}' is not a dimension; group by any of ${SUMMARY_DIMENSIONS.join(", ")}` });
        return z.NEVER;
      }
    }
    if (new Set(names).size !== names.length) {
      ctx.addIssue({ code: "custom", message: "a dimension is named twice" });
      return z.NEVER;
    }
    return names as SummaryDimension[];
  });

const query = z
  .object({
    group_by: groupBy.default([]),
    key_id: z.string().max(64).optional(),
    tag: z.string().max(64).optional(),
    model: z.string().max(64).optional(),
    from: z.coerce.number().int().nonnegative().optional(),
    to: z.coerce.number().int().nonnegative().optional(),
    format: z.enum(["json", "csv"]).default("json"),
    view: z.enum(["summary", "log"]).default("summary"),
    after: z.string().regex(/^\d{1,20}$/, "a sequence number").optional(),
    limit: z.coerce.number().int().min(1).max(MAX_LOG_LIMIT).default(1000),
  })
  .strict();

type SummaryQuery = z.infer<typeof query>;

function parseQuery(raw: unknown): SummaryQuery {
  const parsed = query.safeParse(raw);
  if (parsed.success) {
    const q = parsed.data;
    if (q.from !== undefined && q.to !== undefined && q.from >= q.to) {
      throw invalidRequest(`The range [from, to) is empty: from (${q.from}) must be before to (${q.to}).`, "from", "invalid_value");
    }
    if (q.view === "log" && q.group_by.length > 0) throw invalidRequest("view=log lists calls one by one: leave out group_by.", "group_by", "invalid_value");
    for (const name of ["after", "limit"] as const) {
      if (q.view !== "log" && (raw as Record<string, unknown>)[name] !== undefined) {
        throw invalidRequest(`'${name}' pages the call log: use it with view=log.`, name, "invalid_value");
      }
    }
    return q;
  }
  const issue = parsed.error.issues[0];
  if (issue.code === "unrecognized_keys") {
    const name = issue.keys[0];
    throw invalidRequest(`Unknown query parameter '${name}'. This endpoint reads ${Object.keys(query.shape).join(", ")}.`, name, "unknown_parameter");
  }
  const param = issue.path.join(".");
  throw invalidRequest(`Invalid query parameter '${param}': ${issue.message}.`, param, "invalid_value");
}

function filterOf(q: SummaryQuery): SummaryFilter {
  return { keyId: q.key_id, tag: q.tag, modelName: q.model, from: q.from, to: q.to };
}

/** An amount as the API gives every amount: base units, and the same in token units. */
function money<N extends string>(ctx: GatewayContext, name: N, amount: bigint | null): Record<N | `${N}_formatted`, string | null> {
  return { [name]: amount === null ? null : amount.toString(), [`${name}_formatted`]: amount === null ? null : ctx.state.formatAmount(amount) } as Record<N | `${N}_formatted`, string | null>;
}

function totalsJson(ctx: GatewayContext, totals: UsageTotals) {
  return {
    calls: totals.calls,
    input_tokens: totals.inputTokens,
    cached_input_tokens: totals.cachedInputTokens,
    output_tokens: totals.outputTokens,
    ...money(ctx, "cost", totals.cost),
  };
}

function outcomeJson(ctx: GatewayContext, figures: Omit<OutcomeCosts, "type" | "byDay">) {
  return {
    outcomes: figures.outcomes,
    successes: figures.successes,
    failures: figures.failures,
    ...money(ctx, "cost", figures.cost),
    ...money(ctx, "cost_per_outcome", costPer(figures.cost, figures.outcomes)),
    // The failed runs' cost is carried by the successes: what one success really cost.
    ...money(ctx, "cost_per_successful_outcome", costPer(figures.cost, figures.successes)),
  };
}

function workflowJson(ctx: GatewayContext, w: WorkflowCosts) {
  return {
    workflow: w.workflow,
    calls: w.calls,
    ...money(ctx, "cost", w.cost),
    retry_calls: w.retryCalls,
    ...money(ctx, "retry_cost", w.retryCost),
    retry_cost_share: ratio(w.retryCost, w.cost),
    runs: w.runs,
    ...money(ctx, "runs_cost", w.runsCost),
    successful_runs: w.successfulRuns,
    first_try_successes: w.firstTrySuccesses,
    first_try_success_rate: ratio(w.firstTrySuccesses, w.runs),
    // Every run's cost, failed ones included, over the runs that succeeded.
    ...money(ctx, "cost_per_completed_run", costPer(w.runsCost, w.successfulRuns)),
    outcomes: w.outcomes.map((o) => ({ type: o.type, ...outcomeJson(ctx, o), by_day: o.byDay.map((d) => ({ day: d.day, ...outcomeJson(ctx, d) })) })),
  };
}

const TOTAL_COLUMNS = ["calls", "input_tokens", "cached_input_tokens", "output_tokens", "cost", "cost_formatted"] as const;

function summaryCsv(ctx: GatewayContext, summary: UsageSummary): string {
  const dimensions = summary.groupBy.map((dimension) => DIMENSION_FIELD[dimension]);
  const cells = (totals: UsageTotals) => {
    const json = totalsJson(ctx, totals);
    return TOTAL_COLUMNS.map((column) => String(json[column]));
  };
  // The `row` column tells the grand total (counted once) from the groups, so a sum over a column never counts it twice.
  const rows = summary.groups.map((group) => ["group", ...summary.groupBy.map((dimension) => group.key[dimension] ?? ""), ...cells(group.totals)]);
  rows.push(["total", ...dimensions.map(() => ""), ...cells(summary.total)]);
  return csvDocument(["row", ...dimensions, ...TOTAL_COLUMNS], rows);
}

function summaryView(ctx: GatewayContext, req: Request, res: Response, q: SummaryQuery): void {
  const buyer = readerOf(req);
  if (q.format === "csv") {
    const summary = ctx.store.usageSummary(buyer, q.group_by, filterOf(q));
    res.setHeader("content-type", "text/csv; charset=utf-8");
    res.setHeader("content-disposition", 'attachment; filename="tollgate-usage-summary.csv"');
    res.send(summaryCsv(ctx, summary));
    return;
  }
  const { summary, workflows } = ctx.store.usageReport(buyer, q.group_by, filterOf(q));
  res.json({
    object: "usage.summary",
    buyer,
    token: { symbol: ctx.state.token.symbol, decimals: ctx.state.token.decimals },
    filters: { from: q.from ?? null, to: q.to ?? null, key_id: q.key_id ?? null, tag: q.tag ?? null, model: q.model ?? null },
    group_by: q.group_by,
    total: totalsJson(ctx, summary.total),
    groups: summary.groups.map((group) => ({
      ...Object.fromEntries(summary.groupBy.map((dimension) => [DIMENSION_FIELD[dimension], group.key[dimension] ?? null])),
      ...totalsJson(ctx, group.totals),
    })),
    records_in_several_groups: summary.recordsInSeveralGroups,
    notes: [
      ...(q.group_by.includes("tag")
        ? ["A call whose key has several tags counts once under each tag: tag groups may add up to more than the total, which counts each call once."]
        : []),
      "Workflows are the keys' workflow:* tags (a call counts under each), or the key for a key without one. A run is a trace; it succeeded when it has a successful outcome. Outcomes count for their run whenever they were recorded; a run's cost is its calls in this range.",
    ],
    workflows: workflows.map((w) => workflowJson(ctx, w)),
    routing: routingJson(ctx, ctx.store.routingSavings(buyer, q.from, q.to), q),
  });
}

/**
 * What routing (`auto` and the provider's aliases) saved over the range against calling each policy's dearest
 * model for the same counts. Over the whole range whatever the key, tag or model filter: a note says so.
 */
function routingJson(ctx: GatewayContext, savings: RoutingSavings, q: SummaryQuery) {
  return {
    routed_calls: Number(savings.routedCalls),
    ...money(ctx, "cost", savings.cost),
    ...money(ctx, "dearest_cost", savings.dearestCost),
    ...money(ctx, "saved", savings.saved),
    saved_share: ratio(savings.saved, savings.dearestCost),
    whole_range: q.key_id !== undefined || q.tag !== undefined || q.model !== undefined,
  };
}

const LOG_COLUMNS = ["time", "sequence", "key_id", "model", "input_tokens", "cached_input_tokens", "output_tokens", "cost", "cost_formatted"] as const;

function logView(ctx: GatewayContext, req: Request, res: Response, q: SummaryQuery): void {
  const buyer = readerOf(req);
  const records = ctx.store.recordsOf(buyer, { ...filterOf(q), afterSequence: q.after === undefined ? undefined : BigInt(q.after), limit: q.limit });
  const entries = records.map((r) => ({
    time: new Date(r.servedAt * 1000).toISOString().replace(".000Z", "Z"),
    sequence: r.sequence.toString(),
    key_id: r.keyId,
    model: r.modelName,
    input_tokens: r.inputTokens,
    cached_input_tokens: r.cachedInputTokens,
    output_tokens: r.outputTokens,
    ...money(ctx, "cost", r.cost),
  }));
  const hasMore = records.length === q.limit;
  if (q.format === "csv") {
    res.setHeader("content-type", "text/csv; charset=utf-8");
    res.setHeader("content-disposition", 'attachment; filename="tollgate-usage-log.csv"');
    res.send(csvDocument(LOG_COLUMNS, entries.map((entry) => LOG_COLUMNS.map((column) => String(entry[column])))));
    return;
  }
  res.json({
    object: "list",
    buyer,
    has_more: hasMore,
    // Pass as `after` for the next page.
    next_after: hasMore ? entries[entries.length - 1].sequence : null,
    data: entries,
  });
}

export function usageSummary(ctx: GatewayContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const q = parseQuery(req.query);
    if (q.view === "log") logView(ctx, req, res, q);
    else summaryView(ctx, req, res, q);
  };
}
