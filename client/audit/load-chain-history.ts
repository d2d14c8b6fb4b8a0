/**
 * Gathers a `ChainHistory` (see chain-history.ts) over any JSON-RPC endpoint: Tollgate's and its credits
 * token's logs, the payment token's transfers into and out of Tollgate, the time of every block holding one,
 * and the data of every settled batch. Built for real providers: log queries in chunks that adapt to the
 * provider's range limit, retries with backoff, progress, a checkpoint to resume from, and a count of every
 * request made (the parts are in ./rpc/).
 *
 * Browser-safe: viem only.
 */
import { decodeFunctionResult, encodeFunctionData, getAddress, numberToHex, pad, toEventSelector, type Address, type Hash, type Hex, type PublicClient } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { ChainHistory } from "./chain-history";
import { resolveBatchSources } from "./rpc/batch-sources";
import { BlockReader } from "./rpc/block-reader";
import type { CheckpointStore } from "./rpc/checkpoint";
import { ChainHistoryLoadError, firstLine } from "./rpc/errors";
import { findDeployBlock } from "./rpc/find-deploy-block";
import { classifyRpcError } from "./rpc/provider-errors";
import { scanLogs, type LogFilter, type ScanProgress } from "./rpc/log-scan";
import { mapWithLimit, RpcCaller, type RpcCallerOptions } from "./rpc/rpc-caller";

export { decodeSettleBatchCall } from "./rpc/batch-sources";
export { ChainHistoryLoadError } from "./rpc/errors";
export { memoryCheckpointStore, type Checkpoint, type CheckpointStore } from "./rpc/checkpoint";
export type { ScanProgress } from "./rpc/log-scan";

const TRANSFER_TOPIC = toEventSelector("Transfer(address,address,uint256)");

export interface LoadChainHistoryTarget {
  tollgate: Address;
  /** The block Tollgate was deployed in (the deployment file's `deployBlock`); found from the chain when absent. */
  deployBlock?: bigint;
}

export interface LoadChainHistoryParameters extends Pick<RpcCallerOptions, "retry" | "sleep" | "random"> {
  /** The audit block: the last block read. Default: the latest block. */
  toBlock?: bigint;
  /** The widest block range asked for in one `eth_getLogs`, and the first one tried. Default 10,000. */
  maxRange?: bigint;
  checkpoint?: CheckpointStore;
  /** Try `debug_traceTransaction` for a batch found neither in an event nor in calldata. Default false. */
  traces?: boolean;
  /** Requests in flight at once while reading blocks. Default 8. */
  concurrency?: number;
  onProgress?: (progress: ScanProgress) => void;
  /** Retries, narrower ranges, resumes, reorganisations: what a person watching a long scan wants to know. */
  onNotice?: (message: string) => void;
}

export interface LoadStats {
  /** Every JSON-RPC request the load made, retries included. */
  requests: number;
  requestsByMethod: Record<string, number>;
  retries: number;
  logChunks: number;
  rangeShrinks: number;
  /** Requests the deploy-block search made; 0 when the deploy block was given. */
  deployBlockRequests: number;
  /** Set when a checkpoint was used: the first block this load asked logs for. */
  resumedFrom?: bigint;
  reorg?: { checkpointScannedTo: bigint; resumedFrom: bigint };
}

export type LoadChainHistoryReturnType = ChainHistory & { stats: LoadStats };
export type LoadChainHistoryErrorType = ChainHistoryLoadError;

/** The filters that together select every log the auditor needs. */
export function historyLogFilters(tollgate: Address, credits: Address, paymentToken: Address, subscriptions?: Address): LogFilter[] {
  const self = pad(tollgate.toLowerCase() as Hex, { size: 32 });
  return [
    { address: subscriptions ? [tollgate, credits, subscriptions] : [tollgate, credits] },
    // Only the payment token's transfers that move the vault's tokens: a real stablecoin has millions of others.
    { address: paymentToken, topics: [TRANSFER_TOPIC, null, self] },
    { address: paymentToken, topics: [TRANSFER_TOPIC, self] },
  ];
}

