/**
 * The whole marketplace in one process, on Hardhat's in-process network, with no accounts and no network:
 *
 *   npm run demo                   # run it end to end, print the bill and the audit, exit
 *   npm run demo -- --serve        # ...then keep serving (or TOLLGATE_SERVE=1 npm run demo) until Ctrl-C
 *   npm run demo -- --rpc-url http://127.0.0.1:8545 --deployer-key 0x…   # the same on any EVM chain (Anvil, a testnet)
 *   npx hardhat run scripts/marketplace.ts   # the same; options from the environment only
 *
 * The chain is served over JSON-RPC (127.0.0.1:8545) so the `tollgate` CLI and any wallet can use it; Tollgate
 * is deployed with Ignition and described in deployments/localhost.json; a provider lists two models and a
 * credit plan and authorizes a gateway key; the simulated upstream, the gateway (127.0.0.1:8787) and the
 * oracle start; a buyer deposits with a permit, buys credits, gets an API key by wallet signature and calls
 * both models through the `openai` client, streaming and not; the oracle settles; then everything is checked
 * from chain data alone: every charge rebuilt from the settlement calldata and the price epochs and compared
 * with the receipts the buyer holds, and the vault's tokens compared with what it owes.
 *
 * What the provider and the buyer do are `client/` actions, the same the CLI and the web app run; the chain
 * and the services come from scripts/lib/local-marketplace.ts; the printing from scripts/lib/marketplace-report.ts;
 * the options from scripts/lib/marketplace-options.ts.
 * `runMarketplace` is shared with test/e2e/marketplace.test.ts.
 *
 * Options (flag, or environment for `hardhat run`): --serve (TOLLGATE_SERVE=1), --calls N (TOLLGATE_DEMO_CALLS),
 * --rpc-port N (TOLLGATE_RPC_PORT), --gateway-port N (TOLLGATE_GATEWAY_PORT), --data-dir DIR (TOLLGATE_DATA_DIR),
 * --rpc-url URL (TOLLGATE_RPC_URL) with --deployer-key KEY (TOLLGATE_DEPLOYER_KEY): an external chain instead of the in-process one.
 * TOLLGATE_LOG_LEVEL sets the gateway's and oracle's JSON log level (default warn).
 */
import path from "node:path";
import hardhat from "hardhat";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import OpenAI from "openai";
import { formatUnits, parseUnits, type Address, type Chain, type Hex, type PrivateKeyAccount, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  auditDeployment,
  auditReceipts,
  buyCredits,
  conservationCheckOf,
  createApiKey,
  defineCreditPlan,
  depositWithPermit,
  getBuyerPosition,
  getPaymentToken,
  getUsage,
  listModel,
  mintTestTokens,
  parseUsageExport,
  reconcileReceipts,
  parseReceiptHeader,
  postBond,
  registerProvider,
  setSignerAuthorization,
  settlementAuditOf,
  usageReceiptFromEnvelope,
  type ConservationCheck,
  type ReceiptEnvelope,
  type SettlementAudit,
  type TollgateClient,
} from "../client";
import { tollgateAbi } from "../server/chain/abis";
import type { ModelPrices } from "../server/chain/pricing";
import type { GatewayConfig } from "../server/config";
import type { Gateway } from "../server/gateway/gateway";
import type { Oracle } from "../server/oracle/oracle";
import type { SimulatedUpstream, SimulatedUpstreamOptions } from "../server/upstream/simulated-upstream";
import type { UpstreamAdapter } from "../server/upstream/types";
import type { TollgateDeployment, TollgateDeployParameters } from "./lib/deploy-tollgate";
import {
  Closers,
  deployLocal,
  displayPath,
  localTollgateClient,
  MarketplaceSetupError,
  readOnlyClient,
  serveUntilSignal,
  startLocalChain,
  startProviderServices,
  type LogLevel,
  type MarketplaceChain,
  type RecordedTransaction,
} from "./lib/local-marketplace";
import { describeRun, describeServing } from "./lib/marketplace-report";
import { DEMO_USAGE, parseDemoOptions } from "./lib/marketplace-options";
import type { RpcServer } from "./lib/rpc-server";
import type { DevChain } from "./lib/dev-chain";
import { connectExternalChain, deployExternal } from "./lib/external-chain";
import { auditStoreAgainstChain } from "./lib/store-audit";
import { ensureWebAppBuilt } from "./lib/web-app-build";

