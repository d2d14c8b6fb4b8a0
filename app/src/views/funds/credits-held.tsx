/** The credits the buyer holds, per plan: how many, what each is worth, the change left, when they expire, which models they pay for. */
import type { CreditHolding } from "../../../../client";
import { useApp } from "../../app-state";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { formatAmount } from "../../lib/amounts";
import { allPlans, type Catalog } from "../../lib/catalog";
import { formatRelative, formatTime } from "../../lib/time";
import { creditValue, expiredAt } from "./credit-value";

export function CreditsHeld({ credits, catalog, now }: { credits: CreditHolding[]; catalog?: Catalog; now: bigint }) {
  const { token } = useApp();
  const models = (holding: CreditHolding) => {
    const plan = catalog && allPlans(catalog).find((entry) => entry.planId === holding.planId);
    return plan ? plan.models.join(", ") || "—" : "…";
  };
  return (
    <Card title="Your credits">
      <DataTable
        caption="Credits held per plan"
        rows={credits}
        rowKey={(holding) => holding.planId.toString()}
        empty={
          <>
            You hold no credits. Credits prepay one provider's models, often with a bonus: see the <a href="#/market">market</a> and buy below.
          </>
        }
        columns={[
          { header: "Plan", cell: (holding) => `#${holding.planId}` },
          { header: "Provider", cell: (holding) => holding.providerId },
          { header: "Credits", numeric: true, cell: (holding) => holding.credits.toLocaleString() },
          { header: "Value per credit", numeric: true, cell: (holding) => formatAmount(holding.valuePerCredit, token) },
          { header: "Change left", numeric: true, cell: (holding) => formatAmount(holding.change, token) },
          { header: "Total value", numeric: true, cell: (holding) => formatAmount(creditValue(holding, now), token) },
          {
            header: "Expires",
            cell: (holding) =>
              holding.expiresAt === 0 ? (
                "never"
              ) : expiredAt(holding.expiresAt, now) ? (
                <>
                  <span className="badge bad">Expired</span> {formatTime(holding.expiresAt)}
                </>
              ) : (
                `${formatTime(holding.expiresAt)} (${formatRelative(holding.expiresAt, now)})`
              ),
          },
          { header: "Models covered", cell: models },
        ]}
      />
    </Card>
  );
}
