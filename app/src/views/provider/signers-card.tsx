/**
 * The gateway keys allowed to sign this provider's usage batches: authorized, revoked or compromised (fraud
 * proven: never again), with the sequence each one's next batch must start at; authorize a key or revoke one.
 */
import { useState, type FormEvent } from "react";
import { getAddress, isAddress, type Address } from "viem";
import { setSignerAuthorization } from "../../../../client";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { Field } from "../../components/field";
import { ShortHex } from "../../components/short-hex";
import { useAction } from "../../lib/use-transaction";
import type { ProviderDashboard, ProviderSigner } from "./load-provider-dashboard";

function SignerStatus({ signer }: { signer: ProviderSigner }) {
  if (signer.compromised) return <span className="badge bad">compromised</span>;
  return signer.authorized ? <span className="badge ok">authorized</span> : <span className="badge warn">revoked</span>;
}

export function SignersCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const action = useAction();
  const [address, setAddress] = useState("");
  const [error, setError] = useState<string>();
  const { providerId } = dashboard;

  const change = (signer: Address, authorized: boolean) =>
    action.run(`${authorized ? "Authorize" : "Revoke"} gateway key ${signer}`, (client) => setSignerAuthorization(client, { providerId, signer, authorized }), () =>
      authorized ? `Key ${signer} may now sign your usage batches.` : `Key ${signer} is revoked: its unsettled batches can no longer settle.`,
    );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!isAddress(address.trim())) return setError("Enter the gateway key's address: 0x followed by 40 hex digits.");
    setError(undefined);
    void change(getAddress(address.trim()), true).then((done) => done && setAddress(""));
  };
  return (
    <Card title="Gateway signers">
      <DataTable
        caption="Gateway signer keys"
        rows={dashboard.signers}
        rowKey={(signer) => signer.signer}
        empty="No gateway key authorized yet: your gateway's batches cannot settle until you authorize its key."
        columns={[
          { header: "Key", cell: (signer) => <ShortHex value={signer.signer} /> },
          { header: "Status", cell: (signer) => <SignerStatus signer={signer} /> },
          { header: "Next sequence", numeric: true, cell: (signer) => signer.nextSequence.toString() },
          {
            header: "Action",
            cell: (signer) =>
              signer.compromised ? (
                "none: replace it"
              ) : (
                <button type="button" className={signer.authorized ? "danger" : "secondary"} disabled={action.busy} aria-label={`${signer.authorized ? "Revoke" : "Authorize again"} ${signer.signer}`} onClick={() => void change(signer.signer, !signer.authorized)}>
                  {signer.authorized ? "Revoke" : "Authorize again"}
                </button>
              ),
          },
        ]}
      />
      <form onSubmit={submit} noValidate>
        <Field
          label="Gateway key address"
          value={address}
          onChange={(event) => setAddress(event.target.value)}
          error={error}
          autoComplete="off"
          spellCheck={false}
          hint="The address of the key your gateway signs receipts and batches with (its log prints it at start). A key serves one provider for life."
        />
        <button type="submit" disabled={action.busy}>
          Authorize key
        </button>
      </form>
      <ActionStatus state={action.state} />
    </Card>
  );
}
