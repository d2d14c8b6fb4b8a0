/**
 * Where a buyer's money went: its records over a half-open time range [from, to), totalled by any combination
 * of key, tag, model, trace, UTC day and UTC month; and per workflow, the retry tail (what calls that repeated
 * an earlier one cost), first-try success and the cost of a completed run, priced against the outcomes the
 * buyer reported (outcomes.ts).
 *
 * Costs are decimal TEXT that can exceed int64 (an 18-decimal token's amounts do), so SQL never adds them:
 * the rows are iterated with only the columns a report needs and summed as bigint here.
 */
import type Database from "better-sqlite3";
import { getAddress, type Address } from "viem";
import { decodeAmount } from "./migrations";
import type { StoredOutcome } from "./outcomes";

export const SUMMARY_DIMENSIONS = ["key", "tag", "model", "trace", "day", "month"] as const;
export type SummaryDimension = (typeof SUMMARY_DIMENSIONS)[number];

/** Which records a report covers; filters combine with AND. */
export interface SummaryFilter {
  keyId?: string;
  /** Exact match against one of the record's tags. */
  tag?: string;
  modelName?: string;
  /** servedAt >= from (unix seconds). */
  from?: number;
  /** servedAt < to: a record served exactly at `to` belongs to the next period. */
  to?: number;
}

export interface UsageTotals {
  calls: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  cost: bigint;
}

/** One group's values, by dimension: null where the record has none (no tag, no trace). */
export type GroupKey = Partial<Record<SummaryDimension, string | null>>;

export interface SummaryGroup {
  key: GroupKey;
  totals: UsageTotals;
}

export interface UsageSummary {
  groupBy: SummaryDimension[];
  /** Every record counted once, whatever the grouping. */
  total: UsageTotals;
  groups: SummaryGroup[];
  /**
   * Records counted under more than one group (only grouping by tag can do that: a record with two tags counts
   * under each), so the groups' totals exceed `total` by what these records add more than once.
   */
  recordsInSeveralGroups: number;
}

/** An outcome type's figures within one workflow: the cost of the runs that reported it, failed runs included. */
export interface OutcomeFigures {
  outcomes: number;
  successes: number;
  failures: number;
  /** The cost of every run with an outcome of this type, failed ones included. */
  cost: bigint;
}

export interface OutcomeCosts extends OutcomeFigures {
  type: string;
  /** By the UTC day the outcome was recorded, ascending. */
  byDay: (OutcomeFigures & { day: string })[];
}

/**
 * One workflow: the records of keys tagged `workflow:<name>` (under each such tag), or of a key without one
 * (named `key:<id>`). A run is a trace; a run succeeded when it has a successful outcome of any type.
 */
export interface WorkflowCosts {
  workflow: string;
  calls: number;
  cost: bigint;
  /** Calls marked as repeating an earlier one (`retry_of` set) and what they cost. */
  retryCalls: number;
  retryCost: bigint;
  runs: number;
  /** What the runs' calls cost (calls without a trace belong to no run). */
  runsCost: bigint;
  successfulRuns: number;
  /** Successful runs none of whose calls was a retry. */
  firstTrySuccesses: number;
  outcomes: OutcomeCosts[];
}

const EMPTY_TOTALS = (): UsageTotals => ({ calls: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, cost: 0n });

type SummaryRow = {
  key_id: string;
  tags: string;
  model_name: string;
  served_at: bigint;
  input_tokens: bigint;
  cached_input_tokens: bigint;
  output_tokens: bigint;
  cost: string;
  trace_id?: string | null;
  retry_of?: bigint | null;
};

/** UTC day and month of a unix time, cached per day: a month of records spans few. */
class CalendarCache {
  private readonly days = new Map<number, string>();
  day(seconds: number): string {
    const index = Math.floor(seconds / 86_400);
    let day = this.days.get(index);
    if (day === undefined) {
      day = new Date(index * 86_400_000).toISOString().slice(0, 10);
      this.days.set(index, day);
    }
    return day;
  }
  month(seconds: number): string {
    return this.day(seconds).slice(0, 7);
  }
}

function addTo(totals: UsageTotals, row: SummaryRow, cost: bigint): void {
  totals.calls += 1;
  totals.inputTokens += Number(row.input_tokens);
  totals.cachedInputTokens += Number(row.cached_input_tokens);
  totals.outputTokens += Number(row.output_tokens);
  totals.cost += cost;
}

/** Compares group keys dimension by dimension; null (no tag, no trace) sorts last. */
function compareKeys(groupBy: readonly SummaryDimension[]) {
  return (a: SummaryGroup, b: SummaryGroup): number => {
    for (const dimension of groupBy) {
      const x = a.key[dimension] ?? null;
      const y = b.key[dimension] ?? null;
      if (x === y) continue;
      if (x === null) return 1;
      if (y === null) return -1;
      return x < y ? -1 : 1;
    }
    return 0;
  };
}

