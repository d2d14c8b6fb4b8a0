/**
 * Everything the provider page shows about one provider, read from the chain in the browser, at one block:
 * the chain audit (`loadChainHistory` + `auditChain`, the same code `tollgate audit` runs) rebuilds every
 * record the provider's batches settled and checks each batch against its signed data (the usage chart and
 * any finding); `getCatalog` gives its models, prices and plans; `getProviderDashboard` its earnings, bond,
 * signers and settled batches with their gas. The audit's load comes first: it finds the deployment block
 * and fixes the block the other two read up to.
 */
import type { Address } from "viem";
import {
  auditChain,
  getCatalog,
  getProviderDashboard,
  loadChainHistory,
  rpcStateReader,
  usageByModelAndDay,
  type CatalogModel,
  type CatalogPlan,
  type GetBondReturnType,
  type ModelDayUsage,
  type ProviderSigner,
  type ScanProgress,
  type SettledBatchRow,
  type TollgateClient,
} from "../../../../client";
import { tollgateAbi } from "../../../../server/chain/abis";

export type { CatalogModel as ProviderModel, CatalogPlan as ProviderPlan, ProviderSigner, SettledBatchRow as SettledBatch };

export interface ProviderDashboard {
  providerId: number;
  owner: Address;
  payout: Address;
  metadataUri: string;
  earnings: bigint;
  bond: GetBondReturnType;
  /** Seconds between scheduling a price and its taking effect. */
  priceNoticePeriod: bigint;
  /** The read block's time: "now" for prices, plans and the notice period (a test chain may run ahead of the wall clock). */
  chainTime: bigint;
  models: CatalogModel[];
  plans: CatalogPlan[];
  signers: ProviderSigner[];
  /** Newest first. */
  batches: SettledBatchRow[];
  /** Per UTC day and model, from the records the audit rebuilt. */
  usage: ModelDayUsage[];
  /** What the audit found wrong about this provider (empty when every batch checks out). */
  findings: string[];
}

// The deploy block never changes; finding it costs a binary search over eth_getCode, so it is done once per tab.
const deployBlocks = new Map<Address, bigint>();

/**
 * Where log scans start: the deployment block config.json names, or the one this tab found by its first read;
 * undefined lets the first read search for it.
 */
export function knownDeployBlock(tollgate: Address, configured?: number | null): bigint | undefined {
  return configured != null ? BigInt(configured) : deployBlocks.get(tollgate);
}

/** How far the read has come, in words: a long history on a real chain takes a while. */
export type DashboardProgress = (message: string) => void;

function describeScan(progress: ScanProgress): string {
  if (progress.phase === "logs") return `Reading the chain's history: ${progress.scannedBlocks.toLocaleString()} of ${progress.totalBlocks.toLocaleString()} blocks, ${progress.logs.toLocaleString()} events so far…`;
  return `Reading ${progress.step ?? "blocks"}: ${progress.blocksFetched ?? 0} of ${progress.blocksToFetch ?? 0} blocks…`;
}

export async function loadProviderDashboard(
  client: Pick<TollgateClient, "public" | "contracts">,
  providerId: number,
  options: { deployBlock?: bigint; onProgress?: DashboardProgress } = {},
): Promise<ProviderDashboard> {
  const { tollgate } = client.contracts;
  const { onProgress } = options;
  const history = await loadChainHistory(client.public, { tollgate, deployBlock: options.deployBlock ?? deployBlocks.get(tollgate) }, { onProgress: onProgress && ((progress) => onProgress(describeScan(progress))) });
  deployBlocks.set(tollgate, history.deployBlock);
  onProgress?.(`Checking ${history.logs.length.toLocaleString()} events and the settled batches' signed data…`);
  const range = { fromBlock: history.deployBlock, toBlock: history.auditBlock };
  const [audit, catalog, dashboard, priceNoticePeriod] = await Promise.all([
    auditChain(history, rpcStateReader(client.public, history), { provider: providerId }),
    getCatalog(client, range),
    getProviderDashboard(client, { providerId, ...range }),
    client.public.readContract({ address: tollgate, abi: tollgateAbi, functionName: "priceNoticePeriod", blockNumber: history.auditBlock }),
  ]);
  const provider = catalog.providers.find((entry) => entry.providerId === providerId);
  if (!provider) throw new Error(`Provider #${providerId} is not on the chain at block ${history.auditBlock}.`);
  return {
    providerId,
    owner: provider.owner,
    payout: provider.payout,
    metadataUri: provider.metadataURI,
    earnings: dashboard.earnings,
    bond: dashboard.bond,
    priceNoticePeriod,
    chainTime: BigInt(catalog.chainTime),
    models: provider.models,
    plans: provider.plans,
    signers: dashboard.signers,
    batches: [...dashboard.batches].reverse(),
    usage: usageByModelAndDay(audit, { providerId }),
    findings: audit.findings.map((finding) => finding.message),
  };
}
