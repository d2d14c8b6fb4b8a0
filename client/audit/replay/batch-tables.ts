/**
 * A batch's three sections unpacked for the audit: the buyer table (with each buyer's named plan), the model
 * table (model and price epoch), and the records, each with its indices into the two tables. The records
 * section is read with string slicing and `parseInt`, not an ABI decoder per record: the audit reads 100,000
 * records a second or more this way. Throws `BatchEncodingError` on a malformed section (the caller names it).
 */
import { getAddress, type Address } from "viem";
import { BUYER_ENTRY_BYTES, MODEL_ENTRY_BYTES, RECORD_BYTES } from "../../../server/chain/batch-limits";
import { BatchEncodingError, type DecodedRecord, type UsageBatch } from "../../../server/chain/usage-batch";

export interface BatchTables {
  buyers: { buyer: Address; planId: number }[];
  models: { modelId: number; epoch: number }[];
  records: DecodedRecord[];
  /** Per record, its index into `buyers` and into `models`. */
  buyerIndex: Uint32Array;
  modelIndex: Uint32Array;
}

function section(hex: string, entryBytes: number, what: string): string {
  const body = hex.slice(2);
  if (body.length === 0 || body.length % (entryBytes * 2) !== 0) {
    throw new BatchEncodingError(`the ${what} section is ${body.length / 2} bytes, not a positive multiple of ${entryBytes}`);
  }
  return body;
}

export function readBatchTables(batch: UsageBatch): BatchTables {
  const buyersHex = section(batch.buyers, BUYER_ENTRY_BYTES, "buyers");
  const modelsHex = section(batch.models, MODEL_ENTRY_BYTES, "models");
  const recordsHex = section(batch.records, RECORD_BYTES, "records");
  const buyers: BatchTables["buyers"] = [];
  for (let i = 0; i < buyersHex.length; i += BUYER_ENTRY_BYTES * 2) {
    buyers.push({ buyer: getAddress(`0x${buyersHex.slice(i, i + 40)}`), planId: parseInt(buyersHex.slice(i + 40, i + 48), 16) });
  }
  const models: BatchTables["models"] = [];
  for (let i = 0; i < modelsHex.length; i += MODEL_ENTRY_BYTES * 2) {
    models.push({ modelId: parseInt(modelsHex.slice(i, i + 8), 16), epoch: parseInt(modelsHex.slice(i + 8, i + 16), 16) });
  }
  const count = recordsHex.length / (RECORD_BYTES * 2);
  const records = new Array<DecodedRecord>(count);
  const buyerIndex = new Uint32Array(count);
  const modelIndex = new Uint32Array(count);
  const first = batch.firstSequence;
  const baseTime = batch.baseTime;
  for (let n = 0, i = 0; n < count; n++, i += RECORD_BYTES * 2) {
    const b = parseInt(recordsHex.slice(i, i + 4), 16);
    const m = parseInt(recordsHex.slice(i + 4, i + 6), 16);
    const buyer = buyers[b];
    const model = models[m];
    if (!buyer || !model) throw new BatchEncodingError(`record ${n} names buyer entry ${b} of ${buyers.length} or model entry ${m} of ${models.length}`);
    buyerIndex[n] = b;
    modelIndex[n] = m;
    records[n] = {
      sequence: first + BigInt(n),
      buyer: buyer.buyer,
      creditPlan: buyer.planId,
      modelId: model.modelId,
      priceEpoch: model.epoch,
      inputTokens: parseInt(recordsHex.slice(i + 6, i + 14), 16),
      cachedInputTokens: parseInt(recordsHex.slice(i + 14, i + 22), 16),
      outputTokens: parseInt(recordsHex.slice(i + 22, i + 30), 16),
      servedAt: baseTime + parseInt(recordsHex.slice(i + 30, i + 36), 16),
    };
  }
  return { buyers, models, records, buyerIndex, modelIndex };
}
