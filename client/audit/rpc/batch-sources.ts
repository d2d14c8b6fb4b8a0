/**
 * Finds the data of every settled batch, cheapest source first:
 *   1. `BatchDataPublished` in the same transaction, same signer and first sequence: already in the logs;
 *   2. the transaction's own calldata, when it was sent to Tollgate and calls `settleBatch` (blocks read
 *      whole, one request per block holding batches);
 *   3. a call trace (`debug_traceTransaction` with the callTracer), when asked for and the node offers it;
 *   4. otherwise `unavailable`, with why: the auditor reports it, never skips it.
 */
import { decodeEventLog, decodeFunctionData, getAddress, toEventSelector, type Address, type Hash, type Hex } from "viem";
import { tollgateAbi } from "../../../server/chain/abis";
import type { UsageBatch } from "../../../server/chain/usage-batch";
import { batchKey, type BatchKey, type BatchSource, type HistoryLog } from "../chain-history";
import type { BlockReader } from "./block-reader";
import type { SavedBatchCall } from "./checkpoint";
import { firstLine } from "./errors";
import { mapWithLimit, type RpcCaller } from "./rpc-caller";

type EventName = "BatchSettled" | "BatchDataPublished";

function topicOf(name: EventName): Hex {
  const item = tollgateAbi.find((entry) => entry.type === "event" && entry.name === name);
  if (!item || item.type !== "event") throw new Error(`the Tollgate ABI has no ${name} event`);
  return toEventSelector(item);
}

export const BATCH_SETTLED_TOPIC = topicOf("BatchSettled");
export const BATCH_DATA_PUBLISHED_TOPIC = topicOf("BatchDataPublished");

