/**
 * `tollgate usage …`: where the money went, from the gateway (uses --gateway).
 *
 *   report    totals of calls, tokens and cost grouped by key, tag, model, trace, day or month over [--from, --to),
 *             per workflow the retry tail, first-try success and cost per completed run and outcome, as a table
 *             (or --json, --csv); --log lists the calls one by one (time, key, model, tokens, bill).
 *   outcome   records what a run (a trace) produced, for the report's cost per outcome.
 *
 * Reads with TOLLGATE_API_KEY, or without one by a read session the wallet opens (and ends) for this run. Amounts
 * come formatted from the gateway, so the report needs no RPC.
 */
import type { Command } from "commander";
import { zeroAddress } from "viem";
import {
  closeSession,
  getUsageLog,
  getUsageLogCsv,
  getUsageSummary,
  getUsageSummaryCsv,
  openSession,
  recordOutcome,
  USAGE_SUMMARY_DIMENSIONS,
  type GetUsageSummaryReturnType,
  type TollgateGatewayClient,
  type UsageSummaryDimension,
} from "../../client";
import { formatTimestamp, parseInteger, parseList, parseTimestamp } from "./arguments";
import { ENV, envValue, examples, type CliContext, type ContextFactory } from "./context";
import { CliError } from "./errors";

interface ReportOptions {
  groupBy?: string;
  from?: string;
  to?: string;
  keyId?: string;
  tag?: string;
  model?: string;
  csv?: boolean;
  log?: boolean;
  after?: string;
  limit?: string;
}

/** Reads need the gateway only: no chain, no deployment file. */
function gatewayOnly(ctx: CliContext): TollgateGatewayClient {
  return { gateway: { url: ctx.options.gateway }, contracts: { chainId: 0, tollgate: zeroAddress } };
}

/** Runs `read` with TOLLGATE_API_KEY, or with a read session the wallet opens now and ends afterwards. */
async function withReader<T>(ctx: CliContext, read: (client: TollgateGatewayClient, credential: { apiKey: string } | { session: string }) => Promise<T>): Promise<T> {
  const apiKey = envValue(ctx.io.env, ENV.apiKey);
  if (apiKey) return read(gatewayOnly(ctx), { apiKey });
  if (!envValue(ctx.io.env, ENV.privateKey) && !envValue(ctx.io.env, ENV.keystore)) {
    throw new CliError(
      `reading usage needs ${ENV.apiKey} (any of your API keys) or your wallet's key`,
      `export ${ENV.apiKey}=tg_…, or ${ENV.privateKey} / ${ENV.keystore} to open a read session with one signature`,
    );
  }
  const client = await ctx.gatewayClient();
  const { token } = await openSession(client);
  try {
    return await read(client, { session: token });
  } finally {
    await closeSession(client, { session: token }).catch(() => undefined);
  }
}

function parseGroupBy(text: string): UsageSummaryDimension[] {
  const names = parseList(text);
  for (const name of names) {
    if (!(USAGE_SUMMARY_DIMENSIONS as readonly string[]).includes(name)) {
      throw new CliError(`--group-by "${name}" is not a dimension`, `group by any of ${USAGE_SUMMARY_DIMENSIONS.join(", ")}, comma-separated (teams and workflows are key tags: --group-by tag)`);
    }
  }
  return names as UsageSummaryDimension[];
}

function parseRange(options: ReportOptions): { from?: number; to?: number } {
  const time = (text: string | undefined, flag: string) => {
    if (text === undefined) return undefined;
    if (text.trim() === "never") throw new CliError(`${flag} must be a time`, 'unix seconds or an ISO date, e.g. "2026-12-01"');
    return Number(parseTimestamp(text, flag, 2n ** 32n - 1n));
  };
  const from = time(options.from, "--from");
  const to = time(options.to, "--to");
  if (from !== undefined && to !== undefined && from >= to) {
    throw new CliError(`--from ${formatTimestamp(from)} is not before --to ${formatTimestamp(to)}`, "the range is [from, to): a call served exactly at --to belongs to the next period");
  }
  return { from, to };
}

/** Left-aligned text columns, right-aligned figures. */
function table(header: string[], rows: string[][], numeric: boolean[]): string[] {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i].length)));
  const line = (row: string[]) => row.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

const calls = (n: number) => `${n} call${n === 1 ? "" : "s"}`;
const percent = (share: string | null) => (share === null ? "n/a" : `${(Number(share) * 100).toFixed(2)}%`);