export { MarketplaceSetupError, type RecordedTransaction };

const REPO_ROOT = path.resolve(__dirname, "..");

/** What the provider sells: per-million-token prices in whole tUSD, turned into base units once the token's decimals are known. */
const MODELS = [
  { name: "small-model", upstreamModel: "sim-chat-mini", maxOutputTokens: 1024, prices: { input: "0.15", cachedInput: "0.075", output: "0.60" } },
  { name: "large-model", upstreamModel: "sim-chat", maxOutputTokens: 2048, prices: { input: "2.50", cachedInput: "1.25", output: "10" } },
] as const;
/** One credit buys 0.01 tUSD of small-model usage and costs 0.009: a 10% discount for paying ahead. */
const CREDIT_PLAN = { price: "0.009", value: "0.01", models: ["small-model"] };
const BUYER_DEPOSIT = "25";
const CREDITS_BOUGHT = 200n;
/**
 * The demo provider's bond, in token units: what a proof that its gateway key lied is paid from, so disputes
 * are live in the demo. The audit counts it in conservation. `providerBond` overrides it per run ("0": none).
 */
export const DEFAULT_PROVIDER_BOND = "100";
export const API_KEY_TAGS = ["team:research", "workflow:marketplace-demo"];
/** Repeated across calls so the simulated upstream's prompt cache serves part of later prompts, as real ones do. */
const SYSTEM_PROMPT =
  "You are a concise research assistant for a team that buys AI usage through Tollgate. Answer in a few plain " +
  "sentences, name your assumptions, and say so when a question cannot be answered from what is given.";
const QUESTIONS = [
  "Why settle metered API usage on a blockchain instead of invoicing monthly?",
  "What does a prepaid balance protect a model provider against?",
  "Explain the difference between input, cached input and output tokens.",
  "How could a buyer check that a provider charged the listed price?",
  "When is a credit pack better value than paying per call?",
  "What should happen to a streamed answer that the client stops reading halfway?",
  "Summarize the risks of letting one API key spend without a cap.",
  "Why might a provider announce price changes a day in advance?",
];
const ORACLE_BATCH_MAX_AGE_MS = 2_000;

export interface MarketplaceOptions {
  /**
   * Keep serving after the flow: settlement of new calls is reported as it happens, and SIGINT/SIGTERM shut
   * everything down cleanly (`stopped` resolves then). Without it the caller closes when done.
   */
  serve?: boolean;
  /** How many metered calls the buyer makes, alternating the two models, streaming every other pair (default 12). */
  calls?: number;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
  /** Where the gateway's config, usage store and oracle journal go (default data/marketplace). Its files from an earlier run are replaced: that chain is gone. */
  dataDir?: string;
  /** JSON-RPC port (default 8545; 0: any free port). A port in use falls back to a free one, and the log says so. */
  rpcPort?: number;
  /** Gateway port (default 8787; 0: any free port). Falls back like rpcPort. */
  gatewayPort?: number;
  /** Deployment file to write (default deployments/localhost.json, where the CLI looks). */
  deploymentFile?: string;
  /** Overrides of the deploy parameters (default: 3-day withdrawal delay, 1-day price notice, 2.5% fee, operator as treasury). */
  deploy?: TollgateDeployParameters;
  /** Options of the simulated upstream (e.g. a delay between streamed tokens). */
  upstream?: SimulatedUpstreamOptions;
  /** Wraps the upstream adapter the gateway calls: tests put failure injection in front of it. */
  wrapUpstream?: (adapter: UpstreamAdapter) => UpstreamAdapter;
  /** The web app's build for the gateway to serve at /app (default: the repository's app/dist; tests build their own). */
  appDir?: string;
  /** The gateway's and the oracle's JSON log level (default warn). */
  logLevel?: LogLevel;
  /**
   * Token units the provider bonds behind its gateway key, so a buyer's fraud proof is paid (default
   * DEFAULT_PROVIDER_BOND; "0": no bond).
   */
  providerBond?: string;
  /** Default: the Hardhat runtime this process loaded. It must be the in-process network. */
  hre?: HardhatRuntimeEnvironment;
  /**
   * Run on this chain instead of Hardhat's in-process one (Anvil, a Hardhat node, a testnet): Tollgate is deployed
   * there by `scripts/deploy.ts --network rpc` with `deployerKey`, which owns the deployment and, on a real chain,
   * pays the demo accounts' gas money. `rpcPort` is then unused.
   */
  chain?: { rpcUrl: string; deployerKey: Hex; ignitionDeploymentId?: string };
}

