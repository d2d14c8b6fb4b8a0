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
  const records = batches.reduce((sum, batch) => sum + batch.records, 0n);
  const shortfall = batches.reduce((sum, batch) => sum + batch.shortfall, 0n);
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
        rowKey={(batch) => `${batch.transactionHash}:${batch.firstSequence}`}
        empty="No batch settled yet."
        columns={[
          { header: "Time", cell: (batch) => formatTime(batch.time) },
          { header: "Transaction", cell: (batch) => <ShortHex value={batch.transactionHash} href={transactionUrl(config, batch.transactionHash)} /> },
          { header: "Signer", cell: (batch) => <ShortHex value={batch.signer} /> },
          { header: "First sequence", numeric: true, cell: (batch) => batch.firstSequence.toString() },
          { header: "Records", numeric: true, cell: (batch) => batch.records.toString() },
          { header: "Total cost", numeric: true, cell: (batch) => formatAmount(batch.totalCost, token) },
          { header: "Earnings", numeric: true, cell: (batch) => formatAmount(batch.providerEarnings, token) },
          { header: "Fee", numeric: true, cell: (batch) => formatAmount(batch.protocolFee, token) },
          { header: "Shortfall", numeric: true, cell: (batch) => (batch.shortfall > 0n ? <span className="badge bad">{formatAmount(batch.shortfall, token)}</span> : formatAmount(0n, token)) },
          { header: "Gas used", numeric: true, cell: (batch) => <>{batch.gasUsed.toLocaleString()}{batch.batchesInTransaction > 1 && <span className="small"> (transaction of {batch.batchesInTransaction} batches)</span>}</> },
          // A relay may settle several batches in one transaction: each gets its share of the gas.
          { header: "Gas per record", numeric: true, cell: (batch) => (batch.records > 0n ? (batch.gasUsed / BigInt(batch.batchesInTransaction) / batch.records).toLocaleString() : "–") },
        ]}
      />
    </Card>
  );
}
