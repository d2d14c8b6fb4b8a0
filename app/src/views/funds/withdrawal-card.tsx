/**
 * Getting money out: request part of the balance (it waits the withdrawal delay, still chargeable for usage
 * already served), cancel it back to the balance, or execute it once unlocked. The countdown runs on the
 * chain's clock; executing early is refused by the simulation, before the wallet is asked.
 */
import { useState, type FormEvent } from "react";
import { cancelWithdrawal, executeWithdrawal, requestWithdrawal, type GetBuyerPositionReturnType } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { Field } from "../../components/field";
import { formatAmount } from "../../lib/amounts";
import { formatRelative, formatTime } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import { amountUpTo, shownError } from "./validate";

export function WithdrawalCard({ position, now }: { position: GetBuyerPositionReturnType; now: bigint }) {
  const { token } = useApp();
  const action = useAction();
  const [text, setText] = useState("");
  const [submitted, setSubmitted] = useState(false);
  const parsed = amountUpTo(text, token, position.balance, "your vault balance");
  const pending = position.pendingWithdrawal;
  const ready = pending > 0n && position.withdrawableAt <= now;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (!parsed.ok) return;
    const done = await action.run(
      "Request a withdrawal",
      (client) => requestWithdrawal(client, { amount: parsed.value }),
      (result) => `${formatAmount(result.pendingWithdrawal, token)} pending; it unlocks ${formatTime(result.withdrawableAt)}.`,
    );
    if (done) {
      setText("");
      setSubmitted(false);
    }
  };

  return (
    <Card title="Withdraw">
      {pending > 0n && (
        <div className="pending-withdrawal">
          <p>
            Pending: <strong>{formatAmount(pending, token)}</strong>.{" "}
            {ready ? (
              <strong>Ready now.</strong>
            ) : (
              <>
                Unlocks {formatTime(position.withdrawableAt)} (<span className="countdown">{formatRelative(position.withdrawableAt, now)}</span>, chain time).
              </>
            )}
          </p>
          <p className="small">Until it is executed it still pays for usage already served, so what reaches your wallet may be less.</p>
          <div className="row">
            <button
              type="button"
              disabled={action.busy}
              onClick={() => void action.run("Withdraw", (client) => executeWithdrawal(client), (result) => `${formatAmount(result.withdrawn, token)} sent to your wallet.`)}
            >
              Execute withdrawal
            </button>
            <button
              type="button"
              className="secondary"
              disabled={action.busy}
              onClick={() => void action.run("Cancel the withdrawal", (client) => cancelWithdrawal(client), (result) => `${formatAmount(result.returned, token)} returned to your vault balance.`)}
            >
              Cancel withdrawal
            </button>
          </div>
        </div>
      )}
      <form onSubmit={submit} noValidate>
        <Field
          label={`Amount to withdraw (${token.symbol})`}
          inputMode="decimal"
          autoComplete="off"
          value={text}
          onChange={(event) => setText(event.target.value)}
          error={shownError(parsed, text, submitted)}
          hint={`Your vault balance is ${formatAmount(position.balance, token)}.${pending > 0n ? " A new request adds to the pending amount and restarts its delay." : ""}`}
        />
        <button type="submit" disabled={action.busy}>
          {action.busy ? "Working…" : "Request withdrawal"}
        </button>
      </form>
      <ActionStatus state={action.state} />
    </Card>
  );
}
