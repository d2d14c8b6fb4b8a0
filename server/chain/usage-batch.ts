/**
 * The packed batch encoding `UsageSettlement.settleBatch` reads (layout in `IUsageSettlement.sol`),
 * its decoder for auditors, and the receipts whose struct hashes form a batch's content root.
 */
import { getAddress, hashStruct, keccak256, type Address, type Hex } from "viem";
import { usageReceiptTypes, type UsageBatch, type UsageReceipt } from "./eip712";
import { merkleRoot } from "./merkle";
import type { TokenCounts } from "./pricing";

import {
  BUYER_ENTRY_BYTES,
  isUint32,
  MAX_BATCH_BUYERS,
  MAX_BATCH_MODEL_EPOCHS,
  MAX_BATCH_RECORDS,
  MAX_SERVED_OFFSET,
  MODEL_ENTRY_BYTES,
  RECORD_BYTES,
} from "./batch-limits";

/** The receipt fields a batch record carries: who, which model, when, and the token counts. */
type RecordFields = "sequence" | "buyer" | "modelId" | "servedAt" | keyof TokenCounts;

/** One metered call, as the gateway stores it and the chain settles it. */
export interface UsageRecord extends Pick<UsageReceipt, RecordFields> {
  /** Index of the model's price epoch in force at `servedAt` (the registry's `priceAt`). */
  priceEpoch: number;
  /** The EIP-712 struct hash of the receipt handed to the buyer: a leaf of the batch's content root. */
  receiptHash: Hex;
}

// Defined from the EIP-712 tables in ./eip712; re-exported where batch and receipt code has always found them.
export type { UsageBatch, UsageReceipt };

/** The batch header `verifyReceiptSettled` takes: the sections as hashes, so a proof need not carry the calldata. */
export function usageBatchHeader(batch: UsageBatch) {
  return {
    firstSequence: batch.firstSequence,
    baseTime: batch.baseTime,
    buyersHash: keccak256(batch.buyers),
    modelsHash: keccak256(batch.models),
    recordsHash: keccak256(batch.records),
    contentRoot: batch.contentRoot,
  };
}

/**
 * What `batchCommitmentOf` keeps of a batch's commitment (its EIP-712 struct hash): the first 28 bytes, the
 * other 4 of the storage word holding the settlement time the dispute window counts from.
 */
export function commitmentPrefix(commitment: Hex): Hex {
  return commitment.slice(0, 58) as Hex;
}

export class BatchEncodingError extends Error {
  override name = "BatchEncodingError";
}

export function hashReceipt(receipt: UsageReceipt): Hex {
  return hashStruct({ data: receipt, primaryType: "UsageReceipt", types: usageReceiptTypes });
}

function hex(value: number | bigint, bytes: number): string {
  return value.toString(16).padStart(bytes * 2, "0");
}

function checkUint32(value: number, what: string, sequence: bigint): void {
  if (!isUint32(value)) {
    throw new BatchEncodingError(`record ${sequence}: ${what} ${value} is not a uint32`);
  }
}

/**
 * Packs contiguous records into a batch. `creditPlans` names, per buyer, the provider credit plan
 * settlement should burn before drawing on the buyer's balance.
 */
