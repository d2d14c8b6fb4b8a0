/** The provider's identity on the chain, and the form to change its payout address and metadata URI. */
import { useState, type FormEvent } from "react";
import { isAddress, type Address } from "viem";
import { updateProvider } from "../../../../client";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { Field } from "../../components/field";
import { ShortHex } from "../../components/short-hex";
import { useAction } from "../../lib/use-transaction";
import type { ProviderDashboard } from "./load-provider-dashboard";

export function ProfileCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const action = useAction();
  const [payout, setPayout] = useState<string>(dashboard.payout);
  const [metadataUri, setMetadataUri] = useState(dashboard.metadataUri);
  const [error, setError] = useState<string>();
  const unchanged = payout.trim().toLowerCase() === dashboard.payout.toLowerCase() && metadataUri.trim() === dashboard.metadataUri;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!isAddress(payout.trim())) return setError("Enter the payout address as 0x followed by 40 hex digits.");
    setError(undefined);
    void action.run("Update the provider", (client) => updateProvider(client, { providerId: dashboard.providerId, payout: payout.trim() as Address, metadataUri: metadataUri.trim() }), () => "Provider updated.");
  };
  return (
    <Card title={`Provider #${dashboard.providerId}`}>
      <dl className="facts">
        <dt>Owner</dt>
        <dd>
          <ShortHex value={dashboard.owner} />
        </dd>
        <dt>Payout</dt>
        <dd>
          <ShortHex value={dashboard.payout} />
        </dd>
        <dt>Metadata</dt>
        <dd className="break">{dashboard.metadataUri || "none"}</dd>
      </dl>
      <details>
        <summary>Update payout or metadata</summary>
        <form onSubmit={submit} noValidate>
          <Field label="New payout address" value={payout} onChange={(event) => setPayout(event.target.value)} error={error} autoComplete="off" spellCheck={false} />
          <Field label="New metadata URI" value={metadataUri} onChange={(event) => setMetadataUri(event.target.value)} type="url" />
          <button type="submit" disabled={action.busy || unchanged}>
            Update provider
          </button>
        </form>
      </details>
      <ActionStatus state={action.state} />
    </Card>
  );
}
