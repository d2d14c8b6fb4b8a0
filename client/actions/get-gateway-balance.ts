/** What the key's (or read session's) buyer can spend now at the gateway, and why (`GET /v1/balance`). */
import { bearerOf, gatewayRequest, type ReadCredential } from "../internal/gateway-request";
import type { TollgateGatewayClient } from "../tollgate-client";
import type { GatewayBudget } from "./list-budgets";

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
  /** The key asked with; null when asked with a read session. */
  key?: { id: string; spend_cap: string | null; spent: string; remaining: string | null } | null;
  /** The budgets that bind the key (its tags'), or every budget of the buyer for a read session. */
  budgets?: GatewayBudget[];
  /**
   * Fleet mode: what the provider's other gateway instances hold for the buyer's calls in flight and served unsettled
   * (already taken off every `spendable`); `state` other than "ready" means they could not be asked (see `note`).
   */
  fleet?: { state: string; instance: string; other_instances_unsettled_usage?: string; other_instances_open_reservations?: string; note?: string };
  [more: string]: unknown;
}
/** An API key, or a read session (`openSession`). */
export type GetGatewayBalanceParameters = ReadCredential;
export type GetGatewayBalanceReturnType = GatewayBalance;
/** GatewayRequestError: invalid_api_key (401: a dead key or session), or unreachable. */
export type GetGatewayBalanceErrorType = Error;

export async function getGatewayBalance(client: TollgateGatewayClient, credential: GetGatewayBalanceParameters): Promise<GetGatewayBalanceReturnType> {
  return gatewayRequest<GatewayBalance>(client, "/v1/balance", { method: "GET", apiKey: bearerOf(credential, "getGatewayBalance") });
}
