/**
 * The EIP-712 messages a buyer signs with its wallet to manage API keys and open read sessions. The domain is bound to the
 * chain and the Tollgate deployment, `issuedAt` must be recent and each `nonce` is accepted once, so a
 * captured signature cannot be replayed elsewhere or later.
 */
import { getAddress, hashTypedData, recoverTypedDataAddress, type Address, type Hex, type PublicClient, type TypedDataDomain } from "viem";
import { z } from "zod";

export const GATEWAY_DOMAIN_NAME = "Tollgate Gateway";
export const GATEWAY_DOMAIN_VERSION = "1";

export function gatewayDomain(chainId: number, tollgate: Address): TypedDataDomain {
  return { name: GATEWAY_DOMAIN_NAME, version: GATEWAY_DOMAIN_VERSION, chainId, verifyingContract: tollgate };
}

export const apiKeyMessageTypes = {
  CreateApiKey: [
    { name: "buyer", type: "address" },
    { name: "label", type: "string" },
    { name: "spendCap", type: "uint256" },
    { name: "models", type: "string[]" },
    { name: "tags", type: "string[]" },
    { name: "expiresAt", type: "uint64" },
    { name: "issuedAt", type: "uint64" },
    { name: "nonce", type: "bytes32" },
  ],
  ListApiKeys: [
    { name: "buyer", type: "address" },
    { name: "issuedAt", type: "uint64" },
    { name: "nonce", type: "bytes32" },
  ],
  RevokeApiKey: [
    { name: "buyer", type: "address" },
    { name: "keyId", type: "string" },
    { name: "issuedAt", type: "uint64" },
    { name: "nonce", type: "bytes32" },
  ],
  /** Opens a read-only session (`POST /v1/sessions`): usage, balance and keys without a signature per page. */
  OpenSession: [
    { name: "buyer", type: "address" },
    { name: "issuedAt", type: "uint64" },
    { name: "nonce", type: "bytes32" },
  ],
  /** Budgets (`routes/budgets.ts`; fields explained in `budgets/budget-messages.ts`). */
  CreateBudget: [
    { name: "buyer", type: "address" },
    { name: "label", type: "string" },
    { name: "scope", type: "string" },
    { name: "target", type: "string" },
    { name: "period", type: "string" },
    { name: "limit", type: "uint256" },
    { name: "thresholdsBps", type: "uint16[]" },
    { name: "webhookUrl", type: "string" },
    { name: "degradeThresholdBps", type: "uint16" },
    { name: "degradeModel", type: "string" },
    { name: "issuedAt", type: "uint64" },
    { name: "nonce", type: "bytes32" },
  ],
  ListBudgets: [
    { name: "buyer", type: "address" },
    { name: "issuedAt", type: "uint64" },
    { name: "nonce", type: "bytes32" },
  ],
  DeleteBudget: [
    { name: "buyer", type: "address" },
    { name: "budgetId", type: "string" },
    { name: "issuedAt", type: "uint64" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;

export type ApiKeyMessageType = keyof typeof apiKeyMessageTypes;

export const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "an 0x-prefixed 20-byte address").transform((value) => getAddress(value));
export const uintString = z.union([z.string().regex(/^\d{1,78}$/), z.number().int().nonnegative()]).transform((value) => BigInt(value));
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "0x-prefixed 32 bytes") as z.ZodType<Hex>;
export const tag = z.string().min(1).max(64).regex(/^[\w.-]+:[\w./-]+$/, 'tags look like "team:search" or "workflow:nightly-report"');
export const common = { buyer: address, issuedAt: uintString, nonce: bytes32 };

export const createApiKeyMessage = z.object({
  ...common,
  label: z.string().max(100),
  /** Base units of the payment token; 0 means no cap. */
  spendCap: uintString,
  /** Public model names; empty means every model. */
  models: z.array(z.string().min(1).max(64)).max(64),
  tags: z.array(tag).max(16),
  /** Unix seconds; 0 means the key never expires. */
  expiresAt: uintString,
});
export const listApiKeysMessage = z.object(common);
export const revokeApiKeyMessage = z.object({ ...common, keyId: z.string().min(1).max(64) });
export const openSessionMessage = z.object(common);

export const signedRequest = <T extends z.ZodTypeAny>(message: T) =>
  z.object({ message, signature: z.string().regex(/^0x[0-9a-fA-F]+$/, "0x-prefixed hex") as z.ZodType<Hex> });

const erc1271Abi = [
  {
    type: "function",
    name: "isValidSignature",
    stateMutability: "view",
    inputs: [
      { name: "hash", type: "bytes32" },
      { name: "signature", type: "bytes" },
    ],
    outputs: [{ name: "", type: "bytes4" }],
  },
] as const;

/**
 * True when `buyer` signed `message`: an EOA by recovery, a contract wallet by ERC-1271.
 */
export async function verifyBuyerSignature(
  client: PublicClient,
  domain: TypedDataDomain,
  primaryType: ApiKeyMessageType,
  message: Record<string, unknown> & { buyer: Address },
  signature: Hex,
): Promise<boolean> {
  const typed = { domain, types: apiKeyMessageTypes, primaryType, message } as unknown as Omit<Parameters<typeof recoverTypedDataAddress>[0], "signature">;
  try {
    const recovered = await recoverTypedDataAddress({ ...typed, signature } as Parameters<typeof recoverTypedDataAddress>[0]);
    if (recovered === message.buyer) return true;
  } catch {
    // not a valid ECDSA signature; a contract wallet may still accept it
  }
  const code = await client.getCode({ address: message.buyer });
  if (!code || code === "0x") return false;
  try {
    const magic = await client.readContract({
      address: message.buyer,
      abi: erc1271Abi,
      functionName: "isValidSignature",
      args: [hashTypedData(typed as Parameters<typeof hashTypedData>[0]), signature],
    });
    return magic === "0x1626ba7e";
  } catch {
    return false;
  }
}
