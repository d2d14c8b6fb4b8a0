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
import { servedByModelAndDay, type Measure } from "./usage-series";

export function UsageCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const [measure, setMeasure] = useState<Measure>("tokens");
  const { labels, series } = useMemo(() => servedByModelAndDay(dashboard.usage, measure), [dashboard.usage, measure]);
  return (
    <Card title="Usage served">
      {dashboard.usage.length === 0 ? (
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
