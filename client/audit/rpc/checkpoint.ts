/**
 * A log scan's progress, saved after every chunk so a scan killed halfway resumes where it stopped: which
 * deployment, how far, the hashes of recent chunk ends (a resume compares them with the chain to notice a
 * reorganisation and step back), and the logs gathered so far. Where it is kept is the caller's: the CLI
 * keeps it in a JSON-lines file (scripts/lib/audit-checkpoint-file.ts), a browser could keep it in IndexedDB.
 * Browser-safe.
 */
import type { Address, Hash, Hex } from "viem";
import type { BatchKey, HistoryLog } from "../chain-history";

export interface CheckpointBlock {
  block: bigint;
  hash: Hash;
}

export interface Checkpoint {
  chainId: number;
  tollgate: Address;
  deployBlock: bigint;
  /** Every log from `deployBlock` through this block is in `logs`. */
  scannedTo: bigint;
  /** Recent chunk ends with their hashes, oldest first; the last is `scannedTo`'s. */
  trail: CheckpointBlock[];
  logs: HistoryLog[];
  /** Block times already known (given with the logs, or read), so a resume need not ask again. Only grows, like `logs`. */
  blockTimes: [bigint, number][];
  /**
   * The settleBatch calls already read from transactions or traces (a relayed batch's is in its log), so a
   * later audit does not read those blocks again. Safe across reorganisations: a transaction's hash commits
   * to its calldata. Only grows.
   */
  batchCalls?: SavedBatchCall[];
}

export type SavedBatchCall = [key: BatchKey, kind: "calldata" | "trace", call: Hex];

export interface CheckpointStore {
  load(): Promise<Checkpoint | undefined>;
  /** Called after each chunk with the whole checkpoint; a store may write only what is new (logs only grow, except after a reorg). */
  save(checkpoint: Checkpoint): Promise<void>;
}

/** How many chunk ends a checkpoint remembers: a reorganisation deeper than this many chunks restarts the scan. */
export const CHECKPOINT_TRAIL = 32;

/** A store in memory: for tests, and for a caller that scans twice in one process. */
export function memoryCheckpointStore(initial?: Checkpoint): CheckpointStore & { current?: Checkpoint; saves: number } {
  const store = {
    current: initial,
    saves: 0,
    async load() {
      return store.current && structuredClone(store.current);
    },
    async save(checkpoint: Checkpoint) {
      store.saves++;
      store.current = structuredClone(checkpoint);
    },
  };
  return store;
}

/** A log as JSON (bigints as decimal strings), compact because a checkpoint may hold many. */
export type SerializedLog = [address: Address, blockNumber: string, logIndex: number, transactionHash: Hash, transactionIndex: number, topics: readonly Hex[], data: Hex];

export function serializeLog(log: HistoryLog): SerializedLog {
  return [log.address, log.blockNumber.toString(), log.logIndex, log.transactionHash, log.transactionIndex, log.topics, log.data];
}

export function deserializeLog([address, blockNumber, logIndex, transactionHash, transactionIndex, topics, data]: SerializedLog): HistoryLog {
  return { address, blockNumber: BigInt(blockNumber), logIndex, transactionHash, transactionIndex, topics, data };
}
