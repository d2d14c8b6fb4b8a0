/**
 * `tollgate audit`'s engine: every charge rebuilt from chain data alone. It replays every log of a Tollgate
 * deployment in chain order into a ledger (balances, withdrawals, credits, spending windows, earnings, fees,
 * bonds, prices, signers), checks each settled batch against its signed data and the settlement rules, then
 * compares the ledger with the contracts' state at the audit block. A pure function of a `ChainHistory` and a
 * `ChainStateReader`, so it runs on any history (a real chain's, a faulty contract's) and in a browser.
 */
import { getAddress, type Address } from "viem";
import type { ChainHistory, ChainStateReader } from "./chain-history";
import type { Finding } from "./replay/findings";
import type { Ledger } from "./replay/ledger";
import type { UsageReport } from "./replay/report";
import type { AuditedBatch, UnreadableBatch } from "./replay/audited-batch";
import { replayHistory } from "./replay/replay-history";
import { checkState, type Conservation } from "./replay/state-check";

export type { Finding, FindingCode, FindingLocation, FindingValue } from "./replay/findings";
export { FINDING_CODES } from "./replay/findings";
export type { Ledger, BuyerLedger, ProviderLedger, ModelState, SignerState, SpendingLimitState, BondState } from "./replay/ledger";
export type { UsageReport, UsageTotals } from "./replay/report";
export type { AuditedBatch, AuditedRecord, BuyerDraw, UnreadableBatch, UsageBatchHeader } from "./replay/audited-batch";

/**
 * Filters limit what is checked and reported, never what is replayed: the ledger always runs from the
 * deployment to the audit block, since every balance depends on everything before it.
 */
export interface ChainAuditOptions {
  buyer?: Address;
  provider?: number;
  signer?: Address;
  /** Batches settled before this block are replayed but not checked or reported. */
  fromBlock?: bigint;
  /** Batches settled after this block are replayed but not checked or reported. */
  toBlock?: bigint;
}

/** DESIGN invariant 1, three ways: the tokens the vault holds, what the ledger says it owes, and the token flow. */
export type ConservationResult = Conservation;

export interface ChainAudit {
  chainId: number;
  tollgate: Address;
  deployBlock: bigint;
  auditBlock: bigint;
  options: ChainAuditOptions;
  /** True when there is no finding. */
  ok: boolean;
  findings: Finding[];
  /** The batches checked (those the filters select), in chain order. */
  batches: AuditedBatch[];
  /** Batches the filters select whose data could not be read: each is also a finding. */
  unreadable: UnreadableBatch[];
  report: UsageReport;
  /** The whole rebuilt ledger at the audit block (never filtered). */
  ledger: Ledger;
  conservation: ConservationResult;
  counts: { logs: number; batches: number; records: number; buyers: number; providers: number };
}

/**
 * Audits one deployment: replays `history` into a ledger, checking every settled batch on the way, then
 * compares the ledger with `state` at the audit block. Never throws on bad data: every disagreement is a
 * finding. `onProgress` hears how many logs are replayed, for a progress bar on long histories.
 */
export async function auditChain(
  history: ChainHistory,
  state: ChainStateReader,
  options: ChainAuditOptions = {},
  onProgress?: (replayed: number, total: number) => void,
): Promise<ChainAudit> {
  const scope = {
    ...options,
    buyer: options.buyer && getAddress(options.buyer),
    signer: options.signer && getAddress(options.signer),
  };
  const replay = await replayHistory(history, scope, onProgress);
  const conservation = await checkState(replay.ledger, state, scope, replay.findings);
  const findings = replay.findings.items.filter((finding) => inScope(finding, scope));
  const report = replay.report.build((modelId) => {
    const model = replay.ledger.models.get(modelId);
    return { providerId: model?.providerId ?? 0, name: model?.name ?? `model ${modelId}` };
  });
  return {
    chainId: history.chainId,
    tollgate: getAddress(history.tollgate),
    deployBlock: history.deployBlock,
    auditBlock: history.auditBlock,
    options,
    ok: findings.length === 0,
    findings,
    batches: replay.batches,
    unreadable: replay.unreadable,
    report,
    ledger: replay.ledger,
    conservation,
    counts: { ...replay.counts, buyers: replay.ledger.buyers.size, providers: replay.ledger.providers.size },
  };
}

/** Filters limit what is reported: a finding about another buyer, provider or signer, or outside the blocks, is left out. */
function inScope(finding: Finding, scope: ChainAuditOptions): boolean {
  const where = finding.where;
  if (scope.buyer !== undefined && where.buyer !== undefined && where.buyer !== scope.buyer) return false;
  if (scope.provider !== undefined && where.providerId !== undefined && where.providerId !== scope.provider) return false;
  if (scope.signer !== undefined && where.signer !== undefined && where.signer !== scope.signer) return false;
  if (where.block !== undefined && where.tx !== undefined) {
    if (scope.fromBlock !== undefined && where.block < scope.fromBlock) return false;
    if (scope.toBlock !== undefined && where.block > scope.toBlock) return false;
  }
  return true;
}
