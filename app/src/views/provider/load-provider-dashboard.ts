/**
 * Everything the provider page shows about one provider, read from the chain in the browser: the chain audit
 * (`loadChainHistory` + `auditChain`, the same code `tollgate audit` runs) rebuilds its models with their
 * names and price epochs, its credit plans, its signers and every batch it settled, each batch checked
 * against its signed data; live reads add what only the contracts' state says (earnings, bond, a signer's
 * compromised flag, the notice period) and each settlement's gas from its receipt.
 * TODO(wt-gw): the catalog and dashboard actions (`getCatalog`, `getProviderDashboard`) can replace the
 * registry part once they land; the usage per model and day stays on the audit's rebuilt records.
 */
import { decodeEventLog, type Address, type Hash } from "viem";
import { auditChain, getBond, loadChainHistory, rpcStateReader, type AuditedBatch, type GetBondReturnType, type ScanProgress, type TollgateClient } from "../../../../client";
import { tollgateAbi } from "../../../../server/chain/abis";
import { priceEpochAt, type CreditPlanTerms, type PriceEpoch } from "../../../../server/chain/marketplace-reader";

export interface ProviderModel {
  modelId: number;
  name: string;
  /** Its bit in the provider's credit-plan model masks. */
  localIndex: number;
  paused: boolean;
  /** The epoch in force at the chain's time (a model always has one from its listing on). */
  current?: PriceEpoch;
  /** Epochs that start after the chain's time. */
  scheduled: PriceEpoch[];
}

export interface ProviderSigner {
  signer: Address;
  authorized: boolean;
  /** Fraud by it was proven: it can never be authorized again. */
  compromised: boolean;
  nextSequence: bigint;
}

export interface SettledBatch extends Pick<AuditedBatch, "txHash" | "blockNumber" | "signer" | "firstSequence" | "recordCount" | "totalCost" | "providerEarnings" | "protocolFee" | "totalShortfall"> {
  /** Block time, unix seconds. */
  time: number;
  gasUsed: bigint;
}

/** One record served, as the audit rebuilt it from the settlement's signed data. */
export interface ServedRecord {
  modelId: number;
  servedAt: number;
  tokens: bigint;
  cost: bigint;
}

export interface ProviderDashboard {
  providerId: number;
  owner: Address;
  payout: Address;
  metadataUri: string;
  earnings: bigint;
  bond: GetBondReturnType;
  /** Seconds between scheduling a price and its taking effect. */
  priceNoticePeriod: bigint;
  /** The largest price per million tokens the contract accepts. */
  maxPrice: bigint;
  /** The latest block's time: "now" for prices, plans and the notice period (a test chain may run ahead of the wall clock). */
  chainTime: bigint;
  models: ProviderModel[];
  plans: CreditPlanTerms[];
  signers: ProviderSigner[];
  batches: SettledBatch[];
  served: ServedRecord[];
  /** What the audit found wrong about this provider (empty when every batch checks out). */
  findings: string[];
}

// The deploy block never changes; finding it costs a binary search over eth_getCode, so it is done once per tab.
const deployBlocks = new Map<Address, bigint>();

/** How far the read has come, in words: a long history on a real chain takes a while. */
export type DashboardProgress = (message: string) => void;

function describeScan(progress: ScanProgress): string {
  if (progress.phase === "logs") return `Reading the chain's history: ${progress.scannedBlocks.toLocaleString()} of ${progress.totalBlocks.toLocaleString()} blocks, ${progress.logs.toLocaleString()} events so far…`;
  return `Reading ${progress.step ?? "blocks"}: ${progress.blocksFetched ?? 0} of ${progress.blocksToFetch ?? 0} blocks…`;
}

