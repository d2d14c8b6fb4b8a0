/** What the key's buyer can spend now at the gateway, and why (`GET /v1/balance`). */
import { gatewayRequest } from "../internal/gateway-request";
import type { TollgateGatewayClient } from "../tollgate-client";

/** Amounts as the gateway sends them: base units as decimal strings. */
export interface GatewayBalance {
  object: "balance";
  buyer: string;
  block_number: string;
  balance: string;
  pending_withdrawal: string;
  unsettled_usage: string;
  open_reservations: string;
  spendable_by_model: { model: string; spendable: string }[];
  key?: { id: string; spend_cap: string | null; spent: string };
  [more: string]: unknown;
}
export interface GetGatewayBalanceParameters {
  apiKey: string;
}
export type GetGatewayBalanceReturnType = GatewayBalance;
/** GatewayRequestError: invalid_api_key (401), or unreachable. */
export type GetGatewayBalanceErrorType = Error;

export async function getGatewayBalance(client: TollgateGatewayClient, { apiKey }: GetGatewayBalanceParameters): Promise<GetGatewayBalanceReturnType> {
  return gatewayRequest<GatewayBalance>(client, "/v1/balance", { method: "GET", apiKey });
}
