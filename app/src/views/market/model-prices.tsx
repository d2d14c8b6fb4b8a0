/**
 * One provider's models with the prices in force now (per million tokens: input, cached input, output) and
 * every change scheduled after now, with when it takes effect by the chain's clock.
 */
import type { CatalogModel } from "../../../../client";
import { useApp } from "../../app-state";
import { DataTable } from "../../components/data-table";
import { formatPerMillion } from "../../lib/amounts";
import { formatRelative, formatTime } from "../../lib/time";

type Epoch = CatalogModel["epochs"][number];

export function ModelPrices({ models, now, providerId }: { models: CatalogModel[]; now: number; providerId: number }) {
  const { token } = useApp();
  const price = (epoch: Epoch | null, part: "input" | "cachedInput" | "output") => (epoch ? formatPerMillion(epoch[part], token) : "—");
  const scheduled = models.flatMap((model) => model.scheduled.map((epoch) => ({ model, epoch })));
  return (
    <>
      <DataTable
        caption={`Models of provider ${providerId}, prices in force now`}
        rows={models}
        rowKey={(model) => String(model.modelId)}
        empty="This provider lists no models yet."
        columns={[
          { header: "Model", cell: (model) => <span className="mono">{model.name}</span> },
          { header: "Status", cell: (model) => (model.paused ? <span className="badge warn">Paused</span> : <span className="badge ok">On sale</span>) },
          { header: "Input", numeric: true, cell: (model) => price(model.current, "input") },
          { header: "Cached input", numeric: true, cell: (model) => price(model.current, "cachedInput") },
          { header: "Output", numeric: true, cell: (model) => price(model.current, "output") },
          { header: "In force since", cell: (model) => (model.current ? formatTime(model.current.effectiveFrom) : "not yet") },
        ]}
      />
      {scheduled.length > 0 && (
        <DataTable
          caption={`Scheduled price changes of provider ${providerId}`}
          rows={scheduled}
          rowKey={({ model, epoch }) => `${model.modelId}-${epoch.index}`}
          columns={[
            { header: "Model", cell: ({ model }) => <span className="mono">{model.name}</span> },
            {
              header: "Takes effect",
              cell: ({ epoch }) => (
                <>
                  {formatTime(epoch.effectiveFrom)} ({formatRelative(epoch.effectiveFrom, now)})
                </>
              ),
            },
            { header: "Input", numeric: true, cell: ({ epoch }) => price(epoch, "input") },
            { header: "Cached input", numeric: true, cell: ({ epoch }) => price(epoch, "cachedInput") },
            { header: "Output", numeric: true, cell: ({ epoch }) => price(epoch, "output") },
          ]}
        />
      )}
    </>
  );
}
