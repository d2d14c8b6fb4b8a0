/** Creates a gateway API key authorized by the buyer's wallet signature: no password, no account. Shown once. */
import { postWalletMessage } from "../internal/wallet-message";
import type { TollgateGatewayClient } from "../tollgate-client";
import type { GatewayApiKey } from "./list-api-keys";

export interface CreateApiKeyParameters {
  label?: string;
  /** Base units the key may spend in total; 0 or absent: no cap. */
  spendCap?: bigint;
  /** Public model names the key may call; empty or absent: all. */
  models?: readonly string[];
  /** Copied onto every usage record the key produces, e.g. "team:search", for cost attribution. */
  tags?: readonly string[];
  /** Unix seconds; 0 or absent: never expires. */
  expiresAt?: bigint;
}
export type CreateApiKeyReturnType = GatewayApiKey & { /** The secret `tg_…`: the only time it is shown. */ key: string };
/** GatewayRequestError: invalid_signature, signature_expired, nonce_reused, model_not_found, invalid_value. */
export type CreateApiKeyErrorType = Error;

export async function createApiKey(client: TollgateGatewayClient, parameters: CreateApiKeyParameters = {}): Promise<CreateApiKeyReturnType> {
  return postWalletMessage<CreateApiKeyReturnType>(client, "/v1/keys", "CreateApiKey", {
    label: parameters.label ?? "",
    spendCap: parameters.spendCap ?? 0n,
    models: [...(parameters.models ?? [])],
    tags: [...(parameters.tags ?? [])],
    expiresAt: parameters.expiresAt ?? 0n,
  });
}
