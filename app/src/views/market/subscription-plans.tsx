/**
 * One provider's subscription plans on the Market page: period, price, the usage each period includes, the models
 * it covers, the overage rule, that unused included usage does not roll over, and Subscribe (paid from the vault
 * balance; the connected wallet must be on the deployment's network).
 */
import { useCallback, useState } from "react";
import { getSubscriptionPlans, subscribe, type CatalogModel, type SubscriptionPlanInfo } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { DataTable } from "../../components/data-table";
import { LoadError } from "../../components/load-error";
import { formatAmount } from "../../lib/amounts";
import { NO_ROLLOVER, overageText } from "../../lib/subscription-texts";
import { formatPeriod, formatTime } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import { useLoad } from "../../lib/use-load";

export function SubscriptionPlans({ providerId, models }: { providerId: number; models: CatalogModel[] }) {
  const { client, token, account } = useApp();
  const action = useAction();
  const [chosen, setChosen] = useState<bigint>();
  const plans = useLoad(
    useCallback(() => getSubscriptionPlans(client, { providerId, models }), [client, providerId, models]),
    [client, providerId, models],
  );
  if (plans.error !== undefined && !plans.data) return <LoadError error={plans.error} what={`provider ${providerId}'s subscription plans`} retry={plans.reload} />;
  if (!plans.data) return <p aria-busy="true">Reading subscription plans…</p>;
  const start = (plan: SubscriptionPlanInfo) => {
    setChosen(plan.planId);
    void action.run(
      `Subscribe to plan ${plan.planId}`,
      (signing) => subscribe(signing, { planId: plan.planId }),
      (result) => `Subscribed to plan ${plan.planId}: paid ${formatAmount(result.price, token)}; the first period ends ${formatTime(result.periodEnd)} and renews from your vault balance unless you cancel.`,
    );
  };
  return (
    <>
      <DataTable
        caption={`Subscription plans of provider ${providerId}`}
        rows={plans.data.plans}
        rowKey={(plan) => plan.planId.toString()}
        empty="This provider sells no subscription plan."
        columns={[
          { header: "Plan", cell: (plan) => `#${plan.planId}` },
          { header: "Period", cell: (plan) => formatPeriod(plan.periodSeconds) },
          { header: "Price per period", numeric: true, cell: (plan) => formatAmount(plan.price, token) },
          { header: "Included usage per period", numeric: true, cell: (plan) => formatAmount(plan.includedValue, token) },
          { header: "Models covered", cell: (plan) => plan.models.join(", ") || "—" },
          { header: "Overage", cell: (plan) => overageText(plan.overage) },
          {
            header: "Subscribe",
            cell: (plan) => (
              <button type="button" onClick={() => start(plan)} disabled={action.busy || !account} aria-label={`Subscribe to plan ${plan.planId}`}>
                Subscribe
              </button>
            ),
          },
        ]}
      />
      {plans.data.plans.length > 0 && (
        <p className="small">
          {NO_ROLLOVER} The price is paid from your vault balance at each period's start; a period your balance cannot pay ends the subscription.
          {!account && " Connect a wallet to subscribe."}
        </p>
      )}
      {chosen !== undefined && <ActionStatus state={action.state} />}
    </>
  );
}