function printSummary(ctx: CliContext, summary: GetUsageSummaryReturnType, range: { from?: number; to?: number }): void {
  const symbol = summary.token.symbol;
  const money = (formatted: string | null) => (formatted === null ? "n/a" : `${formatted} ${symbol}`);
  const period = `${range.from === undefined ? "the first call" : formatTimestamp(range.from)} to ${range.to === undefined ? "now" : `${formatTimestamp(range.to)} (exclusive)`}`;
  ctx.out.say(`usage of ${summary.buyer} at ${ctx.options.gateway}, ${period}`);
  const fields: Record<UsageSummaryDimension, "key_id" | "tag" | "model" | "trace_id" | "day" | "month"> = { key: "key_id", tag: "tag", model: "model", trace: "trace_id", day: "day", month: "month" };
  const dimensions = summary.group_by;
  const header = [...dimensions.map((d) => fields[d]), "calls", "input", "cached", "output", `cost (${symbol})`];
  const figures = (t: GetUsageSummaryReturnType["total"]) => [String(t.calls), String(t.input_tokens), String(t.cached_input_tokens), String(t.output_tokens), t.cost_formatted];
  const rows = dimensions.length === 0 ? [] : summary.groups.map((g) => [...dimensions.map((d) => g[fields[d]] ?? "(none)"), ...figures(g)]);
  // The total row's label sits in the first dimension's column, or in a column of its own when there is none.
  if (dimensions.length === 0) header.unshift("");
  rows.push([...(dimensions.length === 0 ? ["total"] : dimensions.map((_, i) => (i === 0 ? "total" : ""))), ...figures(summary.total)]);
  const numeric = header.map((_, i) => i >= header.length - 5);
  for (const line of table(header, rows, numeric)) ctx.out.say(line);
  if (summary.records_in_several_groups > 0) {
    ctx.out.say(`note: ${summary.records_in_several_groups} calls count under more than one tag; the tag rows add up to more than the total, which counts each call once`);
  }
  const r = summary.routing;
  if (r.routed_calls > 0) {
    ctx.out.say(
      `routing: ${calls(r.routed_calls)} routed cost ${money(r.cost_formatted)}; at each policy's dearest model ${money(r.dearest_cost_formatted)}: ` +
        `saved ${money(r.saved_formatted)} (${percent(r.saved_share)})${r.whole_range ? " (every routed call in the range, whatever the filters)" : ""}`,
    );
  }
  if (summary.workflows.length === 0) return;
  ctx.out.say("");
  ctx.out.say("workflows (a run is a trace; it succeeded when it has a successful outcome):");
  for (const w of summary.workflows) {
    ctx.out.say(`  ${w.workflow}: ${calls(w.calls)}, ${money(w.cost_formatted)}`);
    ctx.out.say(`    retries: ${calls(w.retry_calls)}, ${money(w.retry_cost_formatted)} (${percent(w.retry_cost_share)} of the cost)`);
    ctx.out.say(
      `    runs: ${w.runs}, ${w.successful_runs} succeeded, ${w.first_try_successes} at the first try (${percent(w.first_try_success_rate)}); ` +
        `cost per completed run ${money(w.cost_per_completed_run_formatted)}`,
    );
    for (const o of w.outcomes) {
      ctx.out.say(`    ${o.type}: ${o.outcomes} (${o.successes} succeeded, ${o.failures} failed), ${money(o.cost_formatted)}, per success ${money(o.cost_per_successful_outcome_formatted)}`);
      for (const d of o.by_day) ctx.out.say(`      ${d.day}: ${d.outcomes} (${d.successes} succeeded), per success ${money(d.cost_per_successful_outcome_formatted)}`);
    }
  }
}

