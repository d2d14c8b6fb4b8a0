/**
 * Buy credits of a plan, paid from the wallet (approving the vault for the exact price first when needed)
 * or from the vault balance. The total price and the usage value bought are shown before anything is signed.
 */
import { useEffect, useId, useState, type FormEvent } from "react";
import { buyCredits } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { Field, SelectField } from "../../components/field";
import { formatAmount } from "../../lib/amounts";
import { allPlans, type Catalog } from "../../lib/catalog";
import { expiredAt } from "./credit-value";
import { formatTime } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import { formatBonus } from "../../lib/plan-bonus";
import { useHashQuery } from "./use-hash-query";
import { creditsUpTo, shownError } from "./validate";

type PayFrom = "wallet" | "balance";

export function BuyCreditsForm({ catalog, wallet, balance, now }: { catalog?: Catalog; wallet: bigint; balance: bigint; now: bigint }) {
  const { token } = useApp();
  const action = useAction();
  const wanted = useHashQuery("plan");
  const onSale = (catalog ? allPlans(catalog) : []).filter((plan) => !plan.expired && !expiredAt(plan.expiresAt, now));
  const [planText, setPlanText] = useState("");
  const [countText, setCountText] = useState("1");
  const [payFrom, setPayFrom] = useState<PayFrom>("balance");
  const [submitted, setSubmitted] = useState(false);
  const payName = useId();

  // A "Buy" link from the Market page (#/?plan=3) picks its plan; otherwise the first plan on sale.
  useEffect(() => {
    if (wanted && onSale.some((plan) => plan.planId.toString() === wanted)) setPlanText(wanted);
    else if (planText === "" && onSale.length > 0) setPlanText(onSale[0].planId.toString());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [wanted, onSale.length]);

  const plan = onSale.find((entry) => entry.planId.toString() === planText);
  const count = creditsUpTo(countText, undefined);
  const total = plan && count.ok ? plan.pricePerCredit * count.value : undefined;
  const value = plan && count.ok ? plan.valuePerCredit * count.value : undefined;
  const available = payFrom === "wallet" ? wallet : balance;
  const affordable = total === undefined || total <= available;
  const payError = affordable ? undefined : `The total, ${formatAmount(total!, token)}, is more than ${payFrom === "wallet" ? "your wallet holds" : "your vault balance"} (${formatAmount(available, token)}).`;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (!plan || !count.ok || !affordable) return;
    const done = await action.run(
      `Buy ${count.value} credits of plan ${plan.planId}`,
      (client) => buyCredits(client, { planId: plan.planId, count: count.value, payFrom }),
      (result) => `Bought ${count.value} credits of plan ${plan.planId} for ${formatAmount(result.paid, token)}.`,
    );
    if (done) setSubmitted(false);
  };

  if (catalog && onSale.length === 0) {
    return (
      <Card title="Buy credits">
        <p className="empty">No credit plan is on sale on this deployment.</p>
      </Card>
    );
  }
  return (
    <Card title="Buy credits">
      <form onSubmit={submit} noValidate>
        <SelectField
          label="Plan"
          value={planText}
          onChange={setPlanText}
          disabled={!catalog}
          options={onSale.map((entry) => ({
            value: entry.planId.toString(),
            label: `#${entry.planId} · provider ${entry.providerId} · ${formatAmount(entry.pricePerCredit, token)} per credit, worth ${formatAmount(entry.valuePerCredit, token)}`,
          }))}
          hint={plan && catalog ? `Covers ${plan.models.join(", ") || "no listed model"}; ${plan.expiresAt === 0 ? "never expires" : `expires ${formatTime(plan.expiresAt)}`}.` : undefined}
        />
        <Field label="Number of credits" inputMode="numeric" autoComplete="off" value={countText} onChange={(event) => setCountText(event.target.value)} error={shownError(count, countText, submitted)} />
        <fieldset>
          <legend>Pay from</legend>
          <label className="choice">
            <input type="radio" name={payName} value="balance" checked={payFrom === "balance"} onChange={() => setPayFrom("balance")} /> Vault balance ({formatAmount(balance, token)})
          </label>
          <label className="choice">
            <input type="radio" name={payName} value="wallet" checked={payFrom === "wallet"} onChange={() => setPayFrom("wallet")} /> Wallet ({formatAmount(wallet, token)})
          </label>
        </fieldset>
        {plan && total !== undefined && value !== undefined && (
          <dl className="facts" aria-label="Order summary">
            <dt>Total price</dt>
            <dd>
              <strong>{formatAmount(total, token)}</strong>
            </dd>
            <dt>Usage value bought</dt>
            <dd>
              {formatAmount(value, token)} (bonus {formatBonus(plan.pricePerCredit, plan.valuePerCredit)})
            </dd>
          </dl>
        )}
        {payError && (
          <p className="field-error" role="alert">
            {payError}
          </p>
        )}
        <div className="row">
          <button type="submit" disabled={action.busy || !catalog}>
            {action.busy ? "Buying…" : "Buy credits"}
          </button>
        </div>
      </form>
      <ActionStatus state={action.state} />
    </Card>
  );
}
