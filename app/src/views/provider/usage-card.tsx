/**
 * Usage served per model and UTC day, from the records the chain audit rebuilt out of the settled batches'
 * signed data: tokens (input + output) or value (what the records cost at the prices in force when served).
 */
import { useMemo, useState } from "react";
import { useApp } from "../../app-state";
import { Card } from "../../components/card";
import { StackedBarChart } from "../../components/chart";
import { SelectField } from "../../components/field";
import type { ProviderDashboard } from "./load-provider-dashboard";

type Measure = "tokens" | "value";

export function servedByModelAndDay(dashboard: ProviderDashboard, measure: Measure): { labels: string[]; series: { name: string; values: bigint[] }[] } {
  const day = (servedAt: number) => new Date(servedAt * 1000).toISOString().slice(0, 10);
  const labels = [...new Set(dashboard.served.map((record) => day(record.servedAt)))].sort();
  const series = dashboard.models
    .map((model) => {
      const values = labels.map(() => 0n);
      for (const record of dashboard.served) if (record.modelId === model.modelId) values[labels.indexOf(day(record.servedAt))] += measure === "tokens" ? record.tokens : record.cost;
      return { name: model.name, values };
    })
    .filter((entry) => entry.values.some((value) => value > 0n));
  return { labels, series };
}

export function UsageCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const [measure, setMeasure] = useState<Measure>("tokens");
  const { labels, series } = useMemo(() => servedByModelAndDay(dashboard, measure), [dashboard, measure]);
  return (
    <Card title="Usage served">
      {dashboard.served.length === 0 ? (
        <p className="empty">No usage settled yet. It appears here once your gateway's batches settle on the chain.</p>
      ) : (
        <>
          <SelectField
            label="Show"
            value={measure}
            onChange={(value) => setMeasure(value as Measure)}
            options={[
              { value: "tokens", label: "Tokens (input + output)" },
              { value: "value", label: `Value (${token.symbol})` },
            ]}
          />
          <StackedBarChart
            title={measure === "tokens" ? "Tokens served per model and day (UTC)" : `Value served per model and day (UTC), ${token.symbol}`}
            labels={labels}
            series={series}
            token={measure === "value" ? token : undefined}
          />
        </>
      )}
    </Card>
  );
}
