/** A usage record as the oracle reads it from the store, for tests of batch planning and encoding. */
import { getAddress, type Hex } from "viem";
import type { UsageRecord } from "../../server/chain/usage-batch";

export const ALICE = getAddress("0x00000000000000000000000000000000000a11ce");
export const BOB = getAddress("0x0000000000000000000000000000000000000b0b");
const HASH = `0x${"ab".repeat(32)}` as Hex;

export function usageRecord(sequence: number, fields: Partial<UsageRecord & { cost: bigint }> = {}): UsageRecord & { cost: bigint } {
  return {
    sequence: BigInt(sequence),
    buyer: ALICE,
    modelId: 1,
    priceEpoch: 0,
    servedAt: 1_000,
    inputTokens: 10,
    cachedInputTokens: 0,
    outputTokens: 5,
    receiptHash: HASH,
    cost: 100n,
    ...fields,
  };
}