async function readAddress(rpc: RpcCaller, tollgate: Address, functionName: "credits" | "paymentToken", block: bigint): Promise<Address> {
  const data = await rpc.call<Hex>("eth_call", [{ to: tollgate, data: encodeFunctionData({ abi: tollgateAbi, functionName }) }, numberToHex(block)], `Tollgate.${functionName}()`);
  try {
    return getAddress(decodeFunctionResult({ abi: tollgateAbi, functionName, data }));
  } catch (error) {
    throw new ChainHistoryLoadError(`${tollgate} answered ${functionName}() with ${data}, not an address`, {
      cause: error,
      hint: "is this a Tollgate contract? Check the address (or the deployment file) and the chain",
    });
  }
}

/**
 * The subscriptions contract Tollgate deployed, or undefined for a deployment from before subscriptions (whose
 * Tollgate has no `subscriptions()`: the call reverts, and the node answers with an error, not an address).
 */
async function readSubscriptionsAddress(rpc: RpcCaller, tollgate: Address, block: bigint): Promise<Address | undefined> {
  const data = encodeFunctionData({ abi: tollgateAbi, functionName: "subscriptions" });
  let answer: Hex;
  try {
    answer = await rpc.call<Hex>("eth_call", [{ to: tollgate, data }, numberToHex(block)], "Tollgate.subscriptions()");
  } catch (error) {
    // A revert is the older Tollgate's answer; a provider that keeps failing is not, and must not hide the satellite's logs.
    if (error instanceof ChainHistoryLoadError && classifyRpcError(error.cause).kind === "fatal") return undefined;
    throw error;
  }
  if (answer === "0x") return undefined;
  try {
    return getAddress(decodeFunctionResult({ abi: tollgateAbi, functionName: "subscriptions", data: answer }));
  } catch {
    return undefined;
  }
}

