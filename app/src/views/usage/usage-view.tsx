/**
 * The usage of the signed-in buyer, read through the tab's read session: the filters, spend per day, the
 * calls a page at a time (`after` the last sequence shown), the CSV export, and each receipt verified
 * against the chain in the browser.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { getUsage, listApiKeys, listGatewayModels } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { LoadError } from "../../components/load-error";
import { formatAmount } from "../../lib/amounts";
import { explainError } from "../../lib/explain-error";
import { useLoad } from "../../lib/use-load";
import type { Session } from "../../lib/use-session";
import { useAction } from "../../lib/use-transaction";
import { CSV_LIMIT, downloadUsageCsv } from "./csv-export";
import { SpendChart } from "./spend-chart";
import { filtersOf, NO_FILTERS, UsageFilters, type FilterText } from "./usage-filters";
import type { ShownUsage, ShownUsageRow } from "./usage-rows";
import { UsageTable, type VerdictState } from "./usage-table";
import { batchSource, verifyUsageRows } from "./verify-usage";
import { WhereMoneyWent } from "./where-money-went";

export const PAGE_SIZE = 25;

export function UsageView({ token: sessionToken, session }: { token: string; session: Session }) {
  const { client, token } = useApp();
  const [applied, setApplied] = useState<FilterText>(NO_FILTERS);
  const filters = useMemo(() => {
    const parsed = filtersOf(applied);
    return parsed.ok ? parsed.filters : {};
  }, [applied]);
  // Each page starts after the last sequence of the one before; the stack leads back.
  const [cursors, setCursors] = useState<(bigint | undefined)[]>([undefined]);
  const after = cursors[cursors.length - 1];

  const keys = useLoad(() => listApiKeys(client, { session: sessionToken }), [sessionToken]);
  const models = useLoad(() => listGatewayModels(client), [client.gateway?.url]);
  const page = useLoad(() => getUsage(client, { session: sessionToken, ...filters, after, limit: PAGE_SIZE }) as Promise<ShownUsage>, [sessionToken, filters, after]);
  const range = useLoad(() => getUsage(client, { session: sessionToken, ...filters, limit: CSV_LIMIT }) as Promise<ShownUsage>, [sessionToken, filters]);

  const expired = [keys.error, page.error, range.error].some((error) => error !== undefined && session.isExpired(error));
  useEffect(() => {
    if (expired) session.forget();
  }, [expired, session]);

  const keyLabel = useCallback(
    (id: string) => {
      const key = keys.data?.find((candidate) => candidate.id === id);
      return key?.label || id;
    },
    [keys.data],
  );

  const [verdicts, setVerdicts] = useState<Map<string, VerdictState>>(new Map());
  const [verifying, setVerifying] = useState(false);
  const batches = useRef(batchSource(client));
  useEffect(() => {
    batches.current = batchSource(client);
  }, [client]);

  async function verify(rows: ShownUsageRow[]) {
    if (!page.data || rows.length === 0) return;
    setVerifying(true);
    setVerdicts((previous) => new Map([...previous, ...rows.map((row) => [row.sequence, { outcome: "checking" }] as const)]));
    try {
      const found = await verifyUsageRows(client, page.data, rows, batches.current);
      setVerdicts((previous) => new Map([...previous, ...found]));
    } catch (error) {
      const message = explainError(error, token).title;
      setVerdicts((previous) => new Map([...previous, ...rows.map((row) => [row.sequence, { outcome: "error", message }] as const)]));
    } finally {
      setVerifying(false);
    }
  }

  const csv = useAction();
  const exportCsv = () => csv.run("Export CSV", (c) => downloadUsageCsv(c, sessionToken, filters), (saved) => `Saved ${saved.fileName} (${saved.rows} call${saved.rows === 1 ? "" : "s"}).`);

  const apply = (text: FilterText) => {
    setApplied(text);
    setCursors([undefined]);
    setVerdicts(new Map());
  };
  const rows = page.data?.data ?? [];
  const counts = { verified: 0, mismatch: 0, pending: 0 };
  for (const row of rows) {
    const outcome = verdicts.get(row.sequence)?.outcome;
    if (outcome === "verified" || outcome === "mismatch" || outcome === "pending") counts[outcome]++;
  }

  return (
    <>
      <Card title="Filters">
        <UsageFilters keys={keys.data} models={models.data} applied={applied} onApply={apply} />
      </Card>
      <Card title="Spend per day">
        {range.error !== undefined && !expired && <LoadError error={range.error} what="your usage" retry={range.reload} />}
        {range.loading && !range.data && <p aria-busy="true">Loading your usage…</p>}
        {range.data && (
          <>
            <p>
              Total in this range: <strong>{formatAmount(range.data.data.reduce((sum, row) => sum + BigInt(row.cost), 0n), token)}</strong> over{" "}
              {range.data.data.length.toLocaleString()} call{range.data.data.length === 1 ? "" : "s"}.
            </p>
            <SpendChart rows={range.data.data} truncated={range.data.has_more} keyLabel={keyLabel} />
          </>
        )}
      </Card>
      <Card title="Where the money went">
        <WhereMoneyWent sessionToken={sessionToken} filters={filters} keyLabel={keyLabel} />
      </Card>
      <Card
        title="Calls"
        actions={
          <div className="row">
            <button type="button" className="secondary" onClick={() => void verify(rows.filter((row) => row.status === "settled"))} disabled={verifying || !rows.some((row) => row.status === "settled")}>
              Verify all shown
            </button>
            <button type="button" className="secondary" onClick={() => void exportCsv()} disabled={csv.busy}>
              Download CSV
            </button>
          </div>
        }
      >
        <ActionStatus state={csv.state} />
        {page.error !== undefined && !expired && <LoadError error={page.error} what="your calls" retry={page.reload} />}
        {page.loading && !page.data && <p aria-busy="true">Loading your calls…</p>}
        {page.data && (
          <>
            <p role="status" className="small">
              {counts.verified + counts.mismatch + counts.pending > 0
                ? `Checked against the chain: ${counts.verified} verified, ${counts.mismatch} mismatch, ${counts.pending} pending settlement.`
                : "Verify a settled call to check its receipt against the chain, here in your browser."}
            </p>
            <UsageTable rows={rows} keyLabel={keyLabel} verdicts={verdicts} onVerify={(row) => void verify([row])} busy={verifying} />
            <nav aria-label="Pages of calls" className="row">
              <button type="button" className="secondary" disabled={cursors.length === 1} onClick={() => setCursors((stack) => stack.slice(0, -1))}>
                Previous page
              </button>
              <button type="button" className="secondary" disabled={!page.data.has_more || rows.length === 0} onClick={() => setCursors((stack) => [...stack, BigInt(rows[rows.length - 1].sequence)])}>
                Next page
              </button>
            </nav>
          </>
        )}
      </Card>
    </>
  );
}