export interface CallOutcome {
  model: string;
  streamed: boolean;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  /** The signed receipt the gateway handed over (header or last stream chunk). */
  receipt: ReceiptEnvelope;
  sequence: bigint;
  cost: bigint;
}

export interface ModelSummary {
  model: string;
  modelId: number;
  prices: ModelPrices;
  calls: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  cost: bigint;
}

export interface BuyerPosition {
  /** Vault balance. */
  balance: bigint;
  credits: bigint;
  /** Value left of the last credit burned (`creditChangeOf`). */
  creditChange: bigint;
}

export interface MarketplaceSummary {
  calls: number;
  streamed: number;
  models: ModelSummary[];
  totalCost: bigint;
  /** After funding, before any call; and after settlement. */
  buyerBefore: BuyerPosition;
  buyerAfter: BuyerPosition;
  /** Provider earnings and protocol fees before the calls (from the credit sale) and after settlement. */
  providerEarningsBefore: bigint;
  providerEarningsAfter: bigint;
  protocolFeesBefore: bigint;
  protocolFeesAfter: bigint;
  /** Of the settled cost: drawn from the buyer's balance, covered by credits, and unpaid. */
  paidFromBalance: bigint;
  paidWithCredits: bigint;
  shortfall: bigint;
  conservation: ConservationCheck;
  /**
   * The chain audit (every charge and every balance rebuilt from chain data alone, compared with the contracts'
   * state) and the receipts and store against it; `problems` lists every disagreement found.
   */
  audit: { batches: number; records: number; buyers: number; providers: number; problems: string[] };
}

export interface MarketplaceRun {
  /** This process's Hardhat runtime; its network is the run's chain only when `external` is false. */
  hre: HardhatRuntimeEnvironment;
  /** True when the run is on a chain given by `options.chain` rather than the in-process network. */
  external: boolean;
  chain: Chain;
  /** Reads the chain (in-process: directly; external: over HTTP). */
  client: PublicClient;
  /** The development node's controls (mine, move the clock, set balances) on Hardhat or Anvil; undefined on a real chain. */
  devChain: DevChain | undefined;
  deployment: TollgateDeployment;
  deploymentFile: string;
  rpcUrl: string;
  gatewayUrl: string;
  /** The web app the gateway serves: `<gatewayUrl>/app/`. */
  appUrl: string;
  configFile: string;
  storePath: string;
  dataDir: string;
  gateway: Gateway;
  gatewayConfig: GatewayConfig;
  oracle: Oracle;
  upstream: SimulatedUpstream;
  /** The JSON-RPC server in front of the in-process network; undefined on an external chain. */
  rpc: RpcServer | undefined;
  token: { address: Address; symbol: string; decimals: number };
  providerId: number;
  models: { name: string; modelId: number; prices: ModelPrices }[];
  planId: bigint;
  /** The deployer, owner and treasury: Hardhat's first account, or the external chain's deployer key. */
  operator: Address;
  provider: PrivateKeyAccount;
  /** The provider's throwaway private key: a browser test's injected wallet signs with it on the provider page. */
  providerKey: Hex;
  buyer: PrivateKeyAccount;
  /** The buyer's throwaway private key, for the CLI in serve mode. */
  buyerKey: Hex;
  gatewaySigner: Address;
  oracleSender: Address;
  apiKey: { key: string; id: string; tags: readonly string[] };
  calls: CallOutcome[];
  transactions: RecordedTransaction[];
  summary: MarketplaceSummary;
  /** Formats base units of the payment token, e.g. "0.001383 tUSD". */
  amount(value: bigint): string;
  /**
   * A Tollgate client (chain and gateway) signing as `who` on this chain: the provider, the buyer, or a new
   * account (given gas money). `label` names its transactions in `transactions` (default: its address).
   */
  as(who: PrivateKeyAccount | Hex, label?: string): Promise<TollgateClient>;
  /** An `openai` client pointed at the gateway. */
  openai(apiKey: string): OpenAI;
  /** Waits until the usage store has no unsettled record. */
  settle(timeoutMs?: number): Promise<void>;
  /** Resolves once the run has shut down (serve mode: after Ctrl-C). */
  stopped: Promise<void>;
  /** Drains the gateway, stops the oracle, the upstream and the RPC server. Safe to call twice. */
  close(): Promise<void>;
}

