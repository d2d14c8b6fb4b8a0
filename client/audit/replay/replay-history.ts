/**
 * Replays a deployment's history into a ledger, in chain order, one transaction at a time: each log decoded,
 * each event applied as its contract applied it (`applyEvent`), each `BatchSettled` checked and replayed by
 * `settleBatch`, and each transaction's token and credit flows matched when it ends. The filters choose
 * which batches are checked and reported; every log is replayed whatever they say.
 */
import { getAddress, type Address } from "viem";
import { batchKey, type ChainHistory, type HistoryLog } from "../chain-history";
import { applyEvent } from "./apply-event";
import type { AuditedBatch, UnreadableBatch } from "./audited-batch";
import { tollgateDomainSeparator } from "./batch-signature";
import { logDecoder } from "./decode-logs";
import { FindingList, type FindingLocation } from "./findings";
import { buyerOf, emptyLedger, type Ledger } from "./ledger";
import { ReportBuilder } from "./report";
import { settleBatch, type BatchSettledArgs } from "./settle-batch";
import { TransactionFlows } from "./transaction-flows";

export interface ReplayScope {
  buyer?: Address;
  provider?: number;
  signer?: Address;
  fromBlock?: bigint;
  toBlock?: bigint;
}

export interface ReplayResult {
  ledger: Ledger;
  /** The batches in scope, in chain order. */
  batches: AuditedBatch[];
  /** The batches in scope whose data could not be read. */
  unreadable: UnreadableBatch[];
  findings: FindingList;
  report: ReportBuilder;
  /** Every batch and record replayed, in scope or not. */
  counts: { logs: number; batches: number; records: number };
}

/** A sink for findings of batches the filters leave out: they are replayed, not reported. */
class DiscardedFindings extends FindingList {
  override add(): void {}
}

function inBlocks(scope: ReplayScope, block: bigint): boolean {
  return (scope.fromBlock === undefined || block >= scope.fromBlock) && (scope.toBlock === undefined || block <= scope.toBlock);
}

export async function replayHistory(history: ChainHistory, scope: ReplayScope, onProgress?: (done: number, total: number) => void): Promise<ReplayResult> {
  const ledger = emptyLedger();
  const findings = new FindingList();
  const discarded = new DiscardedFindings();
  const report = new ReportBuilder();
  const batches: AuditedBatch[] = [];
  const unreadable: UnreadableBatch[] = [];
  const counts = { logs: history.logs.length, batches: 0, records: 0 };
  const decoder = logDecoder(history);
  const tollgate = getAddress(history.tollgate);
  const domainSeparator = tollgateDomainSeparator(history.chainId, tollgate);
  let flows: TransactionFlows | undefined;
  let flowsBlock = 0n;

  const closeFlows = () => {
    if (!flows) return;
    // Burns no BatchSettled claimed still happened on the token: the ledger takes them, the list names them.
    for (const burn of flows.burns) {
      const holder = buyerOf(ledger, burn.holder);
      holder.credits.set(burn.planId, (holder.credits.get(burn.planId) ?? 0n) - burn.amount);
    }
    flows.close(findings, flowsBlock);
    flows = undefined;
  };

  for (let index = 0; index < history.logs.length; index++) {
    const log = history.logs[index];
    if (!flows || flows.hash !== log.transactionHash) {
      closeFlows();
      flows = new TransactionFlows(log.transactionHash);
      flowsBlock = log.blockNumber;
    }
    const where: FindingLocation = { tx: log.transactionHash, block: log.blockNumber, logIndex: log.logIndex };
    const decoded = decoder.decode(log);
    if ("error" in decoded) {
      findings.add("log_undecodable", `log ${log.logIndex} of ${log.transactionHash}: ${decoded.error}`, where);
      continue;
    }
    const time = history.blockTimes.get(log.blockNumber);
    if (time === undefined) throw new Error(`the history has no time for block ${log.blockNumber}, which holds a log: reload the history`);
    const event = decoded.event;
    if (decoded.emitter === "tollgate" && event.eventName === "BatchSettled") await settled(log, { ...event.args, signer: getAddress(event.args.signer) }, time);
    else applyEvent({ ledger, findings, tollgate, flows, log, time, where }, event, decoded.emitter);
    if (onProgress && index % 1000 === 999) onProgress(index + 1, history.logs.length);
  }
  closeFlows();
  onProgress?.(history.logs.length, history.logs.length);
  return { ledger, batches, unreadable, findings, report, counts };

  async function settled(log: HistoryLog, args: BatchSettledArgs, time: number): Promise<void> {
    const inScope =
      inBlocks(scope, log.blockNumber) &&
      (scope.signer === undefined || scope.signer === args.signer) &&
      (scope.provider === undefined || scope.provider === args.providerId);
    const source = history.batches.get(batchKey(log));
    const result = await settleBatch(
      { ledger, findings: inScope ? findings : discarded, domainSeparator, flows: flows!, report: inScope ? report : undefined, reportBuyer: scope.buyer },
      log,
      args,
      source,
      time,
    );
    counts.batches += 1;
    if (!result.readable) {
      if (inScope) unreadable.push(result.batch);
      return;
    }
    counts.records += result.batch.records.length;
    if (inScope && (scope.buyer === undefined || result.batch.draws.some((draw) => draw.buyer === scope.buyer))) batches.push(result.batch);
  }
}
