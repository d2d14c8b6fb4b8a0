/** API keys for bench buyers: each buyer signs `CreateApiKey` with its wallet and posts it to the gateway. */
import { randomBytes } from "node:crypto";
import type { Address } from "viem";
import { apiKeyMessageTypes, gatewayDomain } from "../../server/gateway/api-keys/wallet-messages";

/** What signs a buyer's key request: an ethers signer (Hardhat's accounts) fits. */
export interface BuyerWallet {
  address: string;
  signTypedData(domain: Record<string, unknown>, types: Record<string, Array<{ name: string; type: string }>>, message: Record<string, unknown>): Promise<string>;
}

/** One key per buyer, in order, with no spend cap, no model list and no expiry. */
export async function createBuyerKeys(options: {
  gatewayUrl: string;
  chainId: number;
  tollgate: Address;
  buyers: readonly BuyerWallet[];
  label?: string;
  tags?: string[];
}): Promise<string[]> {
  const domain = gatewayDomain(options.chainId, options.tollgate) as Record<string, unknown>;
  const types = { CreateApiKey: apiKeyMessageTypes.CreateApiKey.map((field) => ({ ...field })) };
  const keys: string[] = [];
  for (const buyer of options.buyers) {
    const message = {
      buyer: buyer.address,
      label: options.label ?? "bench",
      spendCap: "0",
      models: [],
      tags: options.tags ?? ["team:bench"],
      expiresAt: "0",
      issuedAt: Math.floor(Date.now() / 1000).toString(),
      nonce: `0x${randomBytes(32).toString("hex")}`,
    };
    const signature = await buyer.signTypedData(domain, types, message);
    const response = await fetch(`${options.gatewayUrl}/v1/keys`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ message, signature }) });
    const body = (await response.json()) as { key?: string };
    if (response.status !== 201 || !body.key) throw new Error(`creating a key failed: ${response.status} ${JSON.stringify(body)}`);
    keys.push(body.key);
  }
  return keys;
}
