/**
 * Schedules new prices for a model. The contract fixes when they apply: the block time of the transaction
 * plus the deployment's price notice period (`priceNoticePeriod`), so buyers always get that much warning and
 * no usage already served can be repriced. The form shows that earliest (and only) time; a change scheduled
 * while another is still pending replaces it.
 */
import { useState, type FormEvent } from "react";
import { scheduleModelPrice } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { SelectField } from "../../components/field";
import { formatTime, formatPeriod } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import type { ProviderDashboard } from "./load-provider-dashboard";
import { PriceFields } from "./price-fields";
import { parsePrices, priceTextsOf } from "./price-texts";

export function SchedulePriceForm({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const action = useAction();
  const [modelId, setModelId] = useState(dashboard.models[0].modelId);
  const model = dashboard.models.find((entry) => entry.modelId === modelId) ?? dashboard.models[0];
  const latest = model.scheduled.at(-1) ?? model.current ?? undefined;
  const [texts, setTexts] = useState(() => priceTextsOf(latest, token));
  const [errors, setErrors] = useState<ReturnType<typeof parsePrices>["errors"]>({});
  const earliest = dashboard.chainTime + dashboard.priceNoticePeriod;

  const choose = (value: string) => {
    const next = dashboard.models.find((entry) => entry.modelId === Number(value)) ?? dashboard.models[0];
    setModelId(next.modelId);
    setTexts(priceTextsOf(next.scheduled.at(-1) ?? next.current ?? undefined, token));
    setErrors({});
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const parsed = parsePrices(texts, token);
    setErrors(parsed.errors);
    if (!parsed.prices) return;
    const prices = parsed.prices;
    void action.run(`Schedule new prices for ${model.name}`, (client) => scheduleModelPrice(client, { modelId: model.modelId, prices }), (result) =>
      `New prices for ${model.name} take effect at ${formatTime(result.effectiveFrom)}${result.replacedEpochIndex !== undefined ? ", replacing the change scheduled before" : ""}.`,
    );
  };
  return (
    <form onSubmit={submit} noValidate aria-labelledby="schedule-price-title">
      <h3 id="schedule-price-title">Schedule a price change</h3>
      <SelectField label="Model to reprice" value={String(model.modelId)} onChange={choose} options={dashboard.models.map((entry) => ({ value: String(entry.modelId), label: `${entry.name} (#${entry.modelId})` }))} />
      <PriceFields texts={texts} onChange={setTexts} errors={errors} token={token} />
      <div className="field">
        <span className="field-label" id="effective-from-label">
          Effective from
        </span>
        <output aria-labelledby="effective-from-label" aria-describedby="effective-from-hint" data-earliest={earliest.toString()}>
          {formatTime(earliest)} at the earliest
        </output>
        <p id="effective-from-hint" className="field-hint">
          Buyers get {formatPeriod(Number(dashboard.priceNoticePeriod))} of notice: the contract sets the start to the transaction's block time plus that period, so it is never earlier.
          {model.scheduled.length > 0 && ` ${model.name} already has a change scheduled; this one replaces it.`}
        </p>
      </div>
      <button type="submit" disabled={action.busy}>
        Schedule price change
      </button>
      <ActionStatus state={action.state} />
    </form>
  );
}