async function report(ctx: CliContext, options: ReportOptions): Promise<void> {
  if (options.csv && ctx.options.json) throw new CliError("--csv and --json are two formats: choose one");
  const range = parseRange(options);
  const filters = { ...range, keyId: options.keyId, tag: options.tag, model: options.model };
  if (options.log) {
    if (options.groupBy !== undefined) throw new CliError("--log lists calls one by one: leave out --group-by");
    const after = options.after === undefined ? undefined : parseInteger(options.after, "--after");
    const limit = options.limit === undefined ? undefined : Number(parseInteger(options.limit, "--limit", { min: 1n, max: 10_000n }));
    const page = { ...filters, after, limit };
    if (options.csv) {
      ctx.io.stdout.write(await withReader(ctx, (client, credential) => getUsageLogCsv(client, { ...page, ...credential })));
      return;
    }
    const log = await withReader(ctx, (client, credential) => getUsageLog(client, { ...page, ...credential }));
    const rows = log.data.map((e) => [e.time, e.key_id, e.model, String(e.input_tokens), String(e.cached_input_tokens), String(e.output_tokens), e.cost_formatted]);
    for (const line of table(["time", "key", "model", "input", "cached", "output", "bill"], rows, [false, false, false, true, true, true, true])) ctx.out.say(line);
    if (log.has_more) ctx.out.say(`more calls follow: run again with --after ${log.next_after}`);
    ctx.out.result(log);
    return;
  }
  if (options.after !== undefined || options.limit !== undefined) throw new CliError("--after and --limit page the call log: use them with --log");
  const groupBy = parseGroupBy(options.groupBy ?? DEFAULT_GROUP_BY);
  if (options.csv) {
    ctx.io.stdout.write(await withReader(ctx, (client, credential) => getUsageSummaryCsv(client, { ...filters, groupBy, ...credential })));
    return;
  }
  const summary = await withReader(ctx, (client, credential) => getUsageSummary(client, { ...filters, groupBy, ...credential }));
  printSummary(ctx, summary, range);
  ctx.out.result(summary);
}

async function outcome(ctx: CliContext, traceId: string, type: string, options: { success?: boolean; failure?: boolean; value?: string }): Promise<void> {
  if (options.success === options.failure) throw new CliError("say how the run ended: --success or --failure (one of them)");
  const apiKey = envValue(ctx.io.env, ENV.apiKey);
  if (!apiKey) throw new CliError(`recording an outcome needs ${ENV.apiKey}`, "export one of your API keys (the run's calls may have used any of them) as TOLLGATE_API_KEY");
  const recorded = await recordOutcome(gatewayOnly(ctx), { apiKey, traceId, type, success: options.success === true, value: options.value });
  ctx.out.say(`recorded ${recorded.type} (${recorded.success ? "success" : "failure"}${recorded.value === null ? "" : `, value ${recorded.value}`}) for run ${recorded.trace_id}`);
  ctx.out.result({ action: "usage-outcome", ...recorded });
}

const DEFAULT_GROUP_BY = "key,model";

export function registerUsage(program: Command, context: ContextFactory): void {
  const usage = program.command("usage").description("where the money went: usage reports and outcomes from the gateway (uses --gateway)");

  usage
    .command("report")
    .description(`calls, tokens and cost grouped over a time range, with the retry tail and cost per outcome per workflow; reads with ${ENV.apiKey} or a read session your wallet opens`)
    .option("--group-by <dimensions>", `comma-separated, any of ${USAGE_SUMMARY_DIMENSIONS.join(", ")} (default ${DEFAULT_GROUP_BY})`)
    .option("--from <time>", 'start, inclusive: unix seconds or an ISO date ("2026-12-01")')
    .option("--to <time>", "end, exclusive: a call served exactly then belongs to the next period")
    .option("--key-id <id>", "only this key's calls")
    .option("--tag <tag>", 'only calls of keys with this tag, e.g. "team:support"')
    .option("--model <name>", "only this model's calls")
    .option("--csv", "print the gateway's CSV (group rows and a total row; with --log, the calls)")
    .option("--log", "list the calls one by one: time, key, model, tokens in/cached/out, bill")
    .option("--after <sequence>", "with --log: the calls after this one (the page before said which)")
    .option("--limit <n>", "with --log: at most this many calls (default 1000)")
    .addHelpText(
      "after",
      examples(
        "tollgate usage report --group-by tag,month --from 2026-11-01 --to 2026-12-01",
        "tollgate usage report --group-by day --tag team:support --csv > support.csv",
        "tollgate usage report --log --key-id key_AbCdEf123456 --limit 50",
      ),
    )
    .action((options: ReportOptions, cmd: Command) => report(context(cmd), options));

  usage
    .command("outcome")
    .description(`record what a run (the trace its calls sent as x-tollgate-trace-id) produced; uses ${ENV.apiKey}`)
    .argument("<trace>", "the run's trace id")
    .argument("<type>", "the outcome, e.g. ticket_resolved")
    .option("--success", "the run achieved it")
    .option("--failure", "the run failed to")
    .option("--value <decimal>", 'your own measure of it, e.g. "12.5"')
    .addHelpText("after", examples("tollgate usage outcome run-2026-12-06-17 ticket_resolved --success --value 40"))
    .action((trace: string, type: string, options: { success?: boolean; failure?: boolean; value?: string }, cmd: Command) => outcome(context(cmd), trace, type, options));
}
