/**
 * The wallet's keys as the gateway has them (never the secrets): label, id, tags, models, spent of the cap,
 * expiry, created, and status in words. Read through the tab's read session (no signature per look);
 * revoking asks for confirmation, then the wallet's signature (`RevokeApiKey`).
 */
import { useEffect, useState } from "react";
import { listApiKeys, revokeApiKey, type GatewayApiKey } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { DataTable, type Column } from "../../components/data-table";
import { LoadError } from "../../components/load-error";
import { formatAmount } from "../../lib/amounts";
import { formatTime } from "../../lib/time";
import { useLoad } from "../../lib/use-load";
import { useAction } from "../../lib/use-transaction";
import { keyStatus, STATUS_BADGE } from "./key-status";

interface KeyListProps {
  session: string;
  /** Changes when a key was created or revoked on this page: read again. */
  changes: number;
  onChanged(): void;
  onExpired(): void;
  isExpired(error: unknown): boolean;
}

export function KeyList({ session, changes, onChanged, onExpired, isExpired }: KeyListProps) {
  const { client, token, canSign } = useApp();
  const keys = useLoad(async () => [...(await listApiKeys(client, { session }))].sort((a, b) => b.created_at - a.created_at), [session, changes]);
  const revoke = useAction();
  const [confirming, setConfirming] = useState<GatewayApiKey | undefined>();
  const now = Math.floor(Date.now() / 1000);

  useEffect(() => {
    if (keys.error !== undefined && isExpired(keys.error)) onExpired();
  }, [keys.error, isExpired, onExpired]);

  async function confirmRevoke(key: GatewayApiKey) {
    const result = await revoke.run(`Revoke key ${key.id}`, (signing) => revokeApiKey(signing, { keyId: key.id }), () => `Key ${key.id}${key.label ? ` (“${key.label}”)` : ""} is revoked: the gateway refuses it from now on.`);
    setConfirming(undefined);
    if (result) onChanged();
  }

  const columns: Column<GatewayApiKey>[] = [
    { header: "Label", cell: (key) => key.label || <span className="muted">(none)</span> },
    { header: "ID", cell: (key) => <span className="mono">{key.id}</span> },
    { header: "Tags", cell: (key) => (key.tags.length ? key.tags.join(", ") : <span className="muted">none</span>) },
    { header: "Models", cell: (key) => (key.models && key.models.length ? key.models.join(", ") : "all") },
    {
      header: "Spent / cap",
      numeric: true,
      cell: (key) => `${formatAmount(BigInt(key.spent), token)} / ${key.spend_cap !== null && key.spend_cap !== "0" ? formatAmount(BigInt(key.spend_cap), token) : "no cap"}`,
    },
    { header: "Expires", cell: (key) => (key.expires_at !== null ? formatTime(key.expires_at) : "never") },
    { header: "Created", cell: (key) => formatTime(key.created_at) },
    {
      header: "Status",
      cell: (key) => {
        const status = keyStatus(key, now);
        return <span className={STATUS_BADGE[status]}>{status}</span>;
      },
    },
    {
      header: "Action",
      cell: (key) =>
        keyStatus(key, now) === "revoked" ? null : (
          <button type="button" className="danger" disabled={!canSign || revoke.busy} onClick={() => (revoke.reset(), setConfirming(key))} aria-label={`Revoke key ${key.label || key.id}`}>
            Revoke
          </button>
        ),
    },
  ];

  return (
    <>
      {keys.error !== undefined && !isExpired(keys.error) && <LoadError error={keys.error} what="your API keys" retry={keys.reload} />}
      {keys.loading && !keys.data && <p aria-busy="true">Loading your keys…</p>}
      {keys.data && <DataTable caption="API keys" columns={columns} rows={keys.data} rowKey={(key) => key.id} empty="You have no API keys yet. Create one above." />}
      {confirming && (
        <div role="alertdialog" aria-labelledby="revoke-title" aria-describedby="revoke-detail" className="notice warning confirm">
          <p id="revoke-title" className="notice-title">
            Revoke key {confirming.label ? `“${confirming.label}” ` : ""}({confirming.id})?
          </p>
          <p id="revoke-detail">Calls with this key fail from the moment it is revoked. This cannot be undone; you can create a new key.</p>
          <div className="row">
            <button type="button" className="danger" onClick={() => confirmRevoke(confirming)} disabled={revoke.busy} autoFocus>
              Yes, revoke the key
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(undefined)} disabled={revoke.busy}>
              Cancel
            </button>
          </div>
        </div>
      )}
      <ActionStatus state={revoke.state} />
    </>
  );
}
