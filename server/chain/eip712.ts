/**
 * Every EIP-712 type Tollgate signs: the one TypeScript source, mirroring
 * `contracts/libraries/UsageTypes.sol`. `test/contracts/typehashes.test.ts` pins the two together.
 */
import type { Address, TypedDataDomain } from "viem";

export const TOLLGATE_DOMAIN_NAME = "Tollgate";
export const TOLLGATE_DOMAIN_VERSION = "1";

/** The EIP-712 domain of one Tollgate deployment: bound to its chain and its address. */
export function tollgateDomain(chainId: number | bigint, verifyingContract: Address): TypedDataDomain {
  return {
    name: TOLLGATE_DOMAIN_NAME,
    version: TOLLGATE_DOMAIN_VERSION,
    chainId: Number(chainId),
    verifyingContract,
  };
}

export const usageBatchTypes = {
  UsageBatch: [
    { name: "firstSequence", type: "uint64" },
    { name: "baseTime", type: "uint32" },
    { name: "buyers", type: "bytes" },
    { name: "models", type: "bytes" },
    { name: "records", type: "bytes" },
    { name: "contentRoot", type: "bytes32" },
  ],
} as const;

export const usageReceiptTypes = {
  UsageReceipt: [
    { name: "sequence", type: "uint64" },
    { name: "buyer", type: "address" },
    { name: "modelId", type: "uint32" },
    { name: "inputTokens", type: "uint32" },
    { name: "cachedInputTokens", type: "uint32" },
    { name: "outputTokens", type: "uint32" },
    { name: "servedAt", type: "uint32" },
    { name: "inputPrice", type: "uint72" },
    { name: "cachedInputPrice", type: "uint72" },
    { name: "outputPrice", type: "uint72" },
    { name: "cost", type: "uint256" },
    { name: "contentHash", type: "bytes32" },
  ],
} as const;

/** The type strings as Solidity spells them, for the pinned typehash test. */
export const USAGE_BATCH_TYPE =
  "UsageBatch(uint64 firstSequence,uint32 baseTime,bytes buyers,bytes models,bytes records,bytes32 contentRoot)";
export const USAGE_RECEIPT_TYPE =
  "UsageReceipt(uint64 sequence,address buyer,uint32 modelId,uint32 inputTokens,uint32 cachedInputTokens," +
  "uint32 outputTokens,uint32 servedAt,uint72 inputPrice,uint72 cachedInputPrice,uint72 outputPrice," +
  "uint256 cost,bytes32 contentHash)";
