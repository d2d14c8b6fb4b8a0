/**
 * Blocks the loader needs, each fetched once: with their transactions where a batch's calldata is read
 * (`eth_getBlockByNumber(n, true)`, one request however many batches the block holds, instead of one
 * `eth_getTransaction` each), headers only where just the time is needed.
 */
import { getAddress, numberToHex, type Address, type Hash, type Hex } from "viem";
import type { RpcCaller } from "./rpc-caller";

export interface RpcTransaction {
  hash: Hash;
  to: Address | null;
  input: Hex;
  transactionIndex: Hex;
}

export interface BlockHeader {
  number: bigint;
  hash: Hash;
  timestamp: number;
}

export interface BlockWithTransactions extends BlockHeader {
  transactions: RpcTransaction[];
}

interface RpcBlock {
  number: Hex;
  hash: Hash;
  timestamp: Hex;
  transactions: RpcTransaction[] | Hash[];
}

function headerOf(block: RpcBlock): BlockHeader {
  return { number: BigInt(block.number), hash: block.hash, timestamp: Number(BigInt(block.timestamp)) };
}

export class BlockReader {
  private readonly full = new Map<bigint, Promise<BlockWithTransactions>>();
  private readonly headers = new Map<bigint, Promise<BlockHeader>>();

  constructor(private readonly rpc: RpcCaller) {}

  private async fetch(block: bigint, withTransactions: boolean): Promise<RpcBlock> {
    const found = await this.rpc.call<RpcBlock | null>("eth_getBlockByNumber", [numberToHex(block), withTransactions], `eth_getBlockByNumber(${block})`);
    if (!found) throw new Error(`the node has no block ${block}`);
    return found;
  }

  withTransactions(block: bigint): Promise<BlockWithTransactions> {
    let found = this.full.get(block);
    if (!found) {
      found = this.fetch(block, true).then((raw) => ({
        ...headerOf(raw),
        transactions: (raw.transactions as RpcTransaction[]).map((tx) => ({ ...tx, to: tx.to ? getAddress(tx.to) : null })),
      }));
      this.full.set(block, found);
    }
    return found;
  }

  header(block: bigint): Promise<BlockHeader> {
    const full = this.full.get(block);
    if (full) return full;
    let found = this.headers.get(block);
    if (!found) {
      found = this.fetch(block, false).then(headerOf);
      this.headers.set(block, found);
    }
    return found;
  }
}
