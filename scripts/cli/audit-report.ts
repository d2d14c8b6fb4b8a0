/**
 * `tollgate audit`'s output, from a `ChainAudit`: a readable report (summary, usage per buyer, provider,
 * model and day, then every finding with where it is and what was expected and found), one JSON object
 * (`--json`), or CSV rows per buyer, provider, model and day (`--csv`). Amounts in JSON and CSV are base
 * units, exact; the readable report formats them with the token's decimals.
 */
import type { ChainAudit, Finding, UsageTotals } from "../../client/audit/chain-audit";
import type { LoadStats } from "../../client/audit/load-chain-history";
import { formatAmount, type TokenUnits } from "./amounts";
import { toJson } from "./context";

export interface AuditRunFacts {
  token: TokenUnits & { address: string };
  rpc: LoadStats & { stateRequests: number; totalRequests: number };
  /** How many batches came from each source (calldata, event, trace, unavailable). */
  sources: Record<string, number>;
  checkpoint?: string;
}

const USAGE_COLUMNS = ["records", "input", "cached", "output", "cost", "from balance", "credits", "subscription", "shortfall"] as const;

function usageCells(totals: UsageTotals, money: (value: bigint) => string): string[] {
  return [
    totals.records.toLocaleString("en-US"),
    totals.inputTokens.toLocaleString("en-US"),
    totals.cachedInputTokens.toLocaleString("en-US"),
    totals.outputTokens.toLocaleString("en-US"),
    money(totals.cost),
    money(totals.fromBalance),
    money(totals.coveredByCredits),
    money(totals.coveredBySubscription),
    money(totals.shortfall),
  ];
}

/** Columns padded to their widest cell; the first left-aligned, numbers right-aligned. */
function table(header: readonly string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ");
  return [line(header), ...rows.map(line)].map((text) => `  ${text.trimEnd()}`);
}

function describeWhere(finding: Finding): string {
  const where = finding.where;
  const parts: string[] = [];
  if (where.tx) parts.push(`tx ${where.tx}`);
  if (where.block !== undefined) parts.push(`block ${where.block}`);
  if (where.logIndex !== undefined) parts.push(`log ${where.logIndex}`);
  if (where.signer) parts.push(`signer ${where.signer}`);
  if (where.batch !== undefined) parts.push(`batch ${where.batch}`);
  if (where.sequence !== undefined) parts.push(`sequence ${where.sequence}`);
  if (where.buyer) parts.push(`buyer ${where.buyer}`);
  if (where.providerId !== undefined) parts.push(`provider ${where.providerId}`);
  if (where.modelId !== undefined) parts.push(`model ${where.modelId}`);
  if (where.planId !== undefined) parts.push(`plan ${where.planId}`);
  return parts.join(", ");
}

function filtersOf(audit: ChainAudit): string[] {
  const { buyer, provider, signer, fromBlock, toBlock } = audit.options;
  const parts: string[] = [];
  if (buyer) parts.push(`buyer ${buyer}`);
  if (provider !== undefined) parts.push(`provider ${provider}`);
  if (signer) parts.push(`signer ${signer}`);
  if (fromBlock !== undefined) parts.push(`from block ${fromBlock}`);
  if (toBlock !== undefined) parts.push(`to block ${toBlock}`);
  return parts;
}

