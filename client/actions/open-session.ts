/**
 * Opens a read session at the gateway with one wallet signature (`OpenSession`, EIP-712): a bearer token that
 * reads the buyer's usage, balance and keys until it expires, so the web app does not ask the wallet to sign
 * on every page. It never pays for a call: that takes an API key.
 */
import { postWalletMessage } from "../internal/wallet-message";
import type { TollgateGatewayClient } from "../tollgate-client";

export type OpenSessionParameters = Record<string, never>;
export interface OpenSessionReturnType {
  /** `tgs_…`: pass it as `session` to getUsage, getUsageCsv, getGatewayBalance and listApiKeys. */
  token: string;
  buyer: `0x${string}`;
  /** Unix seconds. */
  expiresAt: number;
}
/** WalletRequiredError; GatewayRequestError: invalid_signature, signature_expired, nonce_reused, or unreachable. */
export type OpenSessionErrorType = Error;

export async function openSession(client: TollgateGatewayClient, _parameters: OpenSessionParameters = {}): Promise<OpenSessionReturnType> {
  const opened = await postWalletMessage<{ token: string; buyer: `0x${string}`; expires_at: number }>(client, "/v1/sessions", "OpenSession", {});
  return { token: opened.token, buyer: opened.buyer, expiresAt: opened.expires_at };
}
