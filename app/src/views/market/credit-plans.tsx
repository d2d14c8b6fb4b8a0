/** One provider's credit plans: what a credit costs, what it is worth, the bonus that makes, what it covers, when it expires. */
import { useApp } from "../../app-state";
import { DataTable } from "../../components/data-table";
import { modelsOfPlan, planExpired, type CatalogModel, type CatalogPlan } from "../../lib/catalog";
import { formatAmount } from "../../lib/amounts";
import { formatRelative, formatTime } from "../../lib/time";
import { formatBonus } from "./plan-terms";

export function CreditPlans({ plans, models, now, providerId }: { plans: CatalogPlan[]; models: CatalogModel[]; now: bigint; providerId: number }) {
  const { token } = useApp();
  return (
    <DataTable
      caption={`Credit plans of provider ${providerId}`}
      rows={plans}
      rowKey={(plan) => plan.planId.toString()}
      empty="This provider sells no credit plans yet."
      columns={[
        { header: "Plan", cell: (plan) => `#${plan.planId}` },
        { header: "Price per credit", numeric: true, cell: (plan) => formatAmount(plan.pricePerCredit, token) },
        { header: "Value per credit", numeric: true, cell: (plan) => formatAmount(plan.valuePerCredit, token) },
        { header: "Bonus", numeric: true, cell: (plan) => formatBonus(plan.pricePerCredit, plan.valuePerCredit) },
        {
          header: "Models covered",
          cell: (plan) =>
            modelsOfPlan({ models }, plan)
              .map((model) => model.name)
              .join(", ") || "—",
        },
        {
          header: "Expires",
          cell: (plan) =>
            plan.expiresAt === 0 ? (
              "never"
            ) : planExpired(plan, now) ? (
              <>
                <span className="badge bad">Expired</span> {formatTime(plan.expiresAt)}
              </>
            ) : (
              <>
                {formatTime(plan.expiresAt)} ({formatRelative(plan.expiresAt, now)})
              </>
            ),
        },
        {
          header: "Buy",
          cell: (plan) =>
            planExpired(plan, now) ? (
              <span className="empty">no longer sold</span>
            ) : (
              <a href={`#/?plan=${plan.planId}`} aria-label={`Buy credits of plan ${plan.planId}`}>
                Buy
              </a>
            ),
        },
      ]}
    />
  );
}
