/** Revokes one of the wallet's API keys at once; the gateway refuses it from then on. */
import { postWalletMessage } from "../internal/wallet-message";
import type { TollgateGatewayClient } from "../tollgate-client";

export interface RevokeApiKeyParameters {
  /** "key_…" as listApiKeys shows it. */
  keyId: string;
}
export interface RevokeApiKeyReturnType {
  id: string;
  revoked: boolean;
}
/** GatewayRequestError: key_not_found, invalid_signature, signature_expired, nonce_reused. */
export type RevokeApiKeyErrorType = Error;

export async function revokeApiKey(client: TollgateGatewayClient, { keyId }: RevokeApiKeyParameters): Promise<RevokeApiKeyReturnType> {
  return postWalletMessage<RevokeApiKeyReturnType>(client, "/v1/keys/revoke", "RevokeApiKey", { keyId });
}
