/**
 * `eth_getLogs` over a long block range, in chunks that adapt to what the provider accepts: start at the
 * configured range, halve it (or take the range the provider suggests) when it refuses a range as too wide or
 * an answer as too large, grow it again after a run of successes. Transient failures are retried by the
 * RpcCaller. With a checkpoint store, progress is saved after every chunk and a later scan resumes after the
 * last saved chunk, first checking the saved block hashes against the chain and stepping back past a reorg.
 */
import { getAddress, numberToHex, type Address, type Hash, type Hex } from "viem";
import { batchKey, type HistoryLog } from "../chain-history";
import { CHECKPOINT_TRAIL, type Checkpoint, type CheckpointBlock, type CheckpointStore, type SavedBatchCall } from "./checkpoint";
import { ChainHistoryLoadError, firstLine } from "./errors";
import { classifyRpcError } from "./provider-errors";
import type { RpcCaller } from "./rpc-caller";

export interface LogFilter {
  address: Address | Address[];
  /** Per position: a topic, any of several (OR), or anything (null), as `eth_getLogs` takes them. */
  topics?: (Hex | Hex[] | null)[];
}

/** The shape `eth_getLogs` answers with; some nodes add `blockTimestamp`. */
interface RpcLog {
  address: Address;
  blockNumber: Hex;
  logIndex: Hex;
  transactionHash: Hash;
  transactionIndex: Hex;
  topics: Hex[];
  data: Hex;
  blockTimestamp?: Hex;
  removed?: boolean;
}

export interface ScanProgress {
  phase: "logs" | "blocks";
  /**
   * In the "logs" phase, the chunk just scanned (at the start: what a checkpoint already covered, empty when
   * nothing, fromBlock > toBlock); in the "blocks" phase, the whole history.
   */
  fromBlock: bigint;
  toBlock: bigint;
  scannedBlocks: bigint;
  totalBlocks: bigint;
  logs: number;
  requests: number;
  /** In the "blocks" phase: what the blocks are read for, and how many of how many are read. */
  step?: "batch calldata" | "block times";
  blocksFetched?: number;
  blocksToFetch?: number;
}

export interface LogScanOptions {
  /** The widest range asked for in one request, and the first one tried. Default 10,000 blocks. */
  maxRange?: bigint;
  /** Successes in a row before the range doubles again (up to maxRange). Default 2. */
  growAfter?: number;
  checkpoint?: CheckpointStore;
  onProgress?: (progress: ScanProgress) => void;
  /** Things a person watching may want to know: a narrower range, a resume, a reorg stepped back over. */
  onNotice?: (message: string) => void;
}

export interface LogScanTarget {
  chainId: number;
  tollgate: Address;
  deployBlock: bigint;
  auditBlock: bigint;
  auditBlockHash: Hash;
}

export interface LogScanResult {
  logs: HistoryLog[];
  /** Times the provider sent with the logs (`blockTimestamp`), and those a checkpoint held. */
  blockTimes: Map<bigint, number>;
  /** Batch calls a checkpoint held, for batches whose logs are still in `logs`. */
  batchCalls: SavedBatchCall[];
  /** Where the scan ends, and the chunk ends with their hashes: for the loader's last checkpoint save. */
  scannedTo: bigint;
  trail: CheckpointBlock[];
  /** The checkpoint reaches past the audit block: saving this shorter scan over it would only lose work. */
  checkpointAhead?: boolean;
  chunks: number;
  rangeShrinks: number;
  /** The range the scan ended with. */
  finalRange: bigint;
  /** Set when a checkpoint was used: the first block this scan asked for. */
  resumedFrom?: bigint;
  /** Set when the checkpoint's blocks were no longer on the chain: where it had got to, and where the scan stepped back to. */
  reorg?: { checkpointScannedTo: bigint; resumedFrom: bigint };
}

export const DEFAULT_MAX_RANGE = 10_000n;

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

export function byChainOrder(a: HistoryLog, b: HistoryLog): number {
  if (a.blockNumber !== b.blockNumber) return a.blockNumber < b.blockNumber ? -1 : 1;
  return a.logIndex - b.logIndex;
}

