/** Lists the wallet's API keys at the gateway (never the secrets): limits, spend, status. */
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
export type ListApiKeysReturnType = GatewayApiKey[];
export type ListApiKeysErrorType = Error;

export async function listApiKeys(client: TollgateGatewayClient): Promise<ListApiKeysReturnType> {
  const { data } = await postWalletMessage<{ data: GatewayApiKey[] }>(client, "/v1/keys/list", "ListApiKeys", {});
  return data;
}