export function encodeUsageBatch(
  records: readonly UsageRecord[],
  creditPlans: ReadonlyMap<Address, number> = new Map(),
): UsageBatch {
  if (records.length === 0) throw new BatchEncodingError("a batch needs at least one record");
  // The contract would revert on more; say so here, before anything is signed.
  if (records.length > MAX_BATCH_RECORDS) throw new BatchEncodingError(`${records.length} records exceed ${MAX_BATCH_RECORDS}`);
  const firstSequence = records[0].sequence;
  const baseTime = Math.min(...records.map((r) => r.servedAt));

  const buyerList = [...new Set(records.map((r) => getAddress(r.buyer)))].sort((a, b) =>
    BigInt(a) < BigInt(b) ? -1 : 1,
  );
  if (buyerList.length > MAX_BATCH_BUYERS) throw new BatchEncodingError(`${buyerList.length} buyers exceed ${MAX_BATCH_BUYERS}`);
  const buyerIndex = new Map(buyerList.map((b, i) => [b, i]));
  const plans = new Map([...creditPlans].map(([buyer, plan]) => [getAddress(buyer), plan]));

  const modelKeys: string[] = [];
  const modelIndex = new Map<string, number>();
  for (const r of records) {
    const key = `${r.modelId}:${r.priceEpoch}`;
    if (!modelIndex.has(key)) {
      modelIndex.set(key, modelKeys.length);
      modelKeys.push(key);
    }
  }
  if (modelKeys.length > MAX_BATCH_MODEL_EPOCHS) {
    throw new BatchEncodingError(`${modelKeys.length} model epochs exceed ${MAX_BATCH_MODEL_EPOCHS}`);
  }

  let packed = "";
  records.forEach((r, i) => {
    if (r.sequence !== firstSequence + BigInt(i)) {
      throw new BatchEncodingError(`records must be contiguous: expected ${firstSequence + BigInt(i)}, got ${r.sequence}`);
    }
    checkUint32(r.inputTokens, "inputTokens", r.sequence);
    checkUint32(r.cachedInputTokens, "cachedInputTokens", r.sequence);
    checkUint32(r.outputTokens, "outputTokens", r.sequence);
    if (r.cachedInputTokens > r.inputTokens) {
      throw new BatchEncodingError(`record ${r.sequence}: cachedInputTokens exceeds inputTokens`);
    }
    const offset = r.servedAt - baseTime;
    if (offset > MAX_SERVED_OFFSET) {
      throw new BatchEncodingError(`record ${r.sequence}: served ${offset}s after the batch's first; split the batch`);
    }
    packed +=
      hex(buyerIndex.get(getAddress(r.buyer))!, 2) +
      hex(modelIndex.get(`${r.modelId}:${r.priceEpoch}`)!, 1) +
      hex(r.inputTokens, 4) +
      hex(r.cachedInputTokens, 4) +
      hex(r.outputTokens, 4) +
      hex(offset, 3);
  });

  const buyers = buyerList.map((b) => b.slice(2).toLowerCase() + hex(plans.get(b) ?? 0, 4)).join("");
  const models = modelKeys
    .map((key) => key.split(":").map(Number))
    .map(([modelId, epoch]) => hex(modelId, 4) + hex(epoch, 4))
    .join("");
  return {
    firstSequence,
    baseTime,
    buyers: `0x${buyers}`,
    models: `0x${models}`,
    records: `0x${packed}`,
    contentRoot: merkleRoot(records.map((r) => r.receiptHash)),
  };
}

/** What the chain says one record was: everything needed to price it, recovered from calldata alone. */
export interface DecodedRecord extends Omit<UsageRecord, "receiptHash"> {
  creditPlan: number;
}

/** Unpacks a batch as an auditor reads it from the settlement transaction's calldata. */
export function decodeUsageBatch(batch: UsageBatch): DecodedRecord[] {
  const body = (h: Hex, size: number, what: string): string => {
    const s = h.slice(2);
    if (s.length === 0 || s.length % (size * 2) !== 0) throw new BatchEncodingError(`${what} section is malformed`);
    return s;
  };
  const buyersHex = body(batch.buyers, BUYER_ENTRY_BYTES, "buyers");
  const modelsHex = body(batch.models, MODEL_ENTRY_BYTES, "models");
  const recordsHex = body(batch.records, RECORD_BYTES, "records");
  const buyers: { buyer: Address; plan: number }[] = [];
  for (let i = 0; i < buyersHex.length; i += BUYER_ENTRY_BYTES * 2) {
    buyers.push({
      buyer: getAddress(`0x${buyersHex.slice(i, i + 40)}`),
      plan: parseInt(buyersHex.slice(i + 40, i + 48), 16),
    });
  }
  const models: { modelId: number; epoch: number }[] = [];
  for (let i = 0; i < modelsHex.length; i += MODEL_ENTRY_BYTES * 2) {
    models.push({ modelId: parseInt(modelsHex.slice(i, i + 8), 16), epoch: parseInt(modelsHex.slice(i + 8, i + 16), 16) });
  }
  const out: DecodedRecord[] = [];
  for (let i = 0, n = 0; i < recordsHex.length; i += RECORD_BYTES * 2, n++) {
    const field = (from: number, bytes: number) => parseInt(recordsHex.slice(i + from * 2, i + (from + bytes) * 2), 16);
    const buyer = buyers[field(0, 2)];
    const model = models[field(2, 1)];
    if (!buyer || !model) throw new BatchEncodingError(`record ${n} names a buyer or model beyond the tables`);
    out.push({
      sequence: batch.firstSequence + BigInt(n),
      buyer: buyer.buyer,
      creditPlan: buyer.plan,
      modelId: model.modelId,
      priceEpoch: model.epoch,
      inputTokens: field(3, 4),
      cachedInputTokens: field(7, 4),
      outputTokens: field(11, 4),
      servedAt: batch.baseTime + field(15, 3),
    });
  }
  return out;
}
