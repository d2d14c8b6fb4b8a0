/**
 * One settled batch as the auditor rebuilt it: the shape `auditSettlements` has always returned (the receipts
 * audit and the store audit consume it), now filled by the chain audit, with where its data came from and
 * what it did to each buyer. Browser-safe: types only.
 */
import type { Address, Hash, Hex } from "viem";
import type { PriceEpoch } from "../../../server/chain/marketplace-reader";
import type { DecodedRecord } from "../../../server/chain/usage-batch";
import type { BatchSource } from "../chain-history";

export interface AuditedRecord extends DecodedRecord {
  epoch: PriceEpoch;
  cost: bigint;
}

/** The header `verifyReceiptSettled` takes: the batch with its three sections replaced by their hashes. */
export interface UsageBatchHeader {
  firstSequence: bigint;
  baseTime: number;
  buyersHash: Hash;
  modelsHash: Hash;
  recordsHash: Hash;
  contentRoot: Hash;
}

/** What one batch did to one buyer: the replayed draw next to what the event reported. */
export interface BuyerDraw {
  buyer: Address;
  /** The credit plan the batch named for this buyer (0: none). */
  planId: bigint;
  cost: bigint;
  /** The part of `cost` the plan could cover (model in the plan, served before its expiry). */
  eligibleCost: bigint;
  /** Of `cost`: drawn from a subscription's included usage (paid by its period price, no money moves now). */
  coveredBySubscription: bigint;
  /** Of `cost`: covered usage beyond the included value that a REFUSE plan refused (counted in `shortfall`). */
  refusedBySubscription: bigint;
  /** What the spending cap let through (of what the subscription did not cover). */
  chargeable: bigint;
  coveredByCredits: bigint;
  creditsBurned: bigint;
  fromBalance: bigint;
  shortfall: bigint;
  fee: bigint;
  /** As `BatchSettled.buyerResults` reported them. */
  reportedFromBalance: bigint;
  reportedShortfall: bigint;
}

export interface AuditedBatch {
  txHash: Hash;
  blockNumber: bigint;
  logIndex: number;
  signer: Address;
  providerId: number;
  firstSequence: bigint;
  recordCount: bigint;
  commitment: Hash;
  contentRoot: Hash;
  header: UsageBatchHeader;
  /**
   * The packed sections as settled (they hash to the commitment): a fraud proof about a record
   * (`proveSettledRecordMismatch`) carries them, as the settlement did.
   */
  sections: { buyers: Hex; models: Hex; records: Hex };
  /** Where the batch's data was read from. */
  source: Exclude<BatchSource["kind"], "unavailable">;
  /** As the contract reported them in `BatchSettled`. */
  totalCost: bigint;
  providerEarnings: bigint;
  protocolFee: bigint;
  totalShortfall: bigint;
  /** Summed from `buyerResults`: what came out of buyer balances (the rest of the cost was credits or shortfall). */
  drawnFromBalance: bigint;
  records: AuditedRecord[];
  /** The sum of the rebuilt records' costs; equals `totalCost` when the audit passes. */
  rebuiltCost: bigint;
  draws: BuyerDraw[];
}

/** A settled batch whose data the auditor could not read (or decode): what its event says, and why. */
export interface UnreadableBatch
  extends Pick<AuditedBatch, "txHash" | "blockNumber" | "logIndex" | "signer" | "providerId" | "firstSequence" | "recordCount" | "commitment" | "contentRoot" | "totalCost" | "providerEarnings" | "protocolFee" | "totalShortfall" | "drawnFromBalance"> {
  reason: string;
}
