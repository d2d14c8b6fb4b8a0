/** Deletes one of the wallet's budgets at once: its limit stops applying to the next call. */
import { postWalletMessage } from "../internal/wallet-message";
import type { TollgateGatewayClient } from "../tollgate-client";

export interface DeleteBudgetParameters {
  /** "bud_…" as listBudgets shows it. */
  budgetId: string;
}
export interface DeleteBudgetReturnType {
  id: string;
  deleted: boolean;
}
/** GatewayRequestError: budget_not_found, invalid_signature, signature_expired, nonce_reused. */
export type DeleteBudgetErrorType = Error;

export async function deleteBudget(client: TollgateGatewayClient, { budgetId }: DeleteBudgetParameters): Promise<DeleteBudgetReturnType> {
  return postWalletMessage<DeleteBudgetReturnType>(client, "/v1/budgets/delete", "DeleteBudget", { budgetId });
}
