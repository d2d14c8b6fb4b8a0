/** Send credits of a plan to another address: credits are ERC-1155 tokens, so usage rights can be given or resold. */
import { useState, type FormEvent } from "react";
import type { Address } from "viem";
import { transferCredits, type CreditHolding } from "../../../../client";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { Field, SelectField } from "../../components/field";
import { useAction } from "../../lib/use-transaction";
import { creditsUpTo, recipientAddress, shownError } from "./validate";

export function TransferCreditsForm({ credits, account }: { credits: CreditHolding[]; account: Address }) {
  const action = useAction();
  const held = credits.filter((holding) => holding.credits > 0n);
  const [planText, setPlanText] = useState("");
  const [toText, setToText] = useState("");
  const [countText, setCountText] = useState("");
  const [submitted, setSubmitted] = useState(false);
  const holding = held.find((entry) => entry.planId.toString() === planText) ?? held[0];
  const to = recipientAddress(toText, account);
  const count = creditsUpTo(countText, holding?.credits);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (!holding || !to.ok || !count.ok) return;
    const done = await action.run(
      `Transfer ${count.value} credits of plan ${holding.planId}`,
      (client) => transferCredits(client, { to: to.value, planId: holding.planId, count: count.value }),
      () => `Sent ${count.value} credits of plan ${holding.planId} to ${to.value}.`,
    );
    if (done) {
      setCountText("");
      setSubmitted(false);
    }
  };

  return (
    <Card title="Transfer credits">
      {held.length === 0 ? (
        <p className="empty">You hold no credits to transfer.</p>
      ) : (
        <form onSubmit={submit} noValidate>
          <SelectField
            label="Plan"
            value={holding?.planId.toString() ?? ""}
            onChange={setPlanText}
            options={held.map((entry) => ({ value: entry.planId.toString(), label: `#${entry.planId} · provider ${entry.providerId} · ${entry.credits} held` }))}
          />
          <Field label="Recipient address" autoComplete="off" spellCheck={false} className="mono" value={toText} onChange={(event) => setToText(event.target.value)} error={shownError(to, toText, submitted)} />
          <Field
            label="Number of credits to send"
            inputMode="numeric"
            autoComplete="off"
            value={countText}
            onChange={(event) => setCountText(event.target.value)}
            error={shownError(count, countText, submitted)}
            hint={holding ? `You hold ${holding.credits} credits of plan ${holding.planId}.` : undefined}
          />
          <button type="submit" disabled={action.busy}>
            {action.busy ? "Sending…" : "Transfer credits"}
          </button>
        </form>
      )}
      <ActionStatus state={action.state} />
    </Card>
  );
}