/** `settleBatch(batch, signature)` calldata, decoded; undefined when it is some other call or not decodable. */
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
 * The (signer, first sequence) a batch log names (indexed topics of both events), and for BatchDataPublished
 * its bytes; undefined when the log does not decode (a faulty contract's: the auditor names it).
 */
function batchIdentity(log: HistoryLog, eventName: EventName): { signer: Address; firstSequence: bigint; published?: Hex } | undefined {
  try {
    const { args } = decodeEventLog({ abi: tollgateAbi, eventName, topics: log.topics as [Hex, ...Hex[]], data: log.data }) as {
      args: { signer: Address; firstSequence: bigint; settleBatchCall?: Hex };
    };
    return { signer: getAddress(args.signer), firstSequence: args.firstSequence, published: args.settleBatchCall };
  } catch {
    return undefined;
  }
}

interface CallFrame {
  type?: string;
  to?: Address;
  input?: Hex;
  error?: string;
  calls?: CallFrame[];
}

export interface ResolveBatchSourcesOptions {
  /** Try `debug_traceTransaction` for batches found neither in an event nor in calldata. Default false. */
  traces?: boolean;
  /** Block fetches in flight at once. Default 8. */
  concurrency?: number;
  onBlockFetched?: (fetched: number, total: number) => void;
  /** settleBatch calls read before (a checkpoint's): used instead of reading their blocks again. */
  known?: readonly SavedBatchCall[];
}

export interface ResolvedBatchSources {
  sources: Map<BatchKey, BatchSource>;
  /** The calls read from transactions and traces (known ones included), for the next checkpoint. */
  calls: SavedBatchCall[];
}

export async function resolveBatchSources(
  rpc: RpcCaller,
  blocks: BlockReader,
  tollgate: Address,
  logs: readonly HistoryLog[],
  options: ResolveBatchSourcesOptions = {},
): Promise<ResolvedBatchSources> {
  const sources = new Map<BatchKey, BatchSource>();
  const settledLogs: { log: HistoryLog; signer: Address; firstSequence: bigint }[] = [];
  const published = new Map<Hash, { signer: Address; firstSequence: bigint; published?: Hex }[]>();
  for (const log of logs) {
    if (log.address !== tollgate) continue;
    if (log.topics[0] === BATCH_SETTLED_TOPIC) {
      const identity = batchIdentity(log, "BatchSettled");
      if (identity) settledLogs.push({ log, ...identity });
      else sources.set(batchKey(log), { kind: "unavailable", reason: "the BatchSettled log does not decode with Tollgate's ABI, so its batch cannot be looked for" });
    } else if (log.topics[0] === BATCH_DATA_PUBLISHED_TOPIC) {
      const identity = batchIdentity(log, "BatchDataPublished");
      if (identity) published.set(log.transactionHash, [...(published.get(log.transactionHash) ?? []), identity]);
    }
  }

  const calls: SavedBatchCall[] = [];
  const known = new Map((options.known ?? []).map(([key, kind, call]) => [key, { kind, call }]));
  const why = new Map<BatchKey, string>();
  const pending: typeof settledLogs = [];
  for (const settled of settledLogs) {
    const key = batchKey(settled.log);
    const before = known.get(key);
    const decoded = before && decodeSettleBatchCall(before.call);
    if (before && decoded && decoded.batch.firstSequence === settled.firstSequence) {
      sources.set(key, { kind: before.kind, ...decoded });
      calls.push([key, before.kind, before.call]);
      continue;
    }
    const match = published.get(settled.log.transactionHash)?.find((p) => p.signer === settled.signer && p.firstSequence === settled.firstSequence);
    if (!match) {
      pending.push(settled);
      continue;
    }
    const call = match.published && decodeSettleBatchCall(match.published);
    if (call && call.batch.firstSequence === settled.firstSequence) sources.set(batchKey(settled.log), { kind: "event", ...call });
    else {
      why.set(batchKey(settled.log), "its BatchDataPublished holds bytes that are not this batch's settleBatch call");
      pending.push(settled);
    }
  }

  // Calldata: every block holding an unresolved batch, read once with its transactions.
  const blockNumbers = [...new Set(pending.map((p) => p.log.blockNumber))];
  let fetched = 0;
  await mapWithLimit(blockNumbers, options.concurrency ?? 8, async (block) => {
    await blocks.withTransactions(block);
    options.onBlockFetched?.(++fetched, blockNumbers.length);
  });
  const untraced: typeof pending = [];
  for (const settled of pending) {
    const key = batchKey(settled.log);
    const block = await blocks.withTransactions(settled.log.blockNumber);
    const tx = block.transactions[settled.log.transactionIndex]?.hash === settled.log.transactionHash
      ? block.transactions[settled.log.transactionIndex]
      : block.transactions.find((candidate) => candidate.hash === settled.log.transactionHash);
    if (!tx) {
      why.set(key, `block ${settled.log.blockNumber} as the node returned it does not hold transaction ${settled.log.transactionHash}`);
      untraced.push(settled);
      continue;
    }
    const call = tx.to === tollgate ? decodeSettleBatchCall(tx.input) : undefined;
    if (call && call.batch.firstSequence === settled.firstSequence) {
      sources.set(key, { kind: "calldata", ...call });
      calls.push([key, "calldata", tx.input]);
      continue;
    }
    if (!why.has(key)) {
      why.set(
        key,
        tx.to === tollgate
          ? `transaction ${tx.hash} calls Tollgate, but not settleBatch for batch ${settled.firstSequence}`
          : `transaction ${tx.hash} was sent to ${tx.to ?? "no address (a deployment)"}, not Tollgate, and no BatchDataPublished in it carries the batch`,
      );
    }
    untraced.push(settled);
  }

  let tracesUnsupported: string | undefined = options.traces ? undefined : "call traces were not tried (enable them for a node with debug_traceTransaction)";
  for (const settled of untraced) {
    const key = batchKey(settled.log);
    if (!tracesUnsupported) {
      try {
        const root = await rpc.call<CallFrame>("debug_traceTransaction", [settled.log.transactionHash, { tracer: "callTracer" }], `debug_traceTransaction(${settled.log.transactionHash})`);
        const found = findSettleBatchCall(root, tollgate, settled.firstSequence);
        if (found) {
          sources.set(key, { kind: "trace", ...found.call });
          calls.push([key, "trace", found.input]);
          continue;
        }
        why.set(key, `${why.get(key)}; its call trace holds no successful settleBatch call to Tollgate for batch ${settled.firstSequence}`);
      } catch (error) {
        // Traces are the optional last resort: a node that will not give one (no debug namespace, no
        // callTracer, a trace too large) leaves this batch and the rest unavailable, each a finding.
        tracesUnsupported = `the node gave no call trace (${firstLine(error)})`;
      }
    }
    const reason = why.get(key) ?? `batch ${settled.firstSequence} of ${settled.signer} was found nowhere`;
    sources.set(key, { kind: "unavailable", reason: tracesUnsupported ? `${reason}; ${tracesUnsupported}` : reason });
  }
  return { sources, calls };
}

/** The settleBatch call to `tollgate` for the batch starting at `firstSequence` in a callTracer frame tree, if it succeeded. */
function findSettleBatchCall(frame: CallFrame, tollgate: Address, firstSequence: bigint): { call: { batch: UsageBatch; signature: Hex }; input: Hex } | undefined {
  if (frame.error) return undefined;
  if (frame.to && getAddress(frame.to) === tollgate && frame.input && (frame.type ?? "CALL").toUpperCase() === "CALL") {
    const call = decodeSettleBatchCall(frame.input);
    if (call && call.batch.firstSequence === firstSequence) return { call, input: frame.input };
  }
  for (const child of frame.calls ?? []) {
    const found = findSettleBatchCall(child, tollgate, firstSequence);
    if (found) return found;
  }
  return undefined;
}
