/**
 * Spend per day as stacked bars, grouped by model, key or tag. A call with several tags counts under each
 * of them (the hint says so), one with none under "(no tag)". Sums are bigints; only the bars are floats.
 */
import { useMemo, useState } from "react";
import { StackedBarChart, type StackedSeries } from "../../components/chart";
import { SelectField } from "../../components/field";
import { useApp } from "../../app-state";
import type { ShownUsageRow } from "./usage-rows";

type GroupBy = "model" | "key" | "tag";

/** `YYYY-MM-DD` of a unix time in the reader's time zone. */
export function dayOf(unixSeconds: number): string {
  const date = new Date(unixSeconds * 1000);
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

export function spendByDay(rows: readonly ShownUsageRow[], groupBy: GroupBy, keyLabel: (id: string) => string): { labels: string[]; series: StackedSeries[] } {
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

export function SpendChart({ rows, truncated, keyLabel }: { rows: readonly ShownUsageRow[]; truncated: boolean; keyLabel(id: string): string }) {
  const { token } = useApp();
  const [groupBy, setGroupBy] = useState<GroupBy>("model");
  const { labels, series } = useMemo(() => spendByDay(rows, groupBy, keyLabel), [rows, groupBy, keyLabel]);
  return (
    <>
      <SelectField
        label="Group spend by"
        value={groupBy}
        onChange={(value) => setGroupBy(value as GroupBy)}
        options={[
          { value: "model", label: "Model" },
          { value: "key", label: "API key" },
          { value: "tag", label: "Tag" },
        ]}
        hint={groupBy === "tag" ? "A call with several tags counts under each of them." : undefined}
      />
      {rows.length === 0 ? (
        <p className="empty">No spend in this range.</p>
      ) : (
        <StackedBarChart title={`Spend per day by ${groupBy === "key" ? "API key" : groupBy}`} labels={labels} series={series} token={token} />
      )}
      {truncated && <p className="field-hint">The chart covers the first {rows.length.toLocaleString()} calls of this range; narrow the dates to see the rest.</p>}
    </>
  );
}