export async function loadProviderDashboard(client: Pick<TollgateClient, "public" | "contracts">, providerId: number, onProgress?: DashboardProgress): Promise<ProviderDashboard> {
  const { tollgate } = client.contracts;
  const history = await loadChainHistory(client.public, { tollgate, deployBlock: deployBlocks.get(tollgate) }, { onProgress: onProgress && ((progress) => onProgress(describeScan(progress))) });
  onProgress?.(`Checking ${history.logs.length.toLocaleString()} events and the settled batches' signed data…`);
  deployBlocks.set(tollgate, history.deployBlock);
  const audit = await auditChain(history, rpcStateReader(client.public, history), { provider: providerId });
  const at = { address: tollgate, abi: tollgateAbi, blockNumber: history.auditBlock } as const;
  const [view, earnings, bond, priceNoticePeriod, maxPrice, block] = await Promise.all([
    client.public.readContract({ ...at, functionName: "providerOf", args: [providerId] }),
    client.public.readContract({ ...at, functionName: "earningsOf", args: [providerId] }),
    getBond(client, { providerId }),
    client.public.readContract({ ...at, functionName: "priceNoticePeriod" }),
    client.public.readContract({ ...at, functionName: "MAX_PRICE" }),
    client.public.getBlock({ blockNumber: history.auditBlock }),
  ]);
  const chainTime = block.timestamp;

  const models = [...audit.ledger.models.values()]
    .filter((model) => model.providerId === providerId)
    .map((model) => ({
      modelId: model.modelId,
      name: model.name,
      localIndex: model.localIndex,
      paused: model.paused,
      current: priceEpochAt(model.epochs, Number(chainTime)),
      scheduled: model.epochs.filter((epoch) => epoch.effectiveFrom > Number(chainTime)),
    }));

  const plans = [...audit.ledger.plans.values()].filter((plan) => plan.providerId === providerId).sort((a, b) => Number(a.planId - b.planId));

  const ownSigners = [...audit.ledger.signers.values()].filter((signer) => signer.providerId === providerId);
  const signers = await Promise.all(
    ownSigners.map(async (state) => {
      const live = await client.public.readContract({ ...at, functionName: "signerOf", args: [state.signer] });
      return { signer: state.signer, authorized: live.authorized, compromised: live.compromised, nextSequence: live.nextSequence };
    }),
  );

  const receipts = new Map<Hash, bigint>();
  await Promise.all(
    [...new Set(audit.batches.map((batch) => batch.txHash))].map(async (hash) => receipts.set(hash, (await client.public.getTransactionReceipt({ hash })).gasUsed)),
  );
  const batches = audit.batches
    .filter((batch) => batch.providerId === providerId)
    .map((batch) => ({
      txHash: batch.txHash,
      blockNumber: batch.blockNumber,
      time: history.blockTimes.get(batch.blockNumber) ?? 0,
      signer: batch.signer,
      firstSequence: batch.firstSequence,
      recordCount: batch.recordCount,
      totalCost: batch.totalCost,
      providerEarnings: batch.providerEarnings,
      protocolFee: batch.protocolFee,
      totalShortfall: batch.totalShortfall,
      gasUsed: receipts.get(batch.txHash) ?? 0n,
    }))
    .reverse();
  const served = audit.batches
    .filter((batch) => batch.providerId === providerId)
    .flatMap((batch) =>
      batch.records.map((record) => ({
        modelId: record.modelId,
        servedAt: record.servedAt,
        tokens: BigInt(record.inputTokens) + BigInt(record.outputTokens),
        cost: record.cost,
      })),
    );

  return {
    providerId,
    owner: view.owner,
    payout: view.payout,
    metadataUri: metadataUriOf(history.logs, tollgate, providerId),
    earnings,
    bond,
    priceNoticePeriod,
    maxPrice,
    chainTime,
    models,
    plans,
    signers,
    batches,
    served,
    findings: audit.findings.map((finding) => finding.message),
  };
}

/** The metadata URI lives only in ProviderRegistered / ProviderUpdated events (not in storage): the last one wins. */
function metadataUriOf(logs: readonly { address: Address; topics: readonly `0x${string}`[]; data: `0x${string}` }[], tollgate: Address, providerId: number): string {
  let uri = "";
  for (const log of logs) {
    if (log.address.toLowerCase() !== tollgate.toLowerCase() || log.topics.length === 0) continue;
    try {
      const event = decodeEventLog({ abi: tollgateAbi, data: log.data, topics: log.topics as [`0x${string}`, ...`0x${string}`[]], eventName: undefined });
      if ((event.eventName === "ProviderRegistered" || event.eventName === "ProviderUpdated") && event.args.providerId === providerId) uri = event.args.metadataURI;
    } catch {
      // Another event of Tollgate's that this ABI cannot decode is not about the provider's metadata.
    }
  }
  return uri;
}
