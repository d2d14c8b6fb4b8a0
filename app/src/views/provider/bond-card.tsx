/**
 * The bond behind the provider's gateway keys: a buyer's proof that a key lied is paid from it. Post more,
 * ask for some back (it stays slashable for the withdrawal delay), then withdraw it or cancel the request.
 */
import { useState, type FormEvent } from "react";
import { cancelBondWithdrawal, postBond, requestBondWithdrawal, withdrawBond } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { Field } from "../../components/field";
import { formatAmount, parseAmount } from "../../lib/amounts";
import { formatPeriod, formatRelative, formatTime } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import type { ProviderDashboard } from "./load-provider-dashboard";

export function BondCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const action = useAction();
  const [amount, setAmount] = useState("");
  const [error, setError] = useState<string>();
  const { bond, providerId } = dashboard;
  const ready = bond.pending > 0n && bond.withdrawableAt <= dashboard.chainTime;

  const run = (kind: "post" | "request") => (event?: FormEvent) => {
    event?.preventDefault();
    const parsed = parseAmount(amount, token);
    if (!parsed.ok) return setError(parsed.error);
    setError(undefined);
    if (kind === "post") void action.run("Post bond", (client) => postBond(client, { providerId, amount: parsed.value }), (result) => `The bond grew by ${formatAmount(result.posted, token)}.`);
    else void action.run("Request a bond withdrawal", (client) => requestBondWithdrawal(client, { providerId, amount: parsed.value }), (result) => `${formatAmount(result.pending, token)} pending, withdrawable at ${formatTime(result.withdrawableAt)}.`);
  };
  return (
    <Card title="Bond">
      <dl className="facts">
        <dt>Available</dt>
        <dd>{formatAmount(bond.available, token)}</dd>
        <dt>Pending withdrawal</dt>
        <dd>
          {bond.pending === 0n ? "none" : `${formatAmount(bond.pending, token)}, withdrawable ${formatTime(bond.withdrawableAt)} (${formatRelative(bond.withdrawableAt, dashboard.chainTime)})`}
        </dd>
      </dl>
      <p className="field-hint">
        Proofs of fraud are accepted for {formatPeriod(Number(bond.disputeWindow))} after a batch settles; a withdrawal waits {formatPeriod(Number(bond.withdrawalDelay))} and stays slashable until then.
      </p>
      <form onSubmit={run("post")} noValidate>
        <Field label="Bond amount" inputMode="decimal" autoComplete="off" value={amount} onChange={(event) => setAmount(event.target.value)} error={error} hint={`In ${token.symbol}. Posting takes it from your wallet (approving the vault first if needed).`} />
        <div className="row">
          <button type="submit" disabled={action.busy}>
            Post bond
          </button>
          <button type="button" className="secondary" disabled={action.busy || bond.available === 0n} onClick={() => run("request")()}>
            Request withdrawal
          </button>
        </div>
      </form>
      {bond.pending > 0n && (
        <div className="row">
          <button type="button" disabled={action.busy || !ready} onClick={() => void action.run("Withdraw bond", (client) => withdrawBond(client, { providerId }), (result) => `Sent ${formatAmount(result.amount, token)} to ${result.payout}.`)}>
            Withdraw pending bond
          </button>
          <button type="button" className="secondary" disabled={action.busy} onClick={() => void action.run("Cancel the bond withdrawal", (client) => cancelBondWithdrawal(client, { providerId }), (result) => `${formatAmount(result.amount, token)} back in the bond.`)}>
            Cancel withdrawal
          </button>
        </div>
      )}
      <ActionStatus state={action.state} />
    </Card>
  );
}
