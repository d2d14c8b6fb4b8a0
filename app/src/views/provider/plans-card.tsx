/** The provider's credit plans (what a credit costs, what it pays for, which models, until when) and the form to define one. */
import { useApp } from "../../app-state";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { formatAmount } from "../../lib/amounts";
import { formatTime } from "../../lib/time";
import { DefinePlanForm } from "./define-plan-form";
import type { ProviderDashboard } from "./load-provider-dashboard";
import { formatBonus } from "../../lib/plan-bonus";

export function PlansCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  return (
    <Card title="Credit plans">
      <DataTable
        caption="Credit plans"
        rows={dashboard.plans}
        rowKey={(plan) => plan.planId.toString()}
        empty="No credit plan yet. A plan lets buyers prepay for your models, usually with a bonus."
        columns={[
          { header: "Plan", cell: (plan) => `#${plan.planId}` },
          { header: "Price per credit", numeric: true, cell: (plan) => formatAmount(plan.pricePerCredit, token) },
          { header: "Value per credit", numeric: true, cell: (plan) => formatAmount(plan.valuePerCredit, token) },
          { header: "Bonus", numeric: true, cell: (plan) => formatBonus(plan.pricePerCredit, plan.valuePerCredit) },
          { header: "Models", cell: (plan) => plan.models.join(", ") || "none" },
          { header: "Expiry", cell: (plan) => (plan.expiresAt === 0 ? "never" : <>{formatTime(plan.expiresAt)} {plan.expired && <span className="badge bad">expired</span>}</>) },
        ]}
      />
      {dashboard.models.length > 0 ? <DefinePlanForm dashboard={dashboard} /> : <p className="empty">List a model first: a plan covers some of your models.</p>}
    </Card>
  );
}
