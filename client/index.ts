/**
 * The Tollgate client: typed actions over the contracts and the gateway, one per file in `actions/`, each
 * exporting its parameters, return type and errors (viem's style), and the auditor in `audit/`. Browser-safe:
 * the CLI, the demo, the benches, the tests and the web app all run these with their own wallet client.
 */
export * from "./tollgate-client";
export * from "./errors";
export { sendTransaction, eventIn, chainTime, signerOf, type ContractWrite, type SentTransaction } from "./internal/send-transaction";
export { gatewayRequest, toWireJson, GATEWAY_HINTS } from "./internal/gateway-request";
export * from "./actions/buy-credits";
export * from "./actions/cancel-withdrawal";
export * from "./actions/clear-spending-limit";
export * from "./actions/collect-protocol-fees";
export * from "./actions/create-api-key";
export * from "./actions/define-credit-plan";
export * from "./actions/deposit-with-permit";
export * from "./actions/deposit";
export * from "./actions/ensure-allowance";
export * from "./actions/execute-withdrawal";
export * from "./actions/get-buyer-position";
export * from "./actions/get-gateway-balance";
export * from "./actions/get-payment-token";
export * from "./actions/get-usage";
export * from "./actions/list-api-keys";
export * from "./actions/list-model";
export * from "./actions/mint-test-tokens";
export * from "./actions/register-provider";
export * from "./actions/request-withdrawal";
export * from "./actions/revoke-api-key";
export * from "./actions/schedule-model-price";
export * from "./actions/set-model-paused";
export * from "./actions/set-paused";
export * from "./actions/set-protocol-fee";
export * from "./actions/set-signer-authorization";
export * from "./actions/set-spending-limit";
export * from "./actions/set-treasury";
export * from "./actions/transfer-credits";
export * from "./actions/update-provider";
export * from "./actions/verify-receipt";
export * from "./actions/withdraw-earnings";
export * from "./actions/cancel-bond-withdrawal";
export * from "./actions/get-bond";
export * from "./actions/post-bond";
export * from "./actions/prove-content-mismatch";
export * from "./actions/prove-equivocation";
export * from "./actions/prove-settled-record-mismatch";
export * from "./actions/request-bond-withdrawal";
export * from "./actions/withdraw-bond";
export { FRAUD_KINDS, type FraudKind, type FraudProven } from "./internal/fraud-proven";
export * from "./audit/conservation";
export * from "./audit/settlements";
export * from "./audit/chain-audit";
export * from "./audit/audit-deployment";
export * from "../server/chain/receipt-envelope";
export * from "./audit/receipts";
export * from "./audit/usage-export";
export * from "./audit/receipt-reconciliation";
export * from "./audit/dispute-candidates";
