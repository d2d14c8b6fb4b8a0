/** The usage chart's data: UTC days and one series per model, summed in bigint from the audit's rows per day and model. */
import type { ModelDayUsage } from "../../../../client";

export type Measure = "tokens" | "value";

/** The chart's days and one series per model, in tokens (input + output) or in value, from the audit's rows per day and model. */
export function servedByModelAndDay(usage: readonly ModelDayUsage[], measure: Measure): { labels: string[]; series: { name: string; values: bigint[] }[] } {
  const labels = [...new Set(usage.map((row) => row.day))].sort();
  const byModel = new Map<number, { name: string; values: bigint[] }>();
  for (const row of usage) {
    let entry = byModel.get(row.modelId);
    if (!entry) byModel.set(row.modelId, (entry = { name: row.name, values: labels.map(() => 0n) }));
    entry.values[labels.indexOf(row.day)] += measure === "tokens" ? row.inputTokens + row.outputTokens : row.cost;
  }
  return { labels, series: [...byModel.entries()].sort(([a], [b]) => a - b).map(([, entry]) => entry) };
}
