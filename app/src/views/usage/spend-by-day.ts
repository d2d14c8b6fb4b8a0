/**
 * Spend per day and group (model, key or tag) summed in base units. A call with several tags counts under
 * each of them, one with none under "(no tag)". Days are the reader's local calendar days.
 */
import type { ShownUsageRow } from "./usage-rows";

/** One stack of the chart (the shape `StackedBarChart` takes). */
export interface SpendSeries {
  name: string;
  values: bigint[];
}

export type GroupBy = "model" | "key" | "tag";

/** `YYYY-MM-DD` of a unix time in the reader's time zone. */
export function dayOf(unixSeconds: number): string {
  const date = new Date(unixSeconds * 1000);
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

export function spendByDay(rows: readonly ShownUsageRow[], groupBy: GroupBy, keyLabel: (id: string) => string): { labels: string[]; series: SpendSeries[] } {
  const days = [...new Set(rows.map((row) => dayOf(row.served_at)))].sort();
  const groups = new Map<string, bigint[]>();
  for (const row of rows) {
    const names = groupBy === "model" ? [row.model] : groupBy === "key" ? [keyLabel(row.key_id)] : row.tags.length ? row.tags : ["(no tag)"];
    for (const name of names) {
      if (!groups.has(name)) groups.set(name, days.map(() => 0n));
      groups.get(name)![days.indexOf(dayOf(row.served_at))] += BigInt(row.cost);
    }
  }
  return { labels: days, series: [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([name, values]) => ({ name, values })) };
}