export function renderAuditText(audit: ChainAudit, facts: AuditRunFacts): string {
  const money = (value: bigint) => formatAmount(value, facts.token);
  const bare = (value: bigint) => formatAmount(value, { ...facts.token, symbol: "" }).trim();
  const lines: string[] = [];
  const { counts, conservation: c } = audit;
  lines.push(`Tollgate ${audit.tollgate} on chain ${audit.chainId}: blocks ${audit.deployBlock}-${audit.auditBlock} (state read at block ${audit.auditBlock})`);
  const sources = Object.entries(facts.sources)
    .map(([kind, n]) => `${n} from ${kind}`)
    .join(", ");
  lines.push(
    `  ${counts.logs.toLocaleString("en-US")} logs, ${counts.batches.toLocaleString("en-US")} batches (${sources || "none"}), ${counts.records.toLocaleString("en-US")} records, ` +
      `${plural(counts.buyers, "buyer")}, ${plural(counts.providers, "provider")}`,
  );
  lines.push(
    `  ${facts.rpc.totalRequests.toLocaleString("en-US")} JSON-RPC requests (${facts.rpc.requests} reading the history in ${plural(facts.rpc.logChunks, "log chunk")}, ${facts.rpc.stateRequests} reading the state` +
      `${facts.rpc.retries ? `, ${facts.rpc.retries} retries` : ""}${facts.rpc.rangeShrinks ? `, ${facts.rpc.rangeShrinks} narrower ranges` : ""})`,
  );
  const filters = filtersOf(audit);
  if (filters.length) lines.push(`  filtered to ${filters.join(", ")}: every event since deployment was replayed; only these are checked and reported`);
  lines.push("");
  lines.push(`Conservation (DESIGN invariant 1): ${c.conserved ? "holds" : "BROKEN"}`);
  lines.push(`  vault holds       ${money(c.vaultTokens)}`);
  lines.push(`  token flow        ${money(c.tokenFlow)}  (payment-token transfers in minus out)`);
  lines.push(
    `  owed              ${money(c.owed)}  = balances ${bare(c.buyerBalances)} + pending withdrawals ${bare(c.pendingWithdrawals)} + earnings ${bare(c.providerEarnings)} + protocol fees ${bare(c.protocolFees)} + bonds ${bare(c.bonds)} + unclaimed dispute awards ${bare(c.disputeAwards)}`,
  );
  const report = audit.report;
  const section = (title: string, first: string, rows: { key: string; totals: UsageTotals }[]) => {
    lines.push("");
    lines.push(`${title} (${symbolNote(facts.token)})`);
    if (rows.length === 0) {
      lines.push("  none");
      return;
    }
    lines.push(...table([first, ...USAGE_COLUMNS], rows.map(({ key, totals }) => [key, ...usageCells(totals, bare)])));
  };
  section("Usage", "", [{ key: "total", totals: report.totals }]);
  section("By buyer", "buyer", report.buyers.map((row) => ({ key: row.buyer, totals: row })));
  section("By provider", "provider", report.providers.map((row) => ({ key: String(row.providerId), totals: row })));
  section("By model", "model", report.models.map((row) => ({ key: `${row.modelId} ${row.name} (provider ${row.providerId})`, totals: row })));
  section("By day (UTC, by serving time)", "day", report.days.map((row) => ({ key: row.day, totals: row })));
  lines.push("");
  if (audit.findings.length === 0) {
    lines.push(`Audit clean: every batch, balance and event agrees (${counts.batches} batches, ${counts.records} records).`);
  } else {
    lines.push(`Findings (${audit.findings.length}):`);
    audit.findings.forEach((finding, i) => {
      lines.push(`  ${i + 1}. [${finding.code}] ${finding.message}`);
      const where = describeWhere(finding);
      if (where) lines.push(`     where: ${where}`);
      if (finding.expected !== undefined || finding.found !== undefined) lines.push(`     expected ${String(finding.expected)}, found ${String(finding.found)}`);
    });
    lines.push("");
    lines.push(`Audit FAILED: ${audit.findings.length} finding${audit.findings.length === 1 ? "" : "s"} (codes: ${[...new Set(audit.findings.map((f) => f.code))].join(", ")}).`);
  }
  return `${lines.join("\n")}\n`;
}

function plural(count: number, noun: string): string {
  return `${count.toLocaleString("en-US")} ${noun}${count === 1 ? "" : "s"}`;
}

function symbolNote(token: TokenUnits): string {
  return `amounts in ${token.symbol}, tokens as counted`;
}

export function renderAuditJson(audit: ChainAudit, facts: AuditRunFacts): string {
  return `${toJson({
    ok: audit.ok,
    chainId: audit.chainId,
    tollgate: audit.tollgate,
    deployBlock: audit.deployBlock,
    auditBlock: audit.auditBlock,
    filters: audit.options,
    token: facts.token,
    counts: audit.counts,
    conservation: audit.conservation,
    report: audit.report,
    findings: audit.findings,
    // Without their records: a report of a busy deployment would otherwise run to gigabytes.
    batches: audit.batches.map(({ records, ...batch }) => ({ ...batch, records: records.length })),
    unreadable: audit.unreadable,
    sources: facts.sources,
    rpc: facts.rpc,
    checkpoint: facts.checkpoint,
  })}\n`;
}

export const CSV_HEADER = [
  "kind",
  "key",
  "name",
  "provider_id",
  "records",
  "input_tokens",
  "cached_input_tokens",
  "output_tokens",
  "cost",
  "from_balance",
  "covered_by_credits",
  "covered_by_subscription",
  "shortfall",
] as const;

function csvCell(value: string | number | bigint): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One row per buyer, provider, model and day, and a total; amounts in base units of the payment token. */
export function renderAuditCsv(audit: ChainAudit): string {
  const rows: (string | number | bigint)[][] = [];
  const add = (kind: string, key: string | number, name: string, providerId: number | "", totals: UsageTotals) =>
    rows.push([
      kind,
      key,
      name,
      providerId,
      totals.records,
      totals.inputTokens,
      totals.cachedInputTokens,
      totals.outputTokens,
      totals.cost,
      totals.fromBalance,
      totals.coveredByCredits,
      totals.coveredBySubscription,
      totals.shortfall,
    ]);
  const report = audit.report;
  add("total", "", "", "", report.totals);
  for (const row of report.buyers) add("buyer", row.buyer, "", "", row);
  for (const row of report.providers) add("provider", row.providerId, "", row.providerId, row);
  for (const row of report.models) add("model", row.modelId, row.name, row.providerId, row);
  for (const row of report.days) add("day", row.day, "", "", row);
  return `${[CSV_HEADER, ...rows].map((row) => row.map(csvCell).join(",")).join("\n")}\n`;
}
