/** Lists the wallet's API keys at the gateway (never the secrets): limits, spend, status. */
import { gatewayRequest } from "../internal/gateway-request";
import { postWalletMessage } from "../internal/wallet-message";
import type { TollgateGatewayClient } from "../tollgate-client";

/** One key as the gateway describes it (server/gateway/routes/api-keys.ts). Amounts in base units as decimal strings. */
export interface GatewayApiKey {
  id: string;
  object: "api_key";
  buyer: string;
  label: string;
  spend_cap: string | null;
  spent: string;
  spent_formatted?: string;
  models: string[] | null;
  tags: string[];
  expires_at: number | null;
  created_at: number;
  revoked_at: number | null;
}
export interface ListApiKeysParameters {
  /** A read session token (`openSession`): lists with `GET /v1/keys`, no signature. Without it the wallet signs `ListApiKeys`. */
  session?: string;
}
export type ListApiKeysReturnType = GatewayApiKey[];
/** GatewayRequestError: invalid_signature, signature_expired, nonce_reused; with a session, invalid_api_key (it ended or expired). */
export type ListApiKeysErrorType = Error;

export async function listApiKeys(client: TollgateGatewayClient, { session }: ListApiKeysParameters = {}): Promise<ListApiKeysReturnType> {
  const { data } = session
    ? await gatewayRequest<{ data: GatewayApiKey[] }>(client, "/v1/keys", { method: "GET", apiKey: session })
    : await postWalletMessage<{ data: GatewayApiKey[] }>(client, "/v1/keys/list", "ListApiKeys", {});
  return data;
}
