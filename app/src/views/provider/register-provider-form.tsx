/** Registers the wallet as a new provider: who receives its earnings (the wallet by default) and where buyers read about it. */
import { useState, type FormEvent } from "react";
import { isAddress, type Address } from "viem";
import { registerProvider } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { Field } from "../../components/field";
import { useAction } from "../../lib/use-transaction";

export function RegisterProviderForm() {
  const { account } = useApp();
  const action = useAction();
  const [payout, setPayout] = useState<string>(account ?? "");
  const [metadataUri, setMetadataUri] = useState("");
  const [error, setError] = useState<string>();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!isAddress(payout.trim())) return setError("Enter the payout address as 0x followed by 40 hex digits.");
    setError(undefined);
    void action.run(
      "Register the provider",
      (client) => registerProvider(client, { payout: payout.trim() as Address, metadataUri: metadataUri.trim() }),
      (result) => `Registered provider #${result.providerId}.`,
    );
  };
  return (
    <Card title="Register as a provider">
      <form onSubmit={submit} noValidate>
        <Field label="Payout address" value={payout} onChange={(event) => setPayout(event.target.value)} error={error} autoComplete="off" spellCheck={false} className="mono" hint="Receives your earnings when you withdraw them. Your wallet by default." />
        <Field label="Metadata URI" value={metadataUri} onChange={(event) => setMetadataUri(event.target.value)} type="url" placeholder="https://example.com/tollgate.json" hint="Where buyers read about you (kept in the registration event, not in storage). Optional." />
        <button type="submit" disabled={action.busy}>
          Register provider
        </button>
      </form>
      <ActionStatus state={action.state} />
    </Card>
  );
}
