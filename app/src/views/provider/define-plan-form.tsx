/** Defines a credit plan: price and value per credit (the bonus they give shown as typed), the models covered, an optional expiry. */
import { useState, type FormEvent } from "react";
import { defineCreditPlan } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Field } from "../../components/field";
import { parseAmount } from "../../lib/amounts";
import { formatTime } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import { ModelChecklist } from "./model-checklist";
import type { ProviderDashboard } from "./load-provider-dashboard";
import { formatBonus } from "../../lib/plan-bonus";

export function DefinePlanForm({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const action = useAction();
  const [price, setPrice] = useState("");
  const [value, setValue] = useState("");
  const [modelIds, setModelIds] = useState<number[]>([]);
  const [expiry, setExpiry] = useState("");
  const [errors, setErrors] = useState<{ price?: string; value?: string; models?: string; expiry?: string }>({});

  const parsedPrice = parseAmount(price, token, { allowZero: true });
  const parsedValue = parseAmount(value, token);
  const bonus = parsedPrice.ok && parsedValue.ok ? formatBonus(parsedPrice.value, parsedValue.value) : undefined;
  // datetime-local is the reader's local time; the chain wants unix seconds.
  const expiresAt = expiry ? Math.floor(new Date(expiry).getTime() / 1000) : 0;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = {
      price: parsedPrice.ok ? undefined : parsedPrice.error,
      value: parsedValue.ok ? undefined : parsedValue.error,
      models: modelIds.length === 0 ? "Choose at least one model the credits pay for." : undefined,
      expiry: expiry && !(expiresAt > Number(dashboard.chainTime)) ? `Choose a time after now (${formatTime(dashboard.chainTime)}), or leave it empty for credits that never expire.` : undefined,
    };
    setErrors(found);
    if (!parsedPrice.ok || !parsedValue.ok || found.models || found.expiry) return;
    const terms = { providerId: dashboard.providerId, pricePerCredit: parsedPrice.value, valuePerCredit: parsedValue.value, modelIds, expiresAt };
    void action.run("Define a credit plan", (client) => defineCreditPlan(client, terms), (result) => `Defined credit plan #${result.planId}.`);
  };
  return (
    <form onSubmit={submit} noValidate aria-labelledby="define-plan-title">
      <h3 id="define-plan-title">Define a credit plan</h3>
      <div className="grid">
        <Field label="Price per credit" inputMode="decimal" autoComplete="off" value={price} onChange={(event) => setPrice(event.target.value)} error={errors.price} hint={`What a buyer pays for one credit, in ${token.symbol}.`} />
        <Field
          label="Value per credit"
          inputMode="decimal"
          autoComplete="off"
          value={value}
          onChange={(event) => setValue(event.target.value)}
          error={errors.value}
          hint={<>Usage one credit pays for, in {token.symbol}.{bonus && <> Bonus for the buyer: <strong data-testid="plan-bonus">{bonus}</strong>.</>}</>}
        />
      </div>
      <ModelChecklist legend="Models the credits pay for" models={dashboard.models} selected={modelIds} onChange={setModelIds} error={errors.models} errorId="plan-models-error" />
      <Field label="Expires" type="datetime-local" value={expiry} onChange={(event) => setExpiry(event.target.value)} error={errors.expiry} hint="Usage served from this time on is no longer covered, and the plan can no longer be bought. Leave empty: never." />
      <button type="submit" disabled={action.busy}>
        Define plan
      </button>
      <ActionStatus state={action.state} />
    </form>
  );
}