/** One metered call through the openai client, streaming or not, and the signed receipt that came with it. */
async function callModel(openai: OpenAI, model: string, streamed: boolean, question: string, maxTokens: number): Promise<Omit<CallOutcome, "sequence" | "cost">> {
  const messages = [
    { role: "system" as const, content: SYSTEM_PROMPT },
    { role: "user" as const, content: question },
  ];
  let envelope: ReceiptEnvelope | undefined;
  let usage: OpenAI.CompletionUsage | undefined;
  if (streamed) {
    const stream = await openai.chat.completions.create({ model, messages, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      // The gateway's last chunk before [DONE] carries the signed receipt (choices: []).
      const receipt = (chunk as unknown as { tollgate_receipt?: ReceiptEnvelope }).tollgate_receipt;
      if (receipt) envelope = receipt;
    }
  } else {
    const { data, response } = await openai.chat.completions.create({ model, messages, max_tokens: maxTokens }).withResponse();
    usage = data.usage;
    const header = response.headers.get("x-tollgate-receipt");
    if (header) envelope = parseReceiptHeader(header);
  }
  if (!envelope) throw new Error(`a call to ${model}${streamed ? " (streamed)" : ""} came back without a receipt`);
  if (!usage) throw new Error(`a call to ${model}${streamed ? " (streamed)" : ""} came back without usage`);
  return {
    model,
    streamed,
    inputTokens: usage.prompt_tokens,
    cachedInputTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    outputTokens: usage.completion_tokens,
    receipt: envelope,
  };
}

export async function runMarketplace(options: MarketplaceOptions = {}): Promise<MarketplaceRun> {
  const hre = options.hre ?? hardhat;
  const log = options.log ?? ((line: string) => console.log(line));
  const callCount = options.calls ?? 12;
  if (!Number.isInteger(callCount) || callCount < 1 || callCount > 1_000) throw new MarketplaceSetupError(`calls must be a whole number from 1 to 1000, got ${callCount}`);
  const dataDir = path.resolve(options.dataDir ?? path.join(REPO_ROOT, "data", "marketplace"));
  const deploymentFile = path.resolve(options.deploymentFile ?? path.join(REPO_ROOT, "deployments", "localhost.json"));
  const step = (n: number, text: string) => log(`[${n}/9] ${text}`);
  const closers = new Closers();

  try {
    // 1. The chain, served over HTTP for everything outside this process.
    // On an external chain, Tollgate is deployed by the deploy script as its own process, as an operator deploys it.
    const external = options.chain ? await connectExternalChain(options.chain) : undefined;
    const inProcess = external ? undefined : await startLocalChain(hre, { rpcPort: options.rpcPort, log, closers });
    const local: MarketplaceChain = external ?? inProcess!;
    step(1, `chain ${local.chain.id}: ${local.description}`);

    // 2. Tollgate, deployed with Ignition.
    if (external) log(`      deploying: scripts/deploy.ts --network rpc as its own process, waiting for each transaction to be mined...`);
    const { deployment, lines: deployLines } = external
      ? await deployExternal(external, deploymentFile, options.deploy, { deploymentId: options.chain?.ignitionDeploymentId })
      : await deployLocal(inProcess!, deploymentFile, options.deploy);
    let gatewayUrl: string | undefined;
    const as = async (who: PrivateKeyAccount | Hex, label?: string): Promise<TollgateClient> => {
      const key = typeof who === "string" ? who : keys.get(who.address);
      if (!key) throw new Error(`no key for ${typeof who === "string" ? "that account" : who.address}`);
      const address = privateKeyToAccount(key).address;
      if (!funded.has(address)) {
        await local.fundGas(address);
        funded.add(address);
      }
      return localTollgateClient(local, await readOnlyClient(local, deployment, gatewayUrl), key, (description) => `${label ?? address}: ${description}`);
    };
    const keys = new Map<Address, Hex>();
    const funded = new Set<Address>();
    const account = (key: Hex) => {
      const made = privateKeyToAccount(key);
      keys.set(made.address, key);
      return made;
    };
    const token = await getPaymentToken(await readOnlyClient(local, deployment));
    const units = (value: string) => parseUnits(value, token.decimals);
    const amount = (value: bigint) => `${formatUnits(value, token.decimals)} ${token.symbol}`;
    const p = deployment.parameters;
    step(
      2,
      `deployed with Ignition: Tollgate ${deployment.tollgate}, ${token.symbol} ${token.address} (${deployment.parameters.testToken ? "test token, permit" : "existing token"}); ` +
        `fee ${p.protocolFeeBps} bps, treasury ${p.treasury}, withdrawal delay ${p.withdrawalDelaySeconds}s, price notice ${p.priceNoticeSeconds}s; wrote ${displayPath(deploymentFile)}`,
    );
    for (const line of deployLines) log(`      ${line.trim()}`);

    // 3. The provider: registers, lists two models, defines a credit plan, authorizes a fresh gateway key.
    const providerKey = generatePrivateKey();
    const provider = account(providerKey);
    const buyerKey = generatePrivateKey();
    const buyer = account(buyerKey);
    const gatewayKey = generatePrivateKey();
    const gatewaySigner = privateKeyToAccount(gatewayKey).address;
    const oracleKey = generatePrivateKey();
    const oracleSender = privateKeyToAccount(oracleKey).address;
    // The gateway key only signs; the oracle pays gas for settlement.
    await local.fundGas(oracleSender);
    const asProvider = await as(provider, "provider");
    const { providerId } = await registerProvider(asProvider, { payout: provider.address, metadataUri: "https://provider.example/tollgate.json" });
    const models: MarketplaceRun["models"] = [];
    for (const model of MODELS) {
      const prices = { input: units(model.prices.input), cachedInput: units(model.prices.cachedInput), output: units(model.prices.output) };
      const { modelId } = await listModel(asProvider, { providerId, name: model.name, prices });
      models.push({ name: model.name, modelId, prices });
    }
    const modelNamed = (name: string) => models.find((model) => model.name === name)!;
    const { planId } = await defineCreditPlan(asProvider, {
      providerId,
      pricePerCredit: units(CREDIT_PLAN.price),
      valuePerCredit: units(CREDIT_PLAN.value),
      modelIds: CREDIT_PLAN.models.map((name) => modelNamed(name).modelId),
    });
    await setSignerAuthorization(asProvider, { providerId, signer: gatewaySigner, authorized: true });
    const bond = units(options.providerBond ?? DEFAULT_PROVIDER_BOND);
    if (bond > 0n) {
      await mintTestTokens(asProvider, { amount: bond });
      await postBond(asProvider, { providerId, amount: bond });
    }
    const perMillion = (prices: ModelPrices) => `${formatUnits(prices.input, token.decimals)} in / ${formatUnits(prices.cachedInput, token.decimals)} cached / ${formatUnits(prices.output, token.decimals)} out`;
    step(
      3,
      `provider ${providerId} (${provider.address}) lists ${models.map((m) => `${m.name} #${m.modelId} (${perMillion(m.prices)} ${token.symbol} per 1M tokens)`).join(" and ")}; ` +
        `credit plan #${planId}: 1 credit = ${amount(units(CREDIT_PLAN.value))} of ${CREDIT_PLAN.models.join(", ")} usage for ${amount(units(CREDIT_PLAN.price))}; authorizes gateway key ${gatewaySigner}` +
        (bond > 0n ? `, bonded with ${amount(bond)} (slashed by any proof that the key lied)` : ""),
    );

    // 4. The buyer funds itself: test tokens, a deposit with a permit (no approve transaction), credits from the balance.
    const asBuyer = await as(buyer, "buyer");
    const position = async (): Promise<BuyerPosition> => {
      const held = await getBuyerPosition(asBuyer, { buyer: buyer.address, planIds: [planId], providerIds: [] });
      const plan = held.credits.find((entry) => entry.planId === planId);
      return { balance: held.balance, credits: plan?.credits ?? 0n, creditChange: plan?.change ?? 0n };
    };
    await mintTestTokens(asBuyer, { amount: units(BUYER_DEPOSIT) });
    const deposited = await depositWithPermit(asBuyer, { amount: units(BUYER_DEPOSIT) });
    const bought = await buyCredits(asBuyer, { planId, count: CREDITS_BOUGHT, payFrom: "balance" });
    const buyerBefore = await position();
    step(
      4,
      `buyer ${buyer.address} deposits ${amount(deposited.credited)} with a permit (tx ${deposited.hash}) and buys ${CREDITS_BOUGHT} credits for ${amount(bought.paid)} ` +
        `from its balance (tx ${bought.hash}): balance ${amount(buyerBefore.balance)}, ${buyerBefore.credits} credits`,
    );

    // 5. The services: the simulated model server, the gateway over it, the oracle settling the gateway's store.
    const services = await startProviderServices({
      local,
      deploymentFile,
      providerId,
      models: MODELS.map((model) => ({ name: model.name, modelId: modelNamed(model.name).modelId, upstreamModel: model.upstreamModel, maxOutputTokens: model.maxOutputTokens })),
      gatewayKey,
      oracleKey,
      dataDir,
      gatewayPort: options.gatewayPort,
      batchMaxAgeMs: ORACLE_BATCH_MAX_AGE_MS,
      logLevel: options.logLevel ?? "warn",
      upstream: options.upstream,
      wrapUpstream: options.wrapUpstream,
      appDir: options.appDir,
      log,
      closers,
    });
    gatewayUrl = services.gatewayUrl;
    const { gateway, oracle } = services;
    step(
      5,
      `simulated upstream ${services.upstream.url}; gateway ${gatewayUrl} (config ${displayPath(services.configFile)}, store ${displayPath(services.storePath)}); ` +
        `oracle gas key ${oracleSender}, batches after ${ORACLE_BATCH_MAX_AGE_MS / 1000}s, health ${services.oracleUrl}/health`,
    );

    // 6. An API key, authorized by the buyer's wallet signature: no password, no account.
    const created = await createApiKey(await as(buyer, "buyer"), { label: "marketplace demo", tags: API_KEY_TAGS });
    const apiKey = { key: created.key, id: created.id, tags: API_KEY_TAGS };
    step(6, `buyer signs for an API key over HTTP: ${apiKey.id} (tags ${API_KEY_TAGS.join(", ")}, no spend cap)`);

    // 7. Metered calls through the real openai client: both models, streaming and not.
    const openai = (key: string) => new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: key, maxRetries: 0, timeout: 60_000 });
    const buyerClient = openai(apiKey.key);
    const calls: CallOutcome[] = [];
    step(7, `buyer makes ${callCount} calls through the openai client`);
    for (let i = 0; i < callCount; i++) {
      const model = MODELS[i % MODELS.length].name;
      const streamed = Math.floor(i / MODELS.length) % 2 === 1;
      const served = await callModel(buyerClient, model, streamed, QUESTIONS[i % QUESTIONS.length], 48 + ((i * 37) % 160));
      const receipt = usageReceiptFromEnvelope(served.receipt);
      const outcome: CallOutcome = { ...served, sequence: receipt.sequence, cost: receipt.cost };
      calls.push(outcome);
      log(
        `      call ${String(i + 1).padStart(String(callCount).length)}/${callCount}  ${model.padEnd(11)} ${streamed ? "stream" : "json  "}  ` +
          `${outcome.inputTokens} in (${outcome.cachedInputTokens} cached) / ${outcome.outputTokens} out  receipt #${outcome.sequence}  ${amount(outcome.cost)}`,
      );
    }

    // 8. Settlement: the oracle batches the records on its own once the oldest is old enough.
    const store = gateway.ctx.store;
    const pending = store.pendingUsage().count;
    const settleStarted = Date.now();
    await services.settle();
    // The whole deployment audited from chain data alone; the batches checked are this gateway key's.
    const chainAudit = await auditDeployment(local.client, deployment, { signer: gatewaySigner });
    const audit = settlementAuditOf(chainAudit);
    for (const batch of audit.batches) local.transactions.push({ label: `oracle settles records ${batch.firstSequence}..${batch.firstSequence + batch.recordCount - 1n}`, hash: batch.txHash });
    step(
      8,
      `oracle settled ${pending} records in ${audit.batches.length} batch${audit.batches.length === 1 ? "" : "es"} within ${((Date.now() - settleStarted) / 1000).toFixed(1)}s: ` +
        audit.batches.map((batch) => `${batch.recordCount} records in tx ${batch.txHash}`).join(", "),
    );

    // 9. The audit: chain data alone against the receipts the buyer holds and the gateway's store.
    // The buyer's own check, as `tollgate audit receipts` runs it: its usage export from the gateway (with each
    // receipt's Merkle proof) reconciled with the chain, and every on-chain charge to it matched to a receipt.
    const reconcileExport = async () => {
      const exported = await getUsage(await as(buyer, "buyer"), { apiKey: apiKey.key, limit: 10_000 });
      const reconciliation = await reconcileReceipts({
        usageExport: parseUsageExport(JSON.stringify(exported)),
        batches: audit.batches,
        deployment: { chainId: deployment.chainId, tollgate: deployment.tollgate },
        signer: gatewaySigner,
      });
      return reconciliation.findings.map((finding) => `usage export: ${finding.code}: ${finding.message}`);
    };
    const problems = [
      ...audit.problems,
      ...(await auditStoreAgainstChain(local.client, audit, store, gatewaySigner, deployment)),
      ...(await auditReceipts(audit, calls.map((call) => call.receipt), { signer: gatewaySigner, deployment })),
      ...(await reconcileExport()),
      ...calls
        .filter((call) => call.inputTokens !== Number(call.receipt.receipt.inputTokens) || call.outputTokens !== Number(call.receipt.receipt.outputTokens))
        .map((call) => `receipt #${call.sequence}: the response's usage (${call.inputTokens}/${call.outputTokens}) differs from its receipt (${call.receipt.receipt.inputTokens}/${call.receipt.receipt.outputTokens})`),
    ];
    const auditedRecords = audit.batches.reduce((n, batch) => n + batch.records.length, 0);
    const conservation = conservationCheckOf(chainAudit);
    const buyerAfter = await position();
    const [earningsAfter, feesAfter] = await Promise.all([
      local.client.readContract({ address: deployment.tollgate, abi: tollgateAbi, functionName: "earningsOf", args: [providerId] }),
      local.client.readContract({ address: deployment.tollgate, abi: tollgateAbi, functionName: "protocolFeesAccrued" }),
    ]);
    const sum = (pick: (batch: SettlementAudit["batches"][number]) => bigint) => audit.batches.reduce((total, batch) => total + pick(batch), 0n);
    const settledCost = sum((batch) => batch.totalCost);
    const paidFromBalance = sum((batch) => batch.drawnFromBalance);
    const shortfall = sum((batch) => batch.totalShortfall);
    const totalCost = calls.reduce((total, call) => total + call.cost, 0n);
    if (totalCost !== settledCost) problems.push(`the receipts add up to ${amount(totalCost)}, the chain settled ${amount(settledCost)}`);
    if (buyerBefore.balance - buyerAfter.balance !== paidFromBalance) {
      problems.push(`the buyer's balance fell by ${amount(buyerBefore.balance - buyerAfter.balance)}, but settlement drew ${amount(paidFromBalance)} from it`);
    }
    step(
      9,
      `audit: ${auditedRecords} charges in ${audit.batches.length} batch${audit.batches.length === 1 ? "" : "es"} and the ledger of ${chainAudit.counts.buyers} buyer${chainAudit.counts.buyers === 1 ? "" : "s"} ` +
        `and ${chainAudit.counts.providers} provider${chainAudit.counts.providers === 1 ? "" : "s"} rebuilt from ${chainAudit.counts.logs} events and the batches' signed data, ` +
        `compared with the contracts' state, ${calls.length} signed receipts, the buyer's usage export (each receipt proven in its batch) and the usage store: ${problems.length === 0 ? "all match" : `${problems.length} PROBLEMS`}; ` +
        `vault holds ${amount(conservation.held)}, owes ${amount(conservation.owed)}: ${conservation.conserved ? "conserved" : "NOT CONSERVED"}`,
    );
    const summary: MarketplaceSummary = {
      calls: calls.length,
      streamed: calls.filter((call) => call.streamed).length,
      models: models.map((model) => {
        const mine = calls.filter((call) => call.model === model.name);
        const total = (pick: (call: CallOutcome) => number) => mine.reduce((n, call) => n + pick(call), 0);
        return {
          model: model.name,
          modelId: model.modelId,
          prices: model.prices,
          calls: mine.length,
          inputTokens: total((call) => call.inputTokens),
          cachedInputTokens: total((call) => call.cachedInputTokens),
          outputTokens: total((call) => call.outputTokens),
          cost: mine.reduce((cost, call) => cost + call.cost, 0n),
        };
      }),
      totalCost,
      buyerBefore,
      buyerAfter,
      providerEarningsBefore: earningsAfter - sum((batch) => batch.providerEarnings),
      providerEarningsAfter: earningsAfter,
      protocolFeesBefore: feesAfter - sum((batch) => batch.protocolFee),
      protocolFeesAfter: feesAfter,
      paidFromBalance,
      paidWithCredits: settledCost - paidFromBalance - shortfall,
      shortfall,
      conservation,
      audit: { batches: audit.batches.length, records: auditedRecords, buyers: chainAudit.counts.buyers, providers: chainAudit.counts.providers, problems },
    };

    let resolveStopped!: () => void;
    const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        const failures = await closers.closeAll();
        resolveStopped();
        if (failures.length > 0) throw new Error(`shutting down: ${failures.join("; ")}`);
      })();
      return closing;
    };
    if (options.serve) {
      // Only when serving: a run that stops after its checks has no browser to serve.
      await ensureWebAppBuilt({ dir: services.gatewayConfig.app.dir, log });
      serveUntilSignal(oracle, audit.batches.at(-1)?.txHash, local.transactions, log, close, closers);
    }

    return {
      hre,
      external: external !== undefined,
      chain: local.chain,
      client: local.client,
      devChain: local.devChain,
      deployment,
      deploymentFile,
      rpcUrl: local.rpcUrl,
      gatewayUrl,
      appUrl: `${gatewayUrl}/app/`,
      configFile: services.configFile,
      storePath: services.storePath,
      dataDir,
      gateway,
      gatewayConfig: services.gatewayConfig,
      oracle,
      upstream: services.upstream,
      rpc: inProcess?.rpc,
      token,
      providerId,
      models,
      planId,
      operator: local.operator,
      provider,
      providerKey,
      buyer,
      buyerKey,
      gatewaySigner,
      oracleSender,
      apiKey,
      calls,
      transactions: local.transactions,
      summary,
      amount,
      as: (who, label) => as(typeof who === "string" ? (account(who), who) : who, label),
      openai,
      settle: services.settle,
      stopped,
      close,
    };
  } catch (error) {
    const failures = await closers.closeAll();
    if (failures.length > 0) log(`  (while stopping after the failure: ${failures.join("; ")})`);
    throw error;
  }
}

