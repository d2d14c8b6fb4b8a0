/** Every batch of this provider's usage settled on the chain: what it charged, what the provider earned, its gas, and any shortfall. */
import { useApp } from "../../app-state";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { ShortHex } from "../../components/short-hex";
import { transactionUrl } from "../../config";
import { formatAmount } from "../../lib/amounts";
import { formatTime } from "../../lib/time";
import type { ProviderDashboard } from "./load-provider-dashboard";

export function BatchesCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token, config } = useApp();
  const { batches } = dashboard;
  const records = batches.reduce((sum, batch) => sum + batch.recordCount, 0n);
  const shortfall = batches.reduce((sum, batch) => sum + batch.totalShortfall, 0n);
  return (
    <Card title="Batches settled">
      {batches.length > 0 && (
        <p>
          {batches.length} batch{batches.length === 1 ? "" : "es"}, {records.toString()} record{records === 1n ? "" : "s"}, each checked in this browser against its signed data.
          {shortfall > 0n && (
            <>
              {" "}
              <span className="badge bad">shortfall {formatAmount(shortfall, token)}</span> buyers could not cover: that usage was not paid.
            </>
          )}
        </p>
      )}
      <DataTable
        caption="Settled batches, newest first"
        rows={batches}
        rowKey={(batch) => `${batch.txHash}:${batch.firstSequence}`}
        empty="No batch settled yet."
        columns={[
          { header: "Time", cell: (batch) => formatTime(batch.time) },
          { header: "Transaction", cell: (batch) => <ShortHex value={batch.txHash} href={transactionUrl(config, batch.txHash)} /> },
          { header: "Signer", cell: (batch) => <ShortHex value={batch.signer} /> },
          { header: "First sequence", numeric: true, cell: (batch) => batch.firstSequence.toString() },
          { header: "Records", numeric: true, cell: (batch) => batch.recordCount.toString() },
          { header: "Total cost", numeric: true, cell: (batch) => formatAmount(batch.totalCost, token) },
          { header: "Earnings", numeric: true, cell: (batch) => formatAmount(batch.providerEarnings, token) },
          { header: "Fee", numeric: true, cell: (batch) => formatAmount(batch.protocolFee, token) },
          { header: "Shortfall", numeric: true, cell: (batch) => (batch.totalShortfall > 0n ? <span className="badge bad">{formatAmount(batch.totalShortfall, token)}</span> : formatAmount(0n, token)) },
          { header: "Gas used", numeric: true, cell: (batch) => batch.gasUsed.toLocaleString() },
          { header: "Gas per record", numeric: true, cell: (batch) => (batch.recordCount > 0n ? (batch.gasUsed / batch.recordCount).toLocaleString() : "–") },
        ]}
      />
    </Card>
  );
}
