/**
 * Gathers a `ChainHistory` (see chain-history.ts) over any JSON-RPC endpoint: Tollgate's and its credits
 * token's logs, the payment token's transfers into and out of Tollgate, the time of every block holding one,
 * and the data of every settled batch.
 *
 * Browser-safe: viem only.
 */
import { decodeEventLog, decodeFunctionData, getAddress, numberToHex, pad, toEventSelector, type Address, type Hash, type Hex, type PublicClient } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { UsageBatch } from "../../server/chain/usage-batch";
import { batchKey, type BatchKey, type BatchSource, type ChainHistory, type HistoryLog } from "./chain-history";

const TRANSFER_TOPIC = toEventSelector("Transfer(address,address,uint256)");
const BATCH_SETTLED_TOPIC = toEventSelector(tollgateAbi.find((item) => item.type === "event" && item.name === "BatchSettled")!);
const BATCH_DATA_PUBLISHED_TOPIC = toEventSelector(tollgateAbi.find((item) => item.type === "event" && item.name === "BatchDataPublished")!);

export interface LoadChainHistoryTarget {
  tollgate: Address;
  /** The block Tollgate was deployed in (from the deployment file); found from the chain when absent. */
  deployBlock?: bigint;
}

export interface LoadChainHistoryOptions {
  /** The last block to read; the latest block when absent. */
  toBlock?: bigint;
}

export type LoadChainHistoryParameters = LoadChainHistoryOptions;
export type LoadChainHistoryReturnType = ChainHistory;

/** The shape `eth_getLogs` answers with; some nodes add `blockTimestamp`. */
interface RpcLog {
  address: Address;
  blockNumber: Hex;
  blockHash: Hash;
  logIndex: Hex;
  transactionHash: Hash;
  transactionIndex: Hex;
  topics: Hex[];
  data: Hex;
  blockTimestamp?: Hex;
  removed?: boolean;
}

interface LogFilter {
  address: Address | Address[];
  topics?: (Hex | null)[];
}

function toHistoryLog(log: RpcLog): HistoryLog {
  return {
    address: getAddress(log.address),
    blockNumber: BigInt(log.blockNumber),
    logIndex: Number(log.logIndex),
    transactionHash: log.transactionHash,
    transactionIndex: Number(log.transactionIndex),
    topics: log.topics,
    data: log.data,
  };
}

function byChainOrder(a: HistoryLog, b: HistoryLog): number {
  if (a.blockNumber !== b.blockNumber) return a.blockNumber < b.blockNumber ? -1 : 1;
  return a.logIndex - b.logIndex;
}

/** The filters that together select every log the auditor needs. */
export function historyLogFilters(tollgate: Address, credits: Address, paymentToken: Address): LogFilter[] {
  const self = pad(tollgate, { size: 32 }).toLowerCase() as Hex;
  return [
    { address: [tollgate, credits] },
    { address: paymentToken, topics: [TRANSFER_TOPIC, null, self] },
    { address: paymentToken, topics: [TRANSFER_TOPIC, self] },
  ];
}

/** `settleBatch(batch, signature)` calldata, decoded; undefined when it is some other call. */
export function decodeSettleBatchCall(data: Hex): { batch: UsageBatch; signature: Hex } | undefined {
  try {
    const call = decodeFunctionData({ abi: tollgateAbi, data });
    if (call.functionName !== "settleBatch") return undefined;
    const [batch, signature] = call.args;
    return { batch, signature };
  } catch {
    return undefined;
  }
}

/**
 * Reads one Tollgate deployment's history from `client`. This first version reads each filter over the whole
 * range in one request and each settlement transaction by hash.
 */
export async function loadChainHistory(client: PublicClient, target: LoadChainHistoryTarget, options: LoadChainHistoryOptions = {}): Promise<ChainHistory> {
  const tollgate = getAddress(target.tollgate);
  const [chainId, credits, paymentToken, latest] = await Promise.all([
    client.getChainId(),
    client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "credits" }),
    client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "paymentToken" }),
    options.toBlock === undefined ? client.getBlockNumber() : Promise.resolve(options.toBlock),
  ]);
  const deployBlock = target.deployBlock ?? 0n;
  const auditBlock = latest;
  const seen = new Set<string>();
  const logs: HistoryLog[] = [];
  for (const filter of historyLogFilters(tollgate, getAddress(credits), getAddress(paymentToken))) {
    const found = (await client.request({
      method: "eth_getLogs",
      params: [{ ...filter, fromBlock: numberToHex(deployBlock), toBlock: numberToHex(auditBlock) }],
    })) as unknown as RpcLog[];
    for (const log of found) {
      if (log.removed) continue;
      const key = `${log.blockNumber}:${log.logIndex}`;
      if (seen.has(key)) continue;
      seen.add(key);
      logs.push(toHistoryLog(log));
    }
  }
  logs.sort(byChainOrder);

  const blockTimes = new Map<bigint, number>();
  for (const blockNumber of new Set(logs.map((log) => log.blockNumber))) {
    const block = await client.getBlock({ blockNumber });
    blockTimes.set(blockNumber, Number(block.timestamp));
  }

  const batches = new Map<BatchKey, BatchSource>();
  for (const [index, log] of logs.entries()) {
    if (log.address !== tollgate || log.topics[0] !== BATCH_SETTLED_TOPIC) continue;
    const settled = decodeEventLog({ abi: tollgateAbi, eventName: "BatchSettled", topics: log.topics as [Hex, ...Hex[]], data: log.data });
    const published = logs.slice(index + 1).find((other) => {
      if (other.transactionHash !== log.transactionHash || other.topics[0] !== BATCH_DATA_PUBLISHED_TOPIC) return false;
      const args = decodeEventLog({ abi: tollgateAbi, eventName: "BatchDataPublished", topics: other.topics as [Hex, ...Hex[]], data: other.data }).args;
      return getAddress(args.signer) === getAddress(settled.args.signer) && args.firstSequence === settled.args.firstSequence;
    });
    if (published) {
      const args = decodeEventLog({ abi: tollgateAbi, eventName: "BatchDataPublished", topics: published.topics as [Hex, ...Hex[]], data: published.data }).args;
      const call = decodeSettleBatchCall(args.settleBatchCall);
      batches.set(batchKey(log), call ? { kind: "event", ...call } : { kind: "unavailable", reason: "BatchDataPublished holds bytes that are not a settleBatch call" });
      continue;
    }
    const tx = await client.getTransaction({ hash: log.transactionHash });
    const call = tx.to && getAddress(tx.to) === tollgate ? decodeSettleBatchCall(tx.input) : undefined;
    batches.set(
      batchKey(log),
      call ? { kind: "calldata", ...call } : { kind: "unavailable", reason: `transaction ${log.transactionHash} does not call settleBatch on Tollgate and published no BatchDataPublished` },
    );
  }

  return { chainId, tollgate, credits: getAddress(credits), paymentToken: getAddress(paymentToken), deployBlock, auditBlock, logs, blockTimes, batches };
}