async function main(): Promise<number> {
  const cli = parseDemoOptions(process.argv.slice(2), process.env);
  if (cli.help) {
    console.log(DEMO_USAGE);
    return 0;
  }
  const started = Date.now();
  // Run directly with node (npm run demo), nothing has compiled the contracts yet; under `hardhat run` this finds them fresh.
  await hardhat.run("compile", { quiet: true });
  const run = await runMarketplace({
    serve: cli.serve,
    calls: cli.calls,
    rpcPort: cli.rpcPort,
    gatewayPort: cli.gatewayPort,
    dataDir: cli.dataDir,
    logLevel: cli.logLevel,
    chain: cli.rpcUrl ? { rpcUrl: cli.rpcUrl, deployerKey: cli.deployerKey! } : undefined,
  });
  let failed: string | undefined;
  try {
    for (const line of describeRun(run)) console.log(line);
    const { audit, conservation } = run.summary;
    if (audit.problems.length > 0 || !conservation.conserved) {
      failed = `the marketplace's checks failed: ${audit.problems.length} audit problems${conservation.conserved ? "" : ", and the vault does not hold what it owes"}`;
    }
    const total = process.uptime();
    const loading = total - (Date.now() - started) / 1000;
    console.log(`\nfinished in ${total.toFixed(1)}s (${loading.toFixed(1)}s of it loading Hardhat and compiling TypeScript)${failed ? "" : ": every check passed"}`);
  } catch (error) {
    await run.close();
    throw error;
  }
  if (cli.serve && !failed) {
    for (const line of describeServing(run)) console.log(line);
    await run.stopped;
    return 0;
  }
  await run.close();
  if (failed) {
    console.error(`\nmarketplace: ${failed}`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
      // Everything was closed; a stray keep-alive handle must not hold the process open after the summary.
      setTimeout(() => process.exit(), 2_000).unref();
    },
    (error: unknown) => {
      const message = error instanceof MarketplaceSetupError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`\nmarketplace failed: ${message}`);
      process.exitCode = 1;
      setTimeout(() => process.exit(), 2_000).unref();
    },
  );
}