export async function loadChainHistory(client: PublicClient, target: LoadChainHistoryTarget, options: LoadChainHistoryParameters = {}): Promise<LoadChainHistoryReturnType> {
  const notice = options.onNotice ?? (() => {});
  const rpc = new RpcCaller(client, {
    retry: options.retry,
    sleep: options.sleep,
    random: options.random,
    onRetry: ({ what, attempt, delayMs, error }) => notice(`${what} failed (${firstLine(error)}); retry ${attempt} in ${delayMs} ms`),
  });
  const tollgate = getAddress(target.tollgate);
  const chainId = Number(await rpc.call<Hex>("eth_chainId", [], "eth_chainId"));

  // The audit block is pinned by its hash: if the chain reorganises under it during the load, the load says so.
  const head = await rpc.call<{ number: Hex; hash: Hash } | null>(
    "eth_getBlockByNumber",
    [options.toBlock === undefined ? "latest" : numberToHex(options.toBlock), false],
    `the audit block (${options.toBlock ?? "latest"})`,
  );
  if (!head) throw new ChainHistoryLoadError(`the chain has no block ${options.toBlock}`, { hint: "audit at a block the chain has (the CLI's --at-block), or check that the RPC URL serves the right chain" });
  const auditBlock = BigInt(head.number);

  const code = await rpc.call<Hex>("eth_getCode", [tollgate, numberToHex(auditBlock)], `eth_getCode(${tollgate})`);
  if (code === "0x") {
    throw new ChainHistoryLoadError(`there is no contract at ${tollgate} on chain ${chainId} at block ${auditBlock}`, {
      hint: "check the Tollgate address (or the deployment file) and that the RPC URL serves the chain it was deployed on",
    });
  }
  const [credits, paymentToken, subscriptions] = await Promise.all([
    readAddress(rpc, tollgate, "credits", auditBlock),
    readAddress(rpc, tollgate, "paymentToken", auditBlock),
    readSubscriptionsAddress(rpc, tollgate, auditBlock),
  ]);

  let deployBlock = target.deployBlock;
  let deployBlockRequests = 0;
  if (deployBlock === undefined) {
    const found = await findDeployBlock(rpc, tollgate, auditBlock);
    deployBlock = found.deployBlock;
    deployBlockRequests = found.requests;
    notice(`Tollgate was deployed in block ${deployBlock} (found in ${found.requests} eth_getCode requests)`);
  } else if (deployBlock > auditBlock) {
    throw new ChainHistoryLoadError(`the deploy block ${deployBlock} is after the audit block ${auditBlock}`, { hint: "audit at a later block (the CLI's --at-block), or check the deployment file's deployBlock" });
  }

  const scan = await scanLogs(
    rpc,
    { chainId, tollgate, deployBlock, auditBlock, auditBlockHash: head.hash },
    historyLogFilters(tollgate, credits, paymentToken, subscriptions),
    { maxRange: options.maxRange, checkpoint: options.checkpoint, onProgress: options.onProgress, onNotice: notice },
  );

  const blocks = new BlockReader(rpc);
  const totalBlocks = auditBlock - deployBlock + 1n;
  const blockProgress = (step: ScanProgress["step"]) => (blocksFetched: number, blocksToFetch: number) =>
    options.onProgress?.({ phase: "blocks", fromBlock: deployBlock, toBlock: auditBlock, scannedBlocks: totalBlocks, totalBlocks, logs: scan.logs.length, requests: rpc.requests, step, blocksFetched, blocksToFetch });
  const { sources: batches, calls } = await resolveBatchSources(rpc, blocks, tollgate, scan.logs, {
    traces: options.traces,
    concurrency: options.concurrency,
    onBlockFetched: blockProgress("batch calldata"),
    known: scan.batchCalls,
  });

  // Times: from the provider's `blockTimestamp`, else from blocks already read for batches, else a header each.
  const blockTimes = new Map<bigint, number>();
  const missing: bigint[] = [];
  for (const block of new Set(scan.logs.map((log) => log.blockNumber))) {
    const known = scan.blockTimes.get(block);
    if (known !== undefined) blockTimes.set(block, known);
    else missing.push(block);
  }
  let fetched = 0;
  const timeProgress = blockProgress("block times");
  await mapWithLimit(missing, options.concurrency ?? 8, async (block) => {
    blockTimes.set(block, (await blocks.header(block)).timestamp);
    timeProgress(++fetched, missing.length);
  });

  if (options.checkpoint && !scan.checkpointAhead) {
    // What was read besides logs is saved too, so the next audit reads only new blocks (a checkpoint only grows).
    const knownTimes = new Map(scan.blockTimes);
    const savedCalls = new Set(scan.batchCalls.map(([key]) => key));
    for (const [block, time] of blockTimes) knownTimes.set(block, time);
    await options.checkpoint.save({
      chainId,
      tollgate,
      deployBlock,
      scannedTo: scan.scannedTo,
      trail: scan.trail,
      logs: scan.logs,
      blockTimes: [...knownTimes],
      // The saved ones first, in their order: a store may append only what follows them.
      batchCalls: [...scan.batchCalls, ...calls.filter(([key]) => !savedCalls.has(key))],
    });
  }

  const still = await rpc.call<{ hash: Hash } | null>("eth_getBlockByNumber", [numberToHex(auditBlock), false], `eth_getBlockByNumber(${auditBlock})`);
  if (still?.hash !== head.hash) {
    throw new ChainHistoryLoadError(`the chain reorganised under the audit block ${auditBlock} while the history was read`, {
      hint: "run again (a checkpoint resumes the scan), or audit at a block a few confirmations behind the head (the CLI's --at-block)",
    });
  }

  return {
    chainId,
    tollgate,
    credits,
    paymentToken,
    ...(subscriptions && { subscriptions }),
    deployBlock,
    auditBlock,
    logs: scan.logs,
    blockTimes,
    batches,
    stats: {
      requests: rpc.requests,
      requestsByMethod: { ...rpc.byMethod },
      retries: rpc.retries,
      logChunks: scan.chunks,
      rangeShrinks: scan.rangeShrinks,
      deployBlockRequests,
      resumedFrom: scan.resumedFrom,
      reorg: scan.reorg,
    },
  };
}
