/**
 * The calls, one row each: time, model, tokens in / cached / out, cost, key, tags, settlement (with the
 * settling transaction), and the receipt's verification against the chain, said in words (verified,
 * mismatch naming the field, pending settlement), never by colour alone.
 */
import { useApp } from "../../app-state";
import { transactionUrl } from "../../config";
import { DataTable, type Column } from "../../components/data-table";
import { ShortHex } from "../../components/short-hex";
import { formatAmount } from "../../lib/amounts";
import { formatTime } from "../../lib/time";
import type { ShownUsageRow } from "./usage-rows";
import type { RowVerdict } from "./verify-usage";

export type VerdictState = RowVerdict | { outcome: "checking" } | { outcome: "error"; message: string };

function Verdict({ state }: { state?: VerdictState }) {
  const { config } = useApp();
  if (!state) return null;
  switch (state.outcome) {
    case "checking":
      return <p aria-busy="true">Checking against the chain…</p>;
    case "verified":
      return (
        <p>
          <span className="badge ok">verified</span> <span className="small">in the batch from #{state.batchFirstSequence.toString()}</span>{" "}
          <ShortHex value={state.txHash} href={transactionUrl(config, state.txHash)} />
        </p>
      );
    case "mismatch":
      return (
        <>
          <p>
            <span className="badge bad">mismatch: {state.field}</span>
          </p>
          <p className="small">{state.message}</p>
        </>
      );
    case "pending":
      return (
        <>
          <p>
            <span className="badge warn">pending settlement</span>
          </p>
          <p className="small">{state.message}</p>
        </>
      );
    case "error":
      return <p className="small field-error">Could not check: {state.message}</p>;
  }
}

export function UsageTable({ rows, keyLabel, verdicts, onVerify, busy }: { rows: ShownUsageRow[]; keyLabel(id: string): string; verdicts: Map<string, VerdictState>; onVerify(row: ShownUsageRow): void; busy: boolean }) {
  const { token, config } = useApp();
  const columns: Column<ShownUsageRow>[] = [
    { header: "#", numeric: true, cell: (row) => row.sequence },
    { header: "Time", cell: (row) => formatTime(row.served_at) },
    { header: "Model", cell: (row) => <span className="mono">{row.model}</span> },
    {
      header: "Tokens in / cached / out",
      numeric: true,
      cell: (row) => `${row.input_tokens.toLocaleString()} / ${row.cached_input_tokens.toLocaleString()} / ${row.output_tokens.toLocaleString()}`,
    },
    { header: "Cost", numeric: true, cell: (row) => formatAmount(BigInt(row.cost), token) },
    { header: "Key", cell: (row) => keyLabel(row.key_id) },
    { header: "Tags", cell: (row) => (row.tags.length ? row.tags.join(", ") : <span className="muted">none</span>) },
    {
      header: "Settlement",
      cell: (row) =>
        row.status === "settled" ? (
          <>
            settled{" "}
            {row.settlement && (
              <>
                in <ShortHex value={row.settlement.txHash} href={transactionUrl(config, row.settlement.txHash)} />
              </>
            )}
          </>
        ) : (
          "unsettled"
        ),
    },
    {
      header: "Receipt",
      cell: (row) => (
        <div className="verdict">
          <Verdict state={verdicts.get(row.sequence)} />
          {verdicts.get(row.sequence)?.outcome !== "checking" && (
            <button type="button" className="secondary" onClick={() => onVerify(row)} disabled={busy} aria-label={`Verify call ${row.sequence} against the chain`}>
              Verify
            </button>
          )}
        </div>
      ),
    },
  ];
  return <DataTable caption="Calls" columns={columns} rows={rows} rowKey={(row) => row.sequence} empty="No calls match these filters." />;
}
