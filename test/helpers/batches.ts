/** Records and batch signatures for the contract tests, through the same code the oracle uses (server/chain/sign-batch.ts). */
import { ethers } from "hardhat";
import { keccak256, toHex, type Address, type LocalAccount, type Hex } from "viem";
import { hashReceipt, type UsageBatch, type UsageRecord } from "../../server/chain/usage-batch";
import { signUsageBatch } from "../../server/chain/sign-batch";
import type { Tollgate } from "../../typechain-types";

export interface CallSpec {
  buyer: string;
  modelId: bigint | number;
  inputTokens?: number;
  cachedInputTokens?: number;
  outputTokens?: number;
  /** Seconds before the latest block's time that the call was served; default 10. */
  age?: number;
  priceEpoch?: number;
}

/** Records for `calls` starting at `firstSequence`, served just before the latest block. */
export async function makeRecords(firstSequence: bigint, calls: readonly CallSpec[]): Promise<UsageRecord[]> {
  const latest = await ethers.provider.getBlock("latest");
  const now = latest!.timestamp;
  return calls.map((call, i) => {
    const sequence = firstSequence + BigInt(i);
    return {
      sequence,
      buyer: call.buyer as Address,
      modelId: Number(call.modelId),
      priceEpoch: call.priceEpoch ?? 0,
      inputTokens: call.inputTokens ?? 1_000,
      cachedInputTokens: call.cachedInputTokens ?? 0,
      outputTokens: call.outputTokens ?? 500,
      servedAt: now - (call.age ?? 10),
      // Tests need a leaf per record; the gateway uses the receipt's real struct hash (hashReceipt).
      receiptHash: keccak256(toHex(`receipt ${sequence}`)),
    };
  });
}

export async function signBatch(tollgate: Tollgate, signer: LocalAccount, batch: UsageBatch): Promise<Hex> {
  const { chainId } = await ethers.provider.getNetwork();
  return signUsageBatch(signer, { chainId, address: (await tollgate.getAddress()) as Address }, batch);
}

export { hashReceipt };
