/**
 * What the gateway knows and the chain does not yet: usage served but not yet settled, reservations held by
 * calls in flight, and so what each model can still be spent on. Reading it takes a read session (one
 * wallet signature, no transaction).
 */
import { useCallback, useEffect } from "react";
import { getGatewayBalance } from "../../../../client";
import { useApp } from "../../app-state";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { LoadError } from "../../components/load-error";
import { SessionGate } from "../../components/session-gate";
import { formatAmount } from "../../lib/amounts";
import { useLoad } from "../../lib/use-load";
import { useSession } from "../../lib/use-session";

function Figures({ session }: { session: string }) {
  const { client, token } = useApp();
  const { forget, isExpired } = useSession();
  const balance = useLoad(
    useCallback(() => getGatewayBalance(client, { session }), [client, session]),
    [client, session],
  );
  // A session the gateway no longer accepts: drop it, so the gate offers to sign in again.
  useEffect(() => {
    if (balance.error !== undefined && isExpired(balance.error)) forget();
  }, [balance.error, isExpired, forget]);
  const amount = (text: string) => formatAmount(BigInt(text), token);
  if (balance.error !== undefined) return <LoadError error={balance.error} what="the gateway's figures" retry={balance.reload} />;
  if (!balance.data) return <p aria-busy="true">Asking the gateway…</p>;
  return (
    <>
      <dl className="facts">
        <dt>Unsettled usage</dt>
        <dd>{amount(balance.data.unsettled_usage)} (usage served but not yet settled)</dd>
        <dt>Open reservations</dt>
        <dd>{amount(balance.data.open_reservations)} (calls in flight)</dd>
        <dt>As of block</dt>
        <dd>{balance.data.block_number}</dd>
      </dl>
      <DataTable
        caption="Spendable now, per model"
        rows={balance.data.spendable_by_model}
        rowKey={(row) => row.model}
        empty="No model is on sale at this gateway."
        columns={[
          { header: "Model", cell: (row) => <span className="mono">{row.model}</span> },
          { header: "Spendable", numeric: true, cell: (row) => amount(row.spendable) },
        ]}
      />
    </>
  );
}

export function GatewayFigures() {
  const session = useSession();
  return (
    <Card title="At the gateway">
      <p className="small">
        The chain's figures lag behind what you have used: calls settle in batches. The gateway holds the rest: usage served but not yet settled, and reservations for
        calls in flight, taken off what you can spend.
      </p>
      <SessionGate session={session} purpose="see your unsettled usage and what you can spend per model">
        {(token) => <Figures session={token} />}
      </SessionGate>
    </Card>
  );
}