/** The workflows a record counts under: each `workflow:` tag of its key, or its key when it has none. */
export function workflowsOf(tags: readonly string[], keyId: string): string[] {
  const workflows = tags.filter((tag) => tag.startsWith("workflow:"));
  return workflows.length > 0 ? workflows : [`key:${keyId}`];
}

export class UsageSummaries {
  private readonly statements = new Map<string, Database.Statement<[Record<string, unknown>], SummaryRow>>();

  constructor(private readonly db: Database.Database) {}

  /** Totals of the buyer's records matching `filter`, grouped by `groupBy` (in that order; none: the total only). */
  summarize(buyer: Address, groupBy: readonly SummaryDimension[], filter: SummaryFilter = {}): UsageSummary {
    const calendar = new CalendarCache();
    const total = EMPTY_TOTALS();
    const groups = new Map<string, SummaryGroup>();
    let recordsInSeveralGroups = 0;
    for (const row of this.rows(buyer, filter, groupBy.includes("trace"))) {
      const cost = decodeAmount(row.cost);
      addTo(total, row, cost);
      // The group keys of this record: one, or one per tag when grouping by tag.
      let keys: GroupKey[] = [{}];
      for (const dimension of groupBy) {
        const values = this.valuesOf(row, dimension, calendar);
        keys = keys.flatMap((key) => values.map((value) => ({ ...key, [dimension]: value })));
      }
      if (keys.length > 1) recordsInSeveralGroups += 1;
      for (const key of keys) {
        const id = JSON.stringify(groupBy.map((dimension) => key[dimension]));
        let group = groups.get(id);
        if (!group) groups.set(id, (group = { key, totals: EMPTY_TOTALS() }));
        addTo(group.totals, row, cost);
      }
    }
    return { groupBy: [...groupBy], total, groups: [...groups.values()].sort(compareKeys(groupBy)), recordsInSeveralGroups };
  }