async function blockHash(rpc: RpcCaller, block: bigint): Promise<Hash | undefined> {
  const found = await rpc.call<{ hash: Hash } | null>("eth_getBlockByNumber", [numberToHex(block), false], `eth_getBlockByNumber(${block})`);
  return found?.hash;
}

/**
 * The newest chunk end of a saved scan still on the chain, or none. A block's hash commits to every block
 * before it, so when that end still matches, every log the checkpoint holds up to it is still the chain's.
 * Ends past the audit block count too (an audit at an earlier block reuses a longer scan).
 */
async function resumePoint(rpc: RpcCaller, saved: Checkpoint, target: LogScanTarget): Promise<CheckpointBlock | undefined> {
  for (let i = saved.trail.length - 1; i >= 0; i--) {
    const entry = saved.trail[i];
    const hash = entry.block === target.auditBlock ? target.auditBlockHash : await blockHash(rpc, entry.block);
    if (hash === entry.hash) return entry;
  }
  return undefined;
}

export async function scanLogs(rpc: RpcCaller, target: LogScanTarget, filters: readonly LogFilter[], options: LogScanOptions = {}): Promise<LogScanResult> {
  const maxRange = options.maxRange ?? DEFAULT_MAX_RANGE;
  if (maxRange < 1n) throw new ChainHistoryLoadError(`the maximum block range must be at least 1, not ${maxRange}`);
  const growAfter = options.growAfter ?? 2;
  const notice = options.onNotice ?? (() => {});
  const { deployBlock, auditBlock } = target;
  const totalBlocks = auditBlock - deployBlock + 1n;

  let logs: HistoryLog[] = [];
  const blockTimes = new Map<bigint, number>();
  let trail: CheckpointBlock[] = [];
  let from = deployBlock;
  let batchCalls: SavedBatchCall[] = [];
  const result: Pick<LogScanResult, "chunks" | "rangeShrinks" | "resumedFrom" | "reorg" | "checkpointAhead"> = { chunks: 0, rangeShrinks: 0 };

  const saved = await options.checkpoint?.load();
  if (saved) {
    const same = saved.chainId === target.chainId && getAddress(saved.tollgate) === target.tollgate && saved.deployBlock === deployBlock;
    if (!same) {
      notice(`the checkpoint is for another deployment (chain ${saved.chainId}, ${saved.tollgate} from block ${saved.deployBlock}); scanning from the start`);
    } else {
      const point = await resumePoint(rpc, saved, target);
      if (!point) {
        notice(`none of the checkpoint's blocks up to ${saved.scannedTo} is on the chain any more (a reorganisation, or a restarted chain); scanning from the start`);
        result.reorg = { checkpointScannedTo: saved.scannedTo, resumedFrom: deployBlock };
      } else {
        if (point.block < saved.scannedTo) {
          notice(`blocks after ${point.block} changed since the checkpoint was saved (a reorganisation); rescanning from block ${point.block + 1n}`);
          result.reorg = { checkpointScannedTo: saved.scannedTo, resumedFrom: point.block + 1n };
        }
        const upTo = point.block < auditBlock ? point.block : auditBlock;
        result.checkpointAhead = point.block > auditBlock;
        logs = saved.logs.filter((log) => log.blockNumber <= upTo);
        for (const [block, time] of saved.blockTimes) if (block <= upTo) blockTimes.set(block, time);
        trail = saved.trail.filter((entry) => entry.block <= upTo);
        const kept = new Set(logs.map(batchKey));
        batchCalls = (saved.batchCalls ?? []).filter(([key]) => kept.has(key));
        if (upTo === auditBlock && trail[trail.length - 1]?.block !== auditBlock) trail.push({ block: auditBlock, hash: target.auditBlockHash });
        from = upTo + 1n;
        if (from <= auditBlock) notice(`resuming the scan at block ${from} (${logs.length} logs from the checkpoint)`);
      }
      result.resumedFrom = from;
    }
  }
  const seen = new Set(logs.map((log) => `${log.blockNumber}:${log.logIndex}`));

  const progress = (chunkFrom: bigint, chunkTo: bigint) =>
    options.onProgress?.({ phase: "logs", fromBlock: chunkFrom, toBlock: chunkTo, scannedBlocks: from - deployBlock, totalBlocks, logs: logs.length, requests: rpc.requests });
  progress(deployBlock, from - 1n);

  let range = maxRange;
  let successes = 0;
  while (from <= auditBlock) {
    const to = from + range - 1n < auditBlock ? from + range - 1n : auditBlock;
    const what = `eth_getLogs for blocks ${from}-${to}`;
    let answers: RpcLog[][];
    let endHash: Hash | undefined;
    try {
      const span = { fromBlock: numberToHex(from), toBlock: numberToHex(to) };
      // A provider that times out on a wide range is refusing it in effect: narrow at once rather than retry it.
      const requests: Promise<unknown>[] = filters.map((filter) => rpc.call<RpcLog[]>("eth_getLogs", [{ ...filter, ...span }], what, { timeoutMeansTooLarge: to > from }));
      // The chunk end's hash lets a resume tell whether these blocks are still the chain's.
      if (options.checkpoint) requests.push(to === auditBlock ? Promise.resolve(target.auditBlockHash) : blockHash(rpc, to));
      const settled = await Promise.allSettled(requests);
      const failed = settled.find((outcome) => outcome.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const values = settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value);
      answers = values.slice(0, filters.length) as RpcLog[][];
      endHash = options.checkpoint ? (values[filters.length] as Hash | undefined) : undefined;
    } catch (error) {
      const classified = classifyRpcError(error);
      if (error instanceof ChainHistoryLoadError || classified.kind !== "range") throw error;
      if (to === from) {
        throw new ChainHistoryLoadError(`the provider refuses the logs of block ${from} alone: ${firstLine(error)}`, {
          cause: error,
          hint: "this block holds more logs than the provider returns in one answer; use a provider without that cap (your own node, or a higher plan)",
        });
      }
      const span = to - from + 1n;
      const suggested = classified.suggestedRange;
      const next = suggested && suggested.fromBlock === from && suggested.toBlock < to ? suggested.toBlock - from + 1n : span / 2n;
      range = next < 1n ? 1n : next;
      successes = 0;
      result.rangeShrinks++;
      notice(`the provider refused ${span} blocks at once (${firstLine(error)}); asking for ${range}`);
      continue;
    }

    const chunkFrom = from;
    const chunk: HistoryLog[] = [];
    for (const answer of answers) {
      for (const raw of answer) {
        if (raw.removed) continue;
        const log = toHistoryLog(raw);
        const key = `${log.blockNumber}:${log.logIndex}`;
        if (seen.has(key)) continue;
        seen.add(key);
        chunk.push(log);
        if (raw.blockTimestamp) blockTimes.set(log.blockNumber, Number(BigInt(raw.blockTimestamp)));
      }
    }
    chunk.sort(byChainOrder);
    for (const log of chunk) logs.push(log);
    result.chunks++;
    from = to + 1n;

    if (options.checkpoint) {
      if (!endHash) throw new ChainHistoryLoadError(`the node has no block ${to}`, { hint: "the node is behind the block asked for; audit at an earlier block, or use a node that is in sync" });
      trail.push({ block: to, hash: endHash });
      if (trail.length > CHECKPOINT_TRAIL) trail = trail.slice(-CHECKPOINT_TRAIL);
      await options.checkpoint.save({ chainId: target.chainId, tollgate: target.tollgate, deployBlock, scannedTo: to, trail, logs, blockTimes: [...blockTimes], batchCalls });
    }
    progress(chunkFrom, to);
    if (++successes >= growAfter && range < maxRange) {
      range = range * 2n > maxRange ? maxRange : range * 2n;
      successes = 0;
    }
  }
  return { ...result, logs, blockTimes, batchCalls, scannedTo: from - 1n, trail, finalRange: range };
}
