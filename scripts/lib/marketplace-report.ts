/**
 * What `npm run demo` prints: the bill, the balances, the transactions and the checks after the run, and in
 * serve mode how to use the running marketplace from outside (any OpenAI client, curl, a wallet, the CLI).
 */
import path from "node:path";
import type { MarketplaceRun, ModelSummary } from "../marketplace";
import { displayPath } from "./local-marketplace";


function table(rows: string[][], rightAligned: Set<number>): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => (rightAligned.has(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join("   ").trimEnd());
}

/** The bill, the balances, the transactions and the checks, as printed after the run. */
export function describeRun(run: MarketplaceRun): string[] {
  const s = run.summary;
  const n = (value: number) => value.toLocaleString("en-US");
  const lines: string[] = ["", "Summary", ""];
  const rows = [["model", "calls", "tokens in", "cached", "tokens out", "cost"]];
  for (const model of s.models) rows.push([model.model, n(model.calls), n(model.inputTokens), n(model.cachedInputTokens), n(model.outputTokens), run.amount(model.cost)]);
  const total = (pick: (model: ModelSummary) => number) => n(s.models.reduce((sum, model) => sum + pick(model), 0));
  rows.push(["total", n(s.calls), total((m) => m.inputTokens), total((m) => m.cachedInputTokens), total((m) => m.outputTokens), run.amount(s.totalCost)]);
  lines.push(...table(rows, new Set([1, 2, 3, 4, 5])).map((line) => `  ${line}`));
  lines.push(
    "",
    `  calls           ${s.calls} (${s.streamed} streamed), API key ${run.apiKey.id}`,
    `  buyer balance   ${run.amount(s.buyerBefore.balance)} -> ${run.amount(s.buyerAfter.balance)}`,
    `  buyer credits   ${s.buyerBefore.credits} -> ${s.buyerAfter.credits} (plan ${run.planId}; ${run.amount(s.buyerAfter.creditChange)} left of the last one burned)`,
    `  paid            ${run.amount(s.paidWithCredits)} with credits + ${run.amount(s.paidFromBalance)} from the balance` + (s.shortfall > 0n ? `, ${run.amount(s.shortfall)} shortfall` : ", no shortfall"),
    `  provider ${run.providerId}      earnings ${run.amount(s.providerEarningsBefore)} (credit sale) -> ${run.amount(s.providerEarningsAfter)}`,
    `  protocol fee    ${run.amount(s.protocolFeesBefore)} -> ${run.amount(s.protocolFeesAfter)} (${run.deployment.parameters.protocolFeeBps} bps)`,
    "",
    "  transactions",
    ...run.transactions.map((tx) => `    ${tx.hash}  ${tx.label}`),
    "",
    `  audit           ${s.audit.records} charges in ${s.audit.batches} batch${s.audit.batches === 1 ? "" : "es"}, ${s.audit.buyers} buyer and ${s.audit.providers} provider ledgers rebuilt from chain data alone: ` +
      (s.audit.problems.length === 0
        ? "every charge matches its signed receipt, the settlement rules and the events; every balance matches the contracts"
        : `${s.audit.problems.length} PROBLEMS`),
    ...s.audit.problems.map((problem) => `    - ${problem}`),
    `  conservation    vault holds ${run.amount(s.conservation.held)} = balances ${run.amount(s.conservation.buyerBalances)} + pending withdrawals ${run.amount(s.conservation.pendingWithdrawals)} ` +
      `+ provider earnings ${run.amount(s.conservation.providerEarnings)} + protocol fees ${run.amount(s.conservation.protocolFees)} + provider bonds ${run.amount(s.conservation.bonds)}: ${s.conservation.conserved ? "conserved" : `NOT CONSERVED (owes ${run.amount(s.conservation.owed)})`}`,
  );
  return lines;
}

/** How to use the running marketplace from outside: any OpenAI client, curl, a wallet, the CLI. */
export function describeServing(run: MarketplaceRun): string[] {
  const base = `${run.gatewayUrl}/v1`;
  const relDeployment = displayPath(run.deploymentFile);
  const env = [`TOLLGATE_PRIVATE_KEY=${run.buyerKey}`, `TOLLGATE_API_KEY=${run.apiKey.key}`];
  // The CLI's defaults are 127.0.0.1:8545, deployments/localhost.json and 127.0.0.1:8787; say only what differs.
  if (run.rpcUrl !== "http://127.0.0.1:8545") env.push(`TOLLGATE_RPC_URL=${run.rpcUrl}`);
  if (relDeployment !== path.join("deployments", "localhost.json")) env.push(`TOLLGATE_DEPLOYMENT=${relDeployment}`);
  if (run.gatewayUrl !== "http://127.0.0.1:8787") env.push(`TOLLGATE_GATEWAY_URL=${run.gatewayUrl}`);
  const body = JSON.stringify({ model: run.models[0].name, messages: [{ role: "user", content: "Hello from curl" }], max_tokens: 64 });
  return [
    "",
    "Serving. Point any OpenAI client at the gateway:",
    `  base URL     ${base}`,
    `  API key      ${run.apiKey.key}   (the buyer's, tags ${run.apiKey.tags.join(", ")})`,
    `  models       ${run.models.map((model) => model.name).join(", ")}   (curl ${base}/models for prices)`,
    "",
    `  curl ${base}/chat/completions \\`,
    `    -H "Authorization: Bearer ${run.apiKey.key}" -H "Content-Type: application/json" \\`,
    `    -d '${body}'`,
    "",
    `  Python: OpenAI(base_url="${base}", api_key="${run.apiKey.key}")`,
    `  Node:   new OpenAI({ baseURL: "${base}", apiKey: "${run.apiKey.key}" })`,
    "",
    `  web app: ${run.appUrl}   (connect a wallet on chain ${run.deployment.chainId}, or import the buyer's key below)`,
    "",
    "The chain:",
    `  JSON-RPC     ${run.rpcUrl}   (chain id ${run.deployment.chainId}; add it to a wallet as a custom network)`,
    `  deployment   ${relDeployment}   (Tollgate ${run.deployment.tollgate}, ${run.token.symbol} ${run.token.address})`,
    `  buyer        ${run.buyer.address}, private key ${run.buyerKey}   (a throwaway key on this throwaway chain)`,
    `  gateway      config ${displayPath(run.configFile)}, usage store ${displayPath(run.storePath)}`,
    "",
    "The command line (in another terminal):",
    `  ${env.join(" ")} npm run tollgate -- buyer balance`,
    `  npm run tollgate -- buyer balance --address ${run.buyer.address}${run.rpcUrl !== "http://127.0.0.1:8545" ? `   (with TOLLGATE_RPC_URL=${run.rpcUrl})` : ""}`,
    "",
    "New calls are settled by the oracle about 2 s after they are served. Ctrl-C stops everything (the chain lives in this process).",
  ];
}
