/** The provider's models with the prices in force and those scheduled, pause/resume, and the forms to list one and to change prices. */
import { setModelPaused } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { formatPerMillion } from "../../lib/amounts";
import { formatRelative, formatTime } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import { ListModelForm } from "./list-model-form";
import type { ProviderDashboard, ProviderModel } from "./load-provider-dashboard";
import { SchedulePriceForm } from "./schedule-price-form";

export function ModelsCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const action = useAction();
  const price = (model: ProviderModel, key: "input" | "cachedInput" | "output") => (model.current ? formatPerMillion(model.current[key], token) : "not yet in force");
  return (
    <Card title="Models">
      <DataTable
        caption="Models and prices per million tokens"
        rows={dashboard.models}
        rowKey={(model) => String(model.modelId)}
        empty="No model listed yet: list one below."
        columns={[
          { header: "Model", cell: (model) => <><strong>{model.name}</strong> <span className="small">#{model.modelId}</span></> },
          { header: "Status", cell: (model) => (model.paused ? <span className="badge warn">paused</span> : <span className="badge ok">active</span>) },
          { header: "Input", numeric: true, cell: (model) => price(model, "input") },
          { header: "Cached input", numeric: true, cell: (model) => price(model, "cachedInput") },
          { header: "Output", numeric: true, cell: (model) => price(model, "output") },
          {
            header: "Scheduled change",
            cell: (model) =>
              model.scheduled.length === 0
                ? "none"
                : model.scheduled.map((epoch) => (
                    <div key={epoch.index}>
                      From {formatTime(epoch.effectiveFrom)} ({formatRelative(epoch.effectiveFrom, dashboard.chainTime)}): {formatPerMillion(epoch.input, token)} in, {formatPerMillion(epoch.cachedInput, token)} cached, {formatPerMillion(epoch.output, token)} out
                    </div>
                  )),
          },
          {
            header: "Serving",
            cell: (model) => (
              <button
                type="button"
                className="secondary"
                disabled={action.busy}
                aria-label={`${model.paused ? "Resume" : "Pause"} ${model.name}`}
                onClick={() => void action.run(`${model.paused ? "Resume" : "Pause"} ${model.name}`, (client) => setModelPaused(client, { modelId: model.modelId, paused: !model.paused }), () => `${model.name} is ${model.paused ? "active again" : "paused: gateways stop serving it"}.`)}
              >
                {model.paused ? "Resume" : "Pause"}
              </button>
            ),
          },
        ]}
      />
      <ActionStatus state={action.state} />
      <div className="grid">
        <ListModelForm dashboard={dashboard} />
        {dashboard.models.length > 0 && <SchedulePriceForm dashboard={dashboard} />}
      </div>
    </Card>
  );
}
