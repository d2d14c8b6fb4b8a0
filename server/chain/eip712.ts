/**
 * Every EIP-712 type Tollgate signs: the one TypeScript source, mirroring
 * `contracts/libraries/UsageTypes.sol`. `test/contracts/typehashes.test.ts` pins the two together.
 */
import type { Address, TypedData, TypedDataDefinition, TypedDataDomain } from "viem";

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

/**
 * The TypeScript shapes, derived from the tables rather than restated. viem (through abitype's
 * `TypedDataToPrimitiveTypes`) maps `uint` types of up to 48 bits to `number` and wider ones to `bigint`,
 * `address` and `bytes*` to hex strings. Adding a field to a table changes every type below, and the
 * compiler then names each place that has to follow.
 */
type MessageOf<T extends TypedData, P extends keyof T & string> = TypedDataDefinition<T, P>["message"];

/** The `UsageBatch` struct as the contract takes it and the gateway key signs it. */
export type UsageBatch = MessageOf<typeof usageBatchTypes, "UsageBatch">;
/** A receipt as handed to a buyer; mirrors `UsageTypes.UsageReceipt`. */
export type UsageReceipt = MessageOf<typeof usageReceiptTypes, "UsageReceipt">;

/** One field of an EIP-712 struct, as the tables above spell it. */
export type TypedField = { readonly name: string; readonly type: string };

/** The field names of a table, in the struct's order: for code that needs the list at run time. */
function fieldNames<const T extends readonly TypedField[]>(fields: T): { [I in keyof T]: T[I]["name"] } {
  return fields.map((field) => field.name) as { [I in keyof T]: T[I]["name"] };
}

export const USAGE_RECEIPT_FIELDS = fieldNames(usageReceiptTypes.UsageReceipt);

/** The EIP-712 type string of a table (`encodeType` for a struct with no nested structs). */
function typeString(primaryType: string, fields: readonly TypedField[]): string {
  return `${primaryType}(${fields.map((field) => `${field.type} ${field.name}`).join(",")})`;
}

/**
 * The type strings as Solidity spells them, built from the same tables, so they cannot drift from the
 * types viem signs with. `test/contracts/typehashes.test.ts` pins their hashes to the contract's typehashes.
 */
export const USAGE_BATCH_TYPE = typeString("UsageBatch", usageBatchTypes.UsageBatch);
export const USAGE_RECEIPT_TYPE = typeString("UsageReceipt", usageReceiptTypes.UsageReceipt);
