/**
 * Creates a budget at the gateway, authorized by the buyer's wallet signature: a limit per UTC day, week (from
 * Monday) or month on the calls of one key tag or one trace. A call that would overrun it gets a 402
 * `budget_exceeded`; crossing its thresholds posts a signed alert to `webhookUrl`.
 */
import { postWalletMessage } from "../internal/wallet-message";
import type { TollgateGatewayClient } from "../tollgate-client";
import type { GatewayBudget } from "./list-budgets";

export interface CreateBudgetParameters {
  /** "tag": every call of a key carrying the tag `target` (e.g. "team:support"); "trace": calls sent with `x-tollgate-trace-id: target`. */
  scope: "tag" | "trace";
  target: string;
  period: "day" | "week" | "month";
  /** Token base units per period. */
  limit: bigint;
  label?: string;
  /** Basis points of the limit that send an alert (8000 = 80%), ascending; absent or empty: 80% and 100%. */
  thresholdsBps?: readonly number[];
  /** Where alerts are POSTed, signed with the returned `webhook_secret`; absent: the gateway only logs them. */
  webhookUrl?: string;
  /** Past `thresholdBps` of the limit, the calls it governs are served by `model` instead (chat calls; the answer says so). */
  degrade?: { thresholdBps: number; model: string };
}
export type CreateBudgetReturnType = GatewayBudget & {
  /** The HMAC key of the webhook's `tollgate-signature` header: the only time it is shown; null without a webhook. */
  webhook_secret: string | null;
};
/** GatewayRequestError: budget_exists (409), invalid_value, model_not_found, invalid_signature, signature_expired, nonce_reused. */
export type CreateBudgetErrorType = Error;

export async function createBudget(client: TollgateGatewayClient, parameters: CreateBudgetParameters): Promise<CreateBudgetReturnType> {
  return postWalletMessage<CreateBudgetReturnType>(client, "/v1/budgets", "CreateBudget", {
    label: parameters.label ?? "",
    scope: parameters.scope,
    target: parameters.target,
    period: parameters.period,
    limit: parameters.limit,
    thresholdsBps: [...(parameters.thresholdsBps ?? [])],
    webhookUrl: parameters.webhookUrl ?? "",
    degradeThresholdBps: parameters.degrade?.thresholdBps ?? 0,
    degradeModel: parameters.degrade?.model ?? "",
  });
}
