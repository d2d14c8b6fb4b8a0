/**
 * The provider's subscription plans (period, price, included usage, models, overage rule) and the form to define
 * one. Plans never change once defined; unused included usage never rolls over, and the page says so.
 */
import { useCallback, useState, type FormEvent } from "react";
import { defineSubscriptionPlan, getSubscriptionPlans, type SubscriptionOverage } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { Field, SelectField } from "../../components/field";
import { LoadError } from "../../components/load-error";
import { parseAmount, parseWhole, formatAmount } from "../../lib/amounts";
import { NO_ROLLOVER, overageText } from "../../lib/subscription-texts";
import { formatPeriod } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import { useLoad } from "../../lib/use-load";
import { ModelChecklist } from "./model-checklist";
import type { ProviderDashboard } from "./load-provider-dashboard";

/** The satellite's longest period (`MAX_PERIOD`): 366 days. */
const MAX_PERIOD_DAYS = 366n;

function DefineSubscriptionPlanForm({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const action = useAction();
  const [days, setDays] = useState("30");
  const [price, setPrice] = useState("");
  const [included, setIncluded] = useState("");
  const [overage, setOverage] = useState<SubscriptionOverage>("billBalance");
  const [modelIds, setModelIds] = useState<number[]>([]);
  const [errors, setErrors] = useState<{ days?: string; price?: string; included?: string; models?: string }>({});
  const parsedDays = parseWhole(days, "days", { min: 1n, max: MAX_PERIOD_DAYS });
  const parsedPrice = parseAmount(price, token, { allowZero: true });
  const parsedIncluded = parseAmount(included, token);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = {
      days: parsedDays.ok ? undefined : parsedDays.error,
      price: parsedPrice.ok ? undefined : parsedPrice.error,
      included: parsedIncluded.ok ? undefined : parsedIncluded.error,
      models: modelIds.length === 0 ? "Choose at least one model the plan covers." : undefined,
    };
    setErrors(found);
    if (!parsedDays.ok || !parsedPrice.ok || !parsedIncluded.ok || found.models) return;
    const terms = { providerId: dashboard.providerId, periodSeconds: Number(parsedDays.value) * 86_400, price: parsedPrice.value, includedValue: parsedIncluded.value, modelIds, overage };
    void action.run("Define a subscription plan", (client) => defineSubscriptionPlan(client, terms), (result) => `Defined subscription plan #${result.planId}.`);
  };
  return (
    <form onSubmit={submit} noValidate aria-labelledby="define-subscription-title">
      <h3 id="define-subscription-title">Define a subscription plan</h3>
      <div className="grid">
        <Field label="Period (days)" inputMode="numeric" autoComplete="off" value={days} onChange={(event) => setDays(event.target.value)} error={errors.days} hint="Each period is paid at its start from the buyer's vault balance; at most 366 days." />
        <Field label="Price per period" inputMode="decimal" autoComplete="off" value={price} onChange={(event) => setPrice(event.target.value)} error={errors.price} hint={`What a buyer pays per period, in ${token.symbol}.`} />
        <Field
          label="Included usage per period"
          inputMode="decimal"
          autoComplete="off"
          value={included}
          onChange={(event) => setIncluded(event.target.value)}
          error={errors.included}
          hint={`Usage each paid period covers at your list prices, in ${token.symbol}. ${NO_ROLLOVER}`}
        />
        <SelectField
          label="Overage"
          value={overage}
          onChange={(value) => setOverage(value as SubscriptionOverage)}
          options={[
            { value: "billBalance", label: "Bill credits, then balance, at list prices" },
            { value: "refuse", label: "Refuse usage beyond the included value" },
          ]}
        />
      </div>
      <ModelChecklist legend="Models the plan covers" models={dashboard.models} selected={modelIds} onChange={setModelIds} error={errors.models} errorId="subscription-models-error" />
      <button type="submit" disabled={action.busy}>
        Define subscription plan
      </button>
      <ActionStatus state={action.state} />
    </form>
  );
}

export function SubscriptionPlansCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const { client, token } = useApp();
  const { providerId, models } = dashboard;
  const plans = useLoad(
    useCallback(() => getSubscriptionPlans(client, { providerId, models }), [client, providerId, models]),
    [client, providerId, models],
  );
  return (
    <Card title="Subscription plans">
      {plans.error !== undefined && <LoadError error={plans.error} what="your subscription plans" retry={plans.reload} />}
      {!plans.data ? (
        <p aria-busy="true">Reading your subscription plans…</p>
      ) : (
        <DataTable
          caption="Subscription plans"
          rows={plans.data.plans}
          rowKey={(plan) => plan.planId.toString()}
          empty="No subscription plan yet. A plan sells a period price that includes usage of your models."
          columns={[
            { header: "Plan", cell: (plan) => `#${plan.planId}` },
            { header: "Period", cell: (plan) => formatPeriod(plan.periodSeconds) },
            { header: "Price per period", numeric: true, cell: (plan) => formatAmount(plan.price, token) },
            { header: "Included usage", numeric: true, cell: (plan) => formatAmount(plan.includedValue, token) },
            { header: "Models", cell: (plan) => plan.models.join(", ") || "none" },
            { header: "Overage", cell: (plan) => overageText(plan.overage) },
          ]}
        />
      )}
      <p className="small">{NO_ROLLOVER}</p>
      {dashboard.models.length > 0 ? <DefineSubscriptionPlanForm dashboard={dashboard} /> : <p className="empty">List a model first: a plan covers some of your models.</p>}
    </Card>
  );
}
