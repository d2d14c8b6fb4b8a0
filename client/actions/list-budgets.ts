/** Lists the wallet's budgets at the gateway, each with what its current period has spent and when it resets. */
import { gatewayRequest } from "../internal/gateway-request";
import { postWalletMessage } from "../internal/wallet-message";
import type { TollgateGatewayClient } from "../tollgate-client";

/** One budget as the gateway describes it (server/gateway/budgets/budget-status.ts). Amounts in base units as decimal strings. */
export interface GatewayBudget {
  id: string;
  object: "budget";
  buyer: string;
  label: string;
  /** "tag": calls of keys carrying the tag `target`; "trace": calls sent with `x-tollgate-trace-id: target`. */
  scope: "tag" | "trace";
  target: string;
  /** UTC calendar periods; weeks start on Monday. */
  period: "day" | "week" | "month";
  limit: string;
  limit_formatted?: string;
  /** Recorded spend this period. */
  spent: string;
  spent_formatted?: string;
  /** Held by calls in flight. */
  reserved: string;
  remaining: string;
  period_start: string;
  period_start_unix: number;
  resets_at: string;
  resets_at_unix: number;
  thresholds_bps: number[];
  webhook_url: string | null;
  /** Past `threshold_bps` of the limit, the chat calls this budget governs are served by `model` (budget-degrade.ts). */
  degrade: { threshold_bps: number; model: string } | null;
  created_at: number;
}
export interface ListBudgetsParameters {
  /** A read session token (`openSession`): lists with `GET /v1/budgets`, no signature. Without it the wallet signs `ListBudgets`. */
  session?: string;
}
export type ListBudgetsReturnType = GatewayBudget[];
/** GatewayRequestError: invalid_signature, signature_expired, nonce_reused; with a session, invalid_api_key. */
export type ListBudgetsErrorType = Error;

export async function listBudgets(client: TollgateGatewayClient, { session }: ListBudgetsParameters = {}): Promise<ListBudgetsReturnType> {
  const { data } = session
    ? await gatewayRequest<{ data: GatewayBudget[] }>(client, "/v1/budgets", { method: "GET", apiKey: session })
    : await postWalletMessage<{ data: GatewayBudget[] }>(client, "/v1/budgets/list", "ListBudgets", {});
  return data;
}
