/**
 * What the gateway knows and the chain does not yet: usage served but not yet settled, reservations held by
 * calls in flight, and so what each model can still be spent on. Reading it takes a read session (one
 * wallet signature, no transaction).
 */
import { useCallback } from "react";
import { getGatewayBalance } from "../../../../client";
import { useApp } from "../../app-state";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { ErrorNotice } from "../../components/error-notice";
import { LoadError } from "../../components/load-error";
import { formatAmount } from "../../lib/amounts";
import { explainError } from "../../lib/explain-error";
import { useLoad } from "../../lib/use-load";
import { useGatewaySession } from "./use-gateway-session";

export function GatewayFigures() {
  const { client, token, config } = useApp();
  const session = useGatewaySession();
  const sessionToken = session.token;
  const read = useCallback(() => getGatewayBalance(client, { session: sessionToken! }), [client, sessionToken]);
  const balance = useLoad(sessionToken ? read : undefined, [read]);
  const shown = sessionToken ? balance : undefined;
  const amount = (text: string) => formatAmount(BigInt(text), token);
  return (
    <Card title="At the gateway">
      <p className="small">
        The chain's figures above lag behind what you have used: calls are settled in batches. The gateway holds the rest: usage served but not yet settled, and reservations
        for calls in flight. Signing in costs no gas and sends no transaction.
      </p>
      {!sessionToken && (
        <button type="button" onClick={() => void session.open()} disabled={session.opening}>
          {session.opening ? "Waiting for your signature…" : "Sign in to the gateway"}
        </button>
      )}
      {session.error !== undefined && <ErrorNotice error={explainError(session.error, token, config.rpcUrl)} />}
      {shown?.error !== undefined && <LoadError error={shown.error} what="the gateway's figures" retry={shown.reload} />}
      {shown?.data && (
        <>
          <dl className="facts">
            <dt>Unsettled usage</dt>
            <dd>{amount(shown.data.unsettled_usage)} (served, not yet settled on-chain)</dd>
            <dt>Open reservations</dt>
            <dd>{amount(shown.data.open_reservations)} (calls in flight)</dd>
            <dt>As of block</dt>
            <dd>{shown.data.block_number}</dd>
          </dl>
          <DataTable
            caption="Spendable now, per model"
            rows={shown.data.spendable_by_model}
            rowKey={(row) => row.model}
            empty="No model is on sale at this gateway."
            columns={[
              { header: "Model", cell: (row) => <span className="mono">{row.model}</span> },
              { header: "Spendable", numeric: true, cell: (row) => amount(row.spendable) },
            ]}
          />
        </>
      )}
    </Card>
  );
}
