/**
 * Spend per day as stacked bars, grouped by model, key or tag. A call with several tags counts under each
 * of them (the hint says so), one with none under "(no tag)". Sums are bigints; only the bars are floats.
 */
import { useMemo, useState } from "react";
import { StackedBarChart } from "../../components/chart";
import { SelectField } from "../../components/field";
import { useApp } from "../../app-state";
import { spendByDay, type GroupBy } from "./spend-by-day";
import type { ShownUsageRow } from "./usage-rows";

export function SpendChart({ rows, truncated, keyLabel }: { rows: readonly ShownUsageRow[]; truncated: boolean; keyLabel(id: string): string }) {
  const { token } = useApp();
  const [groupBy, setGroupBy] = useState<GroupBy>("model");
  const { labels, series } = useMemo(() => spendByDay(rows, groupBy, keyLabel), [rows, groupBy, keyLabel]);
  return (
    <>
      <div className="group-by">
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
      </div>
      {rows.length === 0 ? (
        <p className="empty">No spend in this range.</p>
      ) : (
        <StackedBarChart title={`Spend per day by ${groupBy === "key" ? "API key" : groupBy}`} labels={labels} series={series} token={token} />
      )}
      {truncated && <p className="field-hint">The chart covers the first {rows.length.toLocaleString()} calls of this range; narrow the dates to see the rest.</p>}
    </>
  );
}