  /**
   * Per workflow: cost, retry tail, runs and their success, and the outcomes' cost, over the records matching
   * `filter`. `outcomes` are the buyer's (each counts for its trace whenever it was recorded).
   */
  workflows(buyer: Address, outcomes: readonly StoredOutcome[], filter: SummaryFilter = {}): WorkflowCosts[] {
    type Building = Omit<WorkflowCosts, "runs" | "runsCost" | "successfulRuns" | "firstTrySuccesses" | "outcomes"> & { traces: Map<string, bigint> };
    const workflows = new Map<string, Building>();
    const retriedTraces = new Set<string>();
    for (const row of this.rows(buyer, filter, true)) {
      const cost = decodeAmount(row.cost);
      const retry = row.retry_of !== null && row.retry_of !== undefined;
      const trace = row.trace_id ?? null;
      if (retry && trace !== null) retriedTraces.add(trace);
      for (const name of workflowsOf(JSON.parse(row.tags) as string[], row.key_id)) {
        let workflow = workflows.get(name);
        if (!workflow) workflows.set(name, (workflow = { workflow: name, calls: 0, cost: 0n, retryCalls: 0, retryCost: 0n, traces: new Map() }));
        workflow.calls += 1;
        workflow.cost += cost;
        if (retry) {
          workflow.retryCalls += 1;
          workflow.retryCost += cost;
        }
        if (trace !== null) workflow.traces.set(trace, (workflow.traces.get(trace) ?? 0n) + cost);
      }
    }

    const outcomesByTrace = new Map<string, StoredOutcome[]>();
    for (const outcome of outcomes) {
      const ofTrace = outcomesByTrace.get(outcome.traceId);
      if (ofTrace) ofTrace.push(outcome);
      else outcomesByTrace.set(outcome.traceId, [outcome]);
    }
    const succeeded = (trace: string) => (outcomesByTrace.get(trace) ?? []).some((outcome) => outcome.success);
    const calendar = new CalendarCache();

    return [...workflows.values()]
      .map(({ traces, ...workflow }): WorkflowCosts => {
        let runsCost = 0n;
        let successfulRuns = 0;
        let firstTrySuccesses = 0;
        const byType = new Map<string, { figures: OutcomeFigures; byDay: Map<string, OutcomeFigures> }>();
        for (const [trace, cost] of traces) {
          runsCost += cost;
          if (succeeded(trace)) {
            successfulRuns += 1;
            if (!retriedTraces.has(trace)) firstTrySuccesses += 1;
          }
          for (const outcome of outcomesByTrace.get(trace) ?? []) {
            let entry = byType.get(outcome.type);
            if (!entry) byType.set(outcome.type, (entry = { figures: emptyFigures(), byDay: new Map() }));
            const day = calendar.day(outcome.recordedAt);
            let dayFigures = entry.byDay.get(day);
            if (!dayFigures) entry.byDay.set(day, (dayFigures = emptyFigures()));
            for (const figures of [entry.figures, dayFigures]) countOutcome(figures, outcome, cost);
          }
        }
        return {
          ...workflow,
          runs: traces.size,
          runsCost,
          successfulRuns,
          firstTrySuccesses,
          outcomes: [...byType.entries()]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([type, { figures, byDay }]) => ({
              type,
              ...figures,
              byDay: [...byDay.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([day, dayFigures]) => ({ day, ...dayFigures })),
            })),
        };
      })
      .sort((a, b) => (a.workflow < b.workflow ? -1 : 1));
  }

  private valuesOf(row: SummaryRow, dimension: SummaryDimension, calendar: CalendarCache): (string | null)[] {
    switch (dimension) {
      case "key":
        return [row.key_id];
      case "tag": {
        const tags = JSON.parse(row.tags) as string[];
        return tags.length > 0 ? [...new Set(tags)] : [null];
      }
      case "model":
        return [row.model_name];
      case "trace":
        return [row.trace_id ?? null];
      case "day":
        return [calendar.day(Number(row.served_at))];
      case "month":
        return [calendar.month(Number(row.served_at))];
    }
  }

  /** The matching rows, one at a time, with only the columns reports read. */
  private rows(buyer: Address, filter: SummaryFilter, withAttribution: boolean): IterableIterator<SummaryRow> {
    const params: Record<string, unknown> = { buyer: getAddress(buyer) };
    if (filter.keyId !== undefined) params.keyId = filter.keyId;
    if (filter.tag !== undefined) params.tag = filter.tag;
    if (filter.modelName !== undefined) params.modelName = filter.modelName;
    if (filter.from !== undefined) params.from = filter.from;
    if (filter.to !== undefined) params.to = filter.to;
    return this.statement(params, withAttribution).iterate(params);
  }

  /** One prepared statement per combination of filters, as usage-records.ts keeps them. */
  private statement(params: Record<string, unknown>, withAttribution: boolean) {
    const shape = `${Object.keys(params).sort().join(",")}|${withAttribution}`;
    let stmt = this.statements.get(shape);
    if (!stmt) {
      const where = ["r.buyer = @buyer"];
      if ("keyId" in params) where.push("r.key_id = @keyId");
      if ("tag" in params) where.push("EXISTS (SELECT 1 FROM json_each(r.tags) WHERE value = @tag)");
      if ("modelName" in params) where.push("r.model_name = @modelName");
      if ("from" in params) where.push("r.served_at >= @from");
      if ("to" in params) where.push("r.served_at < @to");
      const columns = "r.key_id, r.tags, r.model_name, r.served_at, r.input_tokens, r.cached_input_tokens, r.output_tokens, r.cost";
      const sql = withAttribution
        ? `SELECT ${columns}, a.trace_id, a.retry_of FROM usage_records r LEFT JOIN call_attribution a ON a.sequence = r.sequence WHERE ${where.join(" AND ")}`
        : `SELECT ${columns} FROM usage_records r WHERE ${where.join(" AND ")}`;
      stmt = this.db.prepare<[Record<string, unknown>], SummaryRow>(sql).safeIntegers(true);
      this.statements.set(shape, stmt);
    }
    return stmt;
  }
}

function emptyFigures(): OutcomeFigures {
  return { outcomes: 0, successes: 0, failures: 0, cost: 0n };
}

function countOutcome(figures: OutcomeFigures, outcome: StoredOutcome, runCost: bigint): void {
  figures.outcomes += 1;
  if (outcome.success) figures.successes += 1;
  else figures.failures += 1;
  figures.cost += runCost;
}

/** `amount / count` in base units, rounded half up; null when there is nothing to divide by. */
export function costPer(amount: bigint, count: number | bigint): bigint | null {
  const n = BigInt(count);
  if (n === 0n) return null;
  return (amount * 2n + n) / (2n * n);
}

/** `part / whole` as a decimal string with `digits` places ("0.2500"), rounded half up; null for a zero whole. */
export function ratio(part: bigint | number, whole: bigint | number, digits = 4): string | null {
  const p = BigInt(part);
  const w = BigInt(whole);
  if (w === 0n) return null;
  const scale = 10n ** BigInt(digits);
  const scaled = (p * scale * 2n + w) / (2n * w);
  const fraction = (scaled % scale).toString().padStart(digits, "0");
  return `${scaled / scale}.${fraction}`;
}
