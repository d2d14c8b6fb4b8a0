/**
 * What the oracle learns from Tollgate's events: which batches of a signer the chain has settled (so a
 * restarted oracle marks records settled by a transaction it sent but never saw mined, or by anyone
 * else who relayed them), and which buyers have a withdrawal pending (so their usage settles first).
 * Logs are read in windows of `blockRange` blocks, which public RPC endpoints require. Both follow the
 * chain through reorganisations: blocks already read that the chain replaced are read again (ScanCursor).
 */
import { BlockNotFoundError, getAddress, type Address, type Hex, type PublicClient } from "viem";
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

/**
 * Where a log scan resumes, and the hash of the last block it read. When the chain no longer has that block at
 * that height, a reorganisation replaced blocks already read (their events may be gone, or others in their
 * place): the scan starts again from its first block. Depth-agnostic, at one block header per pass.
 */
class ScanCursor {
  next: bigint;
  private last: { number: bigint; hash: Hex } | undefined;
  private head: { number: bigint; hash: Hex } | undefined;

  constructor(
    private readonly client: PublicClient,
    private readonly first: bigint,
  ) {
    this.next = first;
  }

  /** The latest block to read up to, and whether a reorganisation sent the cursor back to its first block. */
  async latest(): Promise<{ latest: bigint; reorganised: boolean }> {
    const head = await this.client.getBlock({ blockTag: "latest" });
    this.head = { number: head.number, hash: head.hash };
    if (this.last === undefined) return { latest: head.number, reorganised: false };
    const now =
      this.last.number === head.number
        ? head
        : await this.client.getBlock({ blockNumber: this.last.number }).catch((error: unknown) => {
            // A chain now shorter than what was read: reorganised too.
            if (error instanceof BlockNotFoundError) return undefined;
            throw error;
          });
    if (now?.hash === this.last.hash) return { latest: head.number, reorganised: false };
    this.next = this.first;
    this.last = undefined;
    return { latest: head.number, reorganised: true };
  }

  /** Everything up to the block `latest()` returned has been read. */
  read(): void {
    if (this.head === undefined) return;
    this.next = this.head.number + 1n;
    this.last = this.head;
  }

  rewind(block: bigint): void {
    if (block < this.next) this.next = block;
  }
}

/** Follows one signer's `BatchSettled` events from the deployment block on. */
export class SettledBatchScanner {
  private readonly cursor: ScanCursor;

  constructor(
    private readonly client: PublicClient,
    private readonly tollgate: Address,
    private readonly signer: Address,
    fromBlock: bigint,
    private readonly blockRange: number,
  ) {
    this.cursor = new ScanCursor(client, fromBlock);
  }

  /** Reads again from `block` on: after a reorganisation, blocks already read may have been replaced. */
  rewind(block: bigint): void {
    this.cursor.rewind(block);
  }

  /** Batches settled since the last call, up to the latest block (after a reorganisation: all of them again). */
  async newBatches(): Promise<SettledBatchLog[]> {
    const { latest } = await this.cursor.latest();
    if (latest < this.cursor.next) return [];
    const logs = await eventsInRange(this.client, this.tollgate, "BatchSettled", { signer: this.signer }, this.cursor.next, latest, this.blockRange);
    this.cursor.read();
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
  private readonly cursor: ScanCursor;
  private readonly executableAt = new Map<Address, number>();

  constructor(
    private readonly client: PublicClient,
    private readonly tollgate: Address,
    fromBlock: bigint,
    private readonly blockRange: number,
  ) {
    this.cursor = new ScanCursor(client, fromBlock);
  }

  async refresh(): Promise<void> {
    const { latest, reorganised } = await this.cursor.latest();
    // A dropped cancellation or withdrawal means a withdrawal pending again: rebuilt from the chain as it is now.
    if (reorganised) this.executableAt.clear();
    if (latest < this.cursor.next) return;
    // One eth_getLogs per window for all three events, in chain order.
    const events = tollgateAbi.filter((item) => item.type === "event" && WITHDRAWAL_EVENTS.includes(item.name as EventName));
    for (let from = this.cursor.next; from <= latest; from += BigInt(this.blockRange)) {
      const to = from + BigInt(this.blockRange) - 1n < latest ? from + BigInt(this.blockRange) - 1n : latest;
      const logs = await this.client.getLogs({ address: this.tollgate, events: events as never, fromBlock: from, toBlock: to, strict: true });
      for (const log of logs as unknown as { eventName: EventName; args: Record<string, unknown> }[]) {
        const buyer = getAddress(log.args.buyer as string);
        if (log.eventName === "WithdrawalRequested") this.executableAt.set(buyer, Number(log.args.withdrawableAt as bigint));
        else this.executableAt.delete(buyer);
      }
    }
    this.cursor.read();
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
