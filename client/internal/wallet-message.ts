/**
 * Signs one of the gateway's wallet messages (CreateApiKey, ListApiKeys, RevokeApiKey) with the client's
 * wallet and posts it with the signature. The domain binds the chain and the Tollgate deployment; `issuedAt`
 * and a one-time nonce stop a captured signature from being replayed.
 */
import { toHex } from "viem";
import { apiKeyMessageTypes, gatewayDomain, type ApiKeyMessageType } from "../../server/gateway/api-keys/wallet-messages";
import type { TollgateGatewayClient } from "../tollgate-client";
import { gatewayRequest } from "./gateway-request";
import { signerOf } from "./send-transaction";

export async function postWalletMessage<T>(client: TollgateGatewayClient, path: string, primaryType: ApiKeyMessageType, fields: Record<string, unknown>): Promise<T> {
  const account = signerOf(client, primaryType);
  const message = {
    buyer: account.address,
    ...fields,
    // The gateway compares issuedAt with its own wall clock, so this is the local clock, not chain time.
    issuedAt: BigInt(Math.floor(Date.now() / 1000)),
    nonce: toHex(crypto.getRandomValues(new Uint8Array(32))),
  };
  const signature = await client.wallet!.signTypedData({
    account,
    domain: gatewayDomain(client.contracts.chainId, client.contracts.tollgate),
    types: apiKeyMessageTypes,
    primaryType,
    message,
  } as Parameters<NonNullable<TollgateGatewayClient["wallet"]>["signTypedData"]>[0]);
  return gatewayRequest<T>(client, path, { method: "POST", body: { message, signature } });
}
