/**
 * What the chain auditor works from: everything one Tollgate deployment wrote to the chain, gathered once
 * (`load-chain-history.ts` does it over any JSON-RPC endpoint), and a reader of the contracts' state at the
 * audit block. The auditor (`chain-audit.ts`) is a pure function of these two, so it can be tested on a
 * history a faulty contract wrote, and run in a browser on a history loaded there.
 *
 * Browser-safe: types only, viem's.
 */
import type { Address, Hash, Hex } from "viem";
import type { UsageBatch } from "../../server/chain/usage-batch";

/** One log as `eth_getLogs` returns it, undecoded: the auditor decodes with the ABIs it trusts. */
export interface HistoryLog {
  address: Address;
  blockNumber: bigint;
  /** Position of the log in its block: with the block number, the order the chain applied it in. */
  logIndex: number;
  transactionHash: Hash;
  transactionIndex: number;
  topics: readonly Hex[];
  data: Hex;
}

/** Where the auditor found a settled batch's data, or why it could not. */
export type BatchSource =
  /** The transaction's own calldata: an account without code called `settleBatch` directly. */
  | { kind: "calldata"; batch: UsageBatch; signature: Hex }
  /** `BatchDataPublished` in the same transaction: the batch was relayed through a contract. */
  | { kind: "event"; batch: UsageBatch; signature: Hex }
  /** A call trace of the transaction (`debug_traceTransaction`), where the node offers one. */
  | { kind: "trace"; batch: UsageBatch; signature: Hex }
  /** Not found anywhere: the auditor reports it as a finding, never skips it silently. */
  | { kind: "unavailable"; reason: string };

/** The key of a `BatchSettled` log: `${transactionHash}:${logIndex}`. */
export type BatchKey = `${Hash}:${number}`;

export function batchKey(log: Pick<HistoryLog, "transactionHash" | "logIndex">): BatchKey {
  return `${log.transactionHash}:${log.logIndex}`;
}

export interface ChainHistory {
  chainId: number;
  tollgate: Address;
  /** The ERC-1155 credits token Tollgate deployed (`credits()`). */
  credits: Address;
  /** The ERC-20 the vault holds (`paymentToken()`). */
  paymentToken: Address;
  /** The subscriptions contract Tollgate deployed (`subscriptions()`); absent on a deployment from before subscriptions. */
  subscriptions?: Address;
  /** The block Tollgate was deployed in: the history starts there. */
  deployBlock: bigint;
  /** The last block of the history; the state reader reads at this block. */
  auditBlock: bigint;
  /**
   * Every log of Tollgate, of the credits token and of the subscriptions contract, and the payment token's `Transfer` logs into and out of
   * Tollgate, from `deployBlock` to `auditBlock`, ordered by (blockNumber, logIndex).
   */
  logs: HistoryLog[];
  /** Unix time of every block that holds a log in `logs`. */
  blockTimes: ReadonlyMap<bigint, number>;
  /** For every `BatchSettled` log in `logs`, the batch behind it. */
  batches: ReadonlyMap<BatchKey, BatchSource>;
}

/** The contracts' state at the audit block, read one value at a time (the loader batches the requests). */
export interface ChainStateReader {
  blockNumber: bigint;
  account(buyer: Address): Promise<{ balance: bigint; pendingWithdrawal: bigint; withdrawableAt: bigint }>;
  earnings(providerId: number): Promise<bigint>;
  protocolFees(): Promise<bigint>;
  /** ERC-1155 balance of credits of `planId`. */
  credits(holder: Address, planId: bigint): Promise<bigint>;
  creditChange(holder: Address, planId: bigint): Promise<bigint>;
  spendingLimit(buyer: Address, providerId: number): Promise<{ limitPerPeriod: bigint; period: number; windowStart: number; spentInWindow: bigint }>;
  /** The payment token Tollgate holds. */
  vaultTokens(): Promise<bigint>;
  signerNextSequence(signer: Address): Promise<bigint>;
  /** `bondOf(providerId)`, where the deployment has provider bonds; absent on one that does not. */
  bond?(providerId: number): Promise<{ available: bigint; pending: bigint; withdrawableAt: bigint }>;
  /** `disputeAwardOf(beneficiary)`, where the deployment keeps dispute awards; absent on one that does not. */
  disputeAward?(beneficiary: Address): Promise<{ amount: bigint; claimableAt: bigint }>;
  /** `subscriptionOf(buyer, providerId)` of the subscriptions contract; absent on a deployment without one. */
  subscription?(buyer: Address, providerId: number): Promise<{ id: bigint; planId: bigint; startedAt: number; paidPeriods: number; active: boolean; cancelled: boolean }>;
  /** `includedUsedOf(subscriptionId, periodIndex)`; present with `subscription`. */
  includedUsed?(subscriptionId: bigint, periodIndex: number): Promise<bigint>;
}
