/**
 * What the oracle learns from Tollgate's events: which batches of a signer the chain has settled (so a
 * restarted oracle marks records settled by a transaction it sent but never saw mined, or by anyone
 * else who relayed them), and which buyers have a withdrawal pending (so their usage settles first).
 * Logs are read in windows of `blockRange` blocks, which public RPC endpoints require.
 */
import { getAddress, type Address, type Hex, type PublicClient } from "viem";
import { tollgateAbi } from "../chain/abis";

export interface SettledBatchLog {
  signer: Address;
  firstSequence: bigint;
  recordCount: bigint;
  commitment: Hex;
  txHash: Hex;
  blockNumber: bigint;
}

type EventName = "BatchSettled" | "WithdrawalRequested" | "WithdrawalCancelled" | "Withdrawn";
const WITHDRAWAL_EVENTS: readonly EventName[] = ["WithdrawalRequested", "WithdrawalCancelled", "Withdrawn"];

/** Reads events of one kind over [fromBlock, toBlock] in windows. */
async function eventsInRange(
  client: PublicClient,
  address: Address,
  eventName: EventName,
  args: Record<string, unknown> | undefined,
  fromBlock: bigint,
  toBlock: bigint,
  blockRange: number,
) {
  const logs = [];
  for (let from = fromBlock; from <= toBlock; from += BigInt(blockRange)) {
    const to = from + BigInt(blockRange) - 1n < toBlock ? from + BigInt(blockRange) - 1n : toBlock;
    logs.push(...(await client.getContractEvents({ address, abi: tollgateAbi, eventName, args, fromBlock: from, toBlock: to, strict: true } as never)));
  }
  return logs as unknown as { args: Record<string, unknown>; transactionHash: Hex; blockNumber: bigint; eventName: EventName }[];
}

/** Follows one signer's `BatchSettled` events from the deployment block on. */
export class SettledBatchScanner {
  private nextBlock: bigint;

  constructor(
    private readonly client: PublicClient,
    private readonly tollgate: Address,
    private readonly signer: Address,
    fromBlock: bigint,
    private readonly blockRange: number,
  ) {
    this.nextBlock = fromBlock;
  }

  /** Reads again from `block` on: after a reorganisation, blocks already read may have been replaced. */
  rewind(block: bigint): void {
    if (block < this.nextBlock) this.nextBlock = block;
  }

  /** Batches settled since the last call, up to the latest block. */
  async newBatches(): Promise<SettledBatchLog[]> {
    const latest = await this.client.getBlockNumber({ cacheTime: 0 });
    if (latest < this.nextBlock) return [];
    const logs = await eventsInRange(this.client, this.tollgate, "BatchSettled", { signer: this.signer }, this.nextBlock, latest, this.blockRange);
    this.nextBlock = latest + 1n;
    return logs.map((log) => ({
      signer: getAddress(log.args.signer as string),
      firstSequence: log.args.firstSequence as bigint,
      recordCount: log.args.recordCount as bigint,
      commitment: log.args.commitment as Hex,
      txHash: log.transactionHash,
      blockNumber: log.blockNumber,
    }));
  }
}

/** Buyers with a withdrawal pending and when it becomes executable, kept current from the vault's events. */
export class WithdrawalWatch {
  private nextBlock: bigint;
  private readonly executableAt = new Map<Address, number>();

  constructor(
    private readonly client: PublicClient,
    private readonly tollgate: Address,
    fromBlock: bigint,
    private readonly blockRange: number,
  ) {
    this.nextBlock = fromBlock;
  }

  async refresh(): Promise<void> {
    const latest = await this.client.getBlockNumber({ cacheTime: 0 });
    if (latest < this.nextBlock) return;
    // One eth_getLogs per window for all three events, in chain order.
    const events = tollgateAbi.filter((item) => item.type === "event" && WITHDRAWAL_EVENTS.includes(item.name as EventName));
    for (let from = this.nextBlock; from <= latest; from += BigInt(this.blockRange)) {
      const to = from + BigInt(this.blockRange) - 1n < latest ? from + BigInt(this.blockRange) - 1n : latest;
      const logs = await this.client.getLogs({ address: this.tollgate, events: events as never, fromBlock: from, toBlock: to, strict: true });
      for (const log of logs as unknown as { eventName: EventName; args: Record<string, unknown> }[]) {
        const buyer = getAddress(log.args.buyer as string);
        if (log.eventName === "WithdrawalRequested") this.executableAt.set(buyer, Number(log.args.withdrawableAt as bigint));
        else this.executableAt.delete(buyer);
      }
    }
    this.nextBlock = latest + 1n;
  }

  /** Buyers among `buyers` whose pending withdrawal is executable at `chainNow + withinSeconds` or earlier. */
  urgent(buyers: Iterable<Address>, chainNow: number, withinSeconds: number): Address[] {
    const out: Address[] = [];
    for (const buyer of buyers) {
      const at = this.executableAt.get(getAddress(buyer));
      if (at !== undefined && at - chainNow <= withinSeconds) out.push(getAddress(buyer));
    }
    return out;
  }
}
