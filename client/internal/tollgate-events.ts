/**
 * Tollgate's events of a few kinds, decoded, from a block to the latest, for the read actions behind the
 * market and provider pages. The range is read with the auditor's log scan (client/audit/rpc): chunks that
 * narrow when a provider caps `eth_getLogs` ranges, retries when it fails for a moment. Without a start block
 * the deployment block is found from the chain (a binary search over `eth_getCode`). Browser-safe: viem only.
 */
import { decodeEventLog, getAddress, numberToHex, pad, toEventSelector, type Address, type ContractEventName, type DecodeEventLogReturnType, type Hash, type Hex } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { HistoryLog } from "../audit/chain-history";
import { findDeployBlock } from "../audit/rpc/find-deploy-block";
import { scanLogs, type LogFilter } from "../audit/rpc/log-scan";
import { RpcCaller } from "../audit/rpc/rpc-caller";
import type { TollgateClient } from "../tollgate-client";

type TollgateAbi = typeof tollgateAbi;
export type TollgateEventName = ContractEventName<TollgateAbi>;

export type TollgateEvent<N extends TollgateEventName = TollgateEventName> = DecodeEventLogReturnType<TollgateAbi, N> & {
  blockNumber: bigint;
  logIndex: number;
  transactionHash: Hash;
};

/** One `eth_getLogs` selection: events of these names, optionally with some indexed topics fixed (position 1, 2, 3). */
export interface EventQuery {
  events: readonly TollgateEventName[];
  /** Indexed arguments by topic position (1-based after the selector); an array is "any of". */
  topics?: (Hex | Hex[] | null)[];
}

export interface ReadTollgateEventsParameters {
  /** Where to start reading logs (default: the block Tollgate was deployed in, found from the chain). */
  fromBlock?: bigint;
  /** The last block read (default: the latest). */
  toBlock?: bigint;
  /** The widest block range asked for at once (default: the scan's, 10,000). */
  maxRange?: bigint;
}

export interface TollgateEvents {
  events: TollgateEvent[];
  fromBlock: bigint;
  toBlock: bigint;
  /** JSON-RPC requests the read made, for a page that shows what loading cost. */
  requests: number;
}

export const topicOfNumber = (value: number | bigint): Hex => pad(numberToHex(value), { size: 32 });
export const topicOfAddress = (value: Address): Hex => pad(value.toLowerCase() as Hex, { size: 32 });

const selectorOf = (name: TollgateEventName): Hex => {
  const event = tollgateAbi.find((item) => item.type === "event" && item.name === name);
  if (!event || event.type !== "event") throw new Error(`Tollgate has no event ${name}`);
  return toEventSelector(event);
};

export async function readTollgateEvents(client: Pick<TollgateClient, "public" | "contracts">, queries: readonly EventQuery[], parameters: ReadTollgateEventsParameters = {}): Promise<TollgateEvents> {
  const rpc = new RpcCaller(client.public);
  const tollgate = getAddress(client.contracts.tollgate);
  const head = await rpc.call<{ number: Hex; hash: Hash } | null>("eth_getBlockByNumber", [parameters.toBlock === undefined ? "latest" : numberToHex(parameters.toBlock), false], "the last block to read");
  if (!head) throw new Error(`the chain has no block ${parameters.toBlock}`);
  const toBlock = BigInt(head.number);
  const fromBlock = parameters.fromBlock ?? (await findDeployBlock(rpc, tollgate, toBlock)).deployBlock;
  const filters: LogFilter[] = queries.map((query) => ({ address: tollgate, topics: [query.events.map(selectorOf), ...(query.topics ?? [])] }));
  const scan =
    fromBlock > toBlock
      ? { logs: [] as HistoryLog[] }
      : await scanLogs(rpc, { chainId: client.contracts.chainId, tollgate, deployBlock: fromBlock, auditBlock: toBlock, auditBlockHash: head.hash }, filters, { maxRange: parameters.maxRange });
  const events = scan.logs.map((log) => ({
    ...decodeEventLog({ abi: tollgateAbi, data: log.data, topics: log.topics as [Hex, ...Hex[]] }),
    blockNumber: log.blockNumber,
    logIndex: log.logIndex,
    transactionHash: log.transactionHash,
  })) as TollgateEvent[];
  return { events, fromBlock, toBlock, requests: rpc.requests };
}

/** The events of one name, typed. */
export function eventsNamed<N extends TollgateEventName>(events: readonly TollgateEvent[], name: N): TollgateEvent<N>[] {
  return events.filter((event) => event.eventName === name) as TollgateEvent<N>[];
}
