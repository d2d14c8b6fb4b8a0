/** One provider's credit plans: what a credit costs, what it is worth, the bonus that makes, what it covers, when it expires. */
import type { CatalogPlan } from "../../../../client";
import { useApp } from "../../app-state";
import { DataTable } from "../../components/data-table";
import { formatAmount } from "../../lib/amounts";
import { formatRelative, formatTime } from "../../lib/time";
import { formatBonus } from "../../lib/plan-bonus";

export function CreditPlans({ plans, now, providerId }: { plans: CatalogPlan[]; now: number; providerId: number }) {
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
        { header: "Models covered", cell: (plan) => plan.models.join(", ") || "—" },
        {
          header: "Expires",
          cell: (plan) =>
            plan.expiresAt === 0 ? (
              "never"
            ) : plan.expired ? (
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
            plan.expired ? (
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
