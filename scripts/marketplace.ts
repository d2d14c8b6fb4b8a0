/**
 * The whole marketplace in one process, on Hardhat's in-process network, with no accounts and no network:
 *
 *   npm run demo                   # run it end to end, print the bill and the audit, exit
 *   npm run demo -- --serve        # ...then keep serving (or TOLLGATE_SERVE=1 npm run demo) until Ctrl-C
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
 * Options (flag, or environment for `hardhat run`): --serve (TOLLGATE_SERVE=1), --calls N (TOLLGATE_DEMO_CALLS),
 * --rpc-port N (TOLLGATE_RPC_PORT), --gateway-port N (TOLLGATE_GATEWAY_PORT), --data-dir DIR (TOLLGATE_DATA_DIR).
 * TOLLGATE_LOG_LEVEL sets the gateway's and oracle's JSON log level (default warn).
 *
 * `runMarketplace` is the core, shared with test/e2e/marketplace.test.ts.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import hardhat from "hardhat";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import OpenAI from "openai";
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  formatUnits,
  getAddress,
  parseEventLogs,
  parseSignature,
  parseUnits,
  recoverTypedDataAddress,
  toHex,
  type Address,
  type Chain,
  type Hash,
  type Hex,
  type PrivateKeyAccount,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi } from "../server/chain/abis";
import { writeDeploymentFile } from "../server/chain/deployment";
import { usageReceiptTypes } from "../server/chain/eip712";
import { merkleRoot } from "../server/chain/merkle";
import { permitTypes } from "../server/chain/permit";
import type { ModelPrices } from "../server/chain/pricing";
import { hashReceipt, type UsageReceipt } from "../server/chain/usage-batch";
import { parseGatewayConfig, readJsonFile, type GatewayConfig } from "../server/config";
import { apiKeyMessageTypes, gatewayDomain } from "../server/gateway/api-keys/wallet-messages";
import { createGateway, type Gateway } from "../server/gateway/gateway";
import { usageReceiptFromEnvelope, usageReceiptOf, type ReceiptEnvelope } from "../server/gateway/metering/meter";
import { parseReceiptHeader } from "../server/gateway/http/receipt-header";
import { parseOracleConfig } from "../server/oracle/config";
import { createOracle, type Oracle } from "../server/oracle/oracle";
import { createOpenAICompatibleUpstream } from "../server/upstream/openai-compatible";
import { startSimulatedUpstream, type SimulatedUpstream, type SimulatedUpstreamOptions } from "../server/upstream/simulated-upstream";
import type { UpstreamAdapter } from "../server/upstream/types";
import { auditSettlements, checkConservation, type ConservationCheck, type SettlementAudit } from "./lib/chain-audit";
import { deployTollgate, type TollgateDeployment, type TollgateDeployParameters } from "./lib/deploy-tollgate";
import { PortInUseError, startRpcServer, type RpcServer } from "./lib/rpc-server";

const REPO_ROOT = path.resolve(__dirname, "..");
const HOST = "127.0.0.1";
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

/** What the provider sells: per-million-token prices in whole tUSD, turned into base units once the token's decimals are known. */
const MODELS = [
  { name: "small-model", upstreamModel: "sim-chat-mini", maxOutputTokens: 1024, prices: { input: "0.15", cachedInput: "0.075", output: "0.60" } },
  { name: "large-model", upstreamModel: "sim-chat", maxOutputTokens: 2048, prices: { input: "2.50", cachedInput: "1.25", output: "10" } },
] as const;
/** One credit buys 0.01 tUSD of small-model usage and costs 0.009: a 10% discount for paying ahead. */
const CREDIT_PLAN = { price: "0.009", value: "0.01", models: ["small-model"] };
const BUYER_DEPOSIT = "25";
const CREDITS_BOUGHT = 200n;
const API_KEY_TAGS = ["team:research", "workflow:marketplace-demo"];
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
  /** The gateway's and the oracle's JSON log level (default warn). */
  logLevel?: LogLevel;
  /** Default: the Hardhat runtime this process loaded. It must be the in-process network. */
  hre?: HardhatRuntimeEnvironment;
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

export interface RecordedTransaction {
  label: string;
  hash: Hash;
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
  /** Charges rebuilt from chain data; `problems` lists every disagreement with the receipts or the events. */
  audit: { batches: number; records: number; problems: string[] };
}

export interface ApiKeyOptions {
  label?: string;
  /** Base units; 0 or absent: no cap. */
  spendCap?: bigint;
  models?: string[];
  tags?: string[];
}

export interface MarketplaceRun {
  hre: HardhatRuntimeEnvironment;
  chain: Chain;
  /** Reads the in-process chain directly. */
  client: PublicClient;
  deployment: TollgateDeployment;
  deploymentFile: string;
  rpcUrl: string;
  gatewayUrl: string;
  configFile: string;
  storePath: string;
  dataDir: string;
  gateway: Gateway;
  gatewayConfig: GatewayConfig;
  oracle: Oracle;
  upstream: SimulatedUpstream;
  rpc: RpcServer;
  token: { address: Address; symbol: string; decimals: number };
  providerId: number;
  models: { name: string; modelId: number; prices: ModelPrices }[];
  planId: bigint;
  /** Hardhat's first account: deployer, owner and treasury. */
  operator: Address;
  provider: PrivateKeyAccount;
  buyer: PrivateKeyAccount;
  /** The buyer's throwaway private key, for the CLI in serve mode. */
  buyerKey: Hex;
  gatewaySigner: Address;
  oracleSender: Address;
  apiKey: { key: string; id: string };
  calls: CallOutcome[];
  transactions: RecordedTransaction[];
  summary: MarketplaceSummary;
  /** Formats base units of the payment token, e.g. "0.001383 tUSD". */
  amount(value: bigint): string;
  /** A wallet for `account` on the in-process chain. */
  wallet(account: PrivateKeyAccount): WalletClient<Transport, Chain, PrivateKeyAccount>;
  /** Waits for a transaction, throws if it reverted, and lists it under `label`. */
  mined(hash: Hash, label: string): Promise<TransactionReceipt>;
  /** Gives `address` gas money on the in-process chain. */
  fundGas(address: Address): Promise<void>;
  /** Mints test tokens to `account` and deposits them with an EIP-2612 permit; `who` names it in the transaction list. */
  depositWithPermit(account: PrivateKeyAccount, amount: bigint, who?: string): Promise<Hash>;
  /** A gateway API key for `account`, authorized by its wallet signature over HTTP. */
  createApiKey(account: PrivateKeyAccount, options?: ApiKeyOptions): Promise<{ key: string; id: string }>;
  /** An `openai` client pointed at the gateway. */
  openai(apiKey: string): OpenAI;
  /** Waits until the usage store has no unsettled record. */
  settle(timeoutMs?: number): Promise<void>;
  /** Resolves once the run has shut down (serve mode: after Ctrl-C). */
  stopped: Promise<void>;
  /** Drains the gateway, stops the oracle, the upstream and the RPC server. Safe to call twice. */
  close(): Promise<void>;
}

/** The run cannot start as asked (wrong network, bad option). */
export class MarketplaceSetupError extends Error {
  override name = "MarketplaceSetupError";
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A path as a person would type it from here: relative inside the working directory, absolute outside it. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === "" ? "." : relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}

function isPortInUse(error: unknown): boolean {
  return error instanceof PortInUseError || (error as NodeJS.ErrnoException)?.code === "EADDRINUSE";
}

/** Listens on `port`; if another process holds it, on a free port instead, and says so. */
async function listenOrFallback<T>(what: string, port: number, listen: (port: number) => Promise<T>, log: (line: string) => void): Promise<T> {
  try {
    return await listen(port);
  } catch (error) {
    if (port === 0 || !isPortInUse(error)) throw error;
    log(`  ${what}: port ${port} on ${HOST} is in use by another process, so a free port is used instead (shown below)`);
    return listen(0);
  }
}


export async function runMarketplace(options: MarketplaceOptions = {}): Promise<MarketplaceRun> {
  const hre = options.hre ?? hardhat;
  const log = options.log ?? ((line: string) => console.log(line));
  const callCount = options.calls ?? 12;
  if (!Number.isInteger(callCount) || callCount < 1 || callCount > 1_000) throw new MarketplaceSetupError(`calls must be a whole number from 1 to 1000, got ${callCount}`);
  if (hre.network.name !== "hardhat") {
    throw new MarketplaceSetupError(
      `the marketplace runs its own chain on Hardhat's in-process network, not on "${hre.network.name}": run it without --network (and without HARDHAT_NETWORK)`,
    );
  }
  // The in-process chain mines one block per transaction. With strictly increasing timestamps every block
  // would move its clock a second ahead of the wall clock, the gateway (which dates calls by the later of
  // the two) would date calls that far ahead, and the oracle's age-based batches would wait that much longer.
  // Hardhat reads this when the chain is first used, so it only takes effect if nothing in this process has
  // used the chain yet (a test run may have); `settle` copes either way.
  const networkConfig = hre.network.config as { allowBlocksWithSameTimestamp?: boolean };
  const sameTimestampsBefore = networkConfig.allowBlocksWithSameTimestamp;
  networkConfig.allowBlocksWithSameTimestamp = true;

  const dataDir = path.resolve(options.dataDir ?? path.join(REPO_ROOT, "data", "marketplace"));
  const deploymentFile = path.resolve(options.deploymentFile ?? path.join(REPO_ROOT, "deployments", "localhost.json"));
  const configFile = path.join(dataDir, "tollgate.config.json");
  const storePath = path.join(dataDir, "usage.sqlite");
  const journalPath = path.join(dataDir, "oracle-journal.json");
  const logLevel = options.logLevel ?? "warn";
  const totalSteps = 9;
  const step = (n: number, text: string) => log(`[${n}/${totalSteps}] ${text}`);

  // Everything started so far, stopped in reverse if a later step fails.
  const closers: { name: string; close: () => Promise<void> }[] = [];
  const shutDown = async (): Promise<string[]> => {
    const failures: string[] = [];
    for (const { name, close } of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message}`);
      }
    }
    return failures;
  };

  try {
    const provider = hre.network.provider;
    const client = createPublicClient({ transport: custom(provider), pollingInterval: 50 }) as PublicClient;
    const chainId = await client.getChainId();
    // The chain exists now; the setting goes back to what it was, so nothing else in this process inherits it.
    networkConfig.allowBlocksWithSameTimestamp = sameTimestampsBefore;
    // Hardhat dates the genesis block when it loads, seconds before the chain is first used, and blocks that
    // may share a timestamp keep that lag: calls dated by the wall clock would then be "in the future" for
    // the chain until it catches up. One block at the wall clock's time brings the two together for good.
    const genesisLag = BigInt(Math.floor(Date.now() / 1000)) - (await client.getBlock({ blockTag: "latest" })).timestamp;
    if (genesisLag > 0n) {
      await provider.request({ method: "evm_setNextBlockTimestamp", params: [Math.floor(Date.now() / 1000)] });
      await provider.request({ method: "evm_mine", params: [] });
    }

    // 1. The chain, served over HTTP for everything outside this process.
    const rpc = await listenOrFallback("JSON-RPC", options.rpcPort ?? 8545, (port) => startRpcServer(provider, { hostname: HOST, port }), log);
    closers.push({ name: "JSON-RPC server", close: () => rpc.close() });
    const chain = defineChain({
      id: chainId,
      name: "Hardhat (in-process, Tollgate marketplace)",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [rpc.url] } },
    });
    step(1, `chain ${chainId}: Hardhat's in-process network, served over JSON-RPC at ${rpc.url}`);

    const transactions: RecordedTransaction[] = [];
    const mined = async (hash: Hash, label: string): Promise<TransactionReceipt> => {
      const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
      if (receipt.status !== "success") throw new Error(`${label}: transaction ${hash} reverted`);
      transactions.push({ label, hash });
      return receipt;
    };
    const wallets = new Map<Address, WalletClient<Transport, Chain, PrivateKeyAccount>>();
    const wallet = (account: PrivateKeyAccount) => {
      let found = wallets.get(account.address);
      if (!found) {
        found = createWalletClient({ account, chain, transport: custom(provider), pollingInterval: 50 });
        wallets.set(account.address, found);
      }
      return found;
    };
    const fundGas = async (address: Address) => {
      await provider.request({ method: "hardhat_setBalance", params: [address, toHex(10n ** 20n)] });
    };

    // 2. Tollgate, deployed the one way it is deployed everywhere: Ignition.
    const [operator] = (await provider.request({ method: "eth_accounts" })) as Address[];
    const deployParams: TollgateDeployParameters = { treasury: getAddress(operator), owner: getAddress(operator), ...options.deploy };
    const deployLines: string[] = [];
    const deployment = await deployTollgate(hre, deployParams, { log: (line) => deployLines.push(line) });
    // The file names the chain as the CLI and wallets reach it: over JSON-RPC on localhost.
    writeDeploymentFile(deploymentFile, { ...deployment, network: "localhost" });
    const tollgate = deployment.tollgate;
    const tokenAddress = deployment.paymentToken;
    const [tokenSymbol, tokenDecimals] = await Promise.all([
      client.readContract({ address: tokenAddress, abi: testUsdAbi, functionName: "symbol" }),
      client.readContract({ address: tokenAddress, abi: testUsdAbi, functionName: "decimals" }),
    ]);
    const token = { address: tokenAddress, symbol: tokenSymbol, decimals: Number(tokenDecimals) };
    const units = (value: string) => parseUnits(value, token.decimals);
    const amount = (value: bigint) => `${formatUnits(value, token.decimals)} ${token.symbol}`;
    const p = deployment.parameters;
    step(
      2,
      `deployed with Ignition: Tollgate ${tollgate}, ${token.symbol} ${tokenAddress} (test token, permit); ` +
        `fee ${p.protocolFeeBps} bps, treasury ${p.treasury}, withdrawal delay ${p.withdrawalDelaySeconds}s, price notice ${p.priceNoticeSeconds}s; wrote ${displayPath(deploymentFile)}`,
    );
    for (const line of deployLines) log(`      ${line.trim()}`);

    // 3. The provider: registers, lists two models, defines a credit plan, authorizes a fresh gateway key.
    const providerAccount = privateKeyToAccount(generatePrivateKey());
    const buyerKey = generatePrivateKey();
    const buyer = privateKeyToAccount(buyerKey);
    const gatewayKey = generatePrivateKey();
    const gatewaySigner = privateKeyToAccount(gatewayKey).address;
    const oracleKey = generatePrivateKey();
    const oracleSender = privateKeyToAccount(oracleKey).address;
    // The gateway key only signs; everyone else pays gas.
    await Promise.all([providerAccount.address, buyer.address, oracleSender].map(fundGas));
    const asProvider = wallet(providerAccount);
    const registered = await mined(
      await asProvider.writeContract({ address: tollgate, abi: tollgateAbi, functionName: "registerProvider", args: [providerAccount.address, "https://provider.example/tollgate.json"] }),
      "provider registers",
    );
    const providerId = parseEventLogs({ abi: tollgateAbi, eventName: "ProviderRegistered", logs: registered.logs })[0].args.providerId;
    const models: MarketplaceRun["models"] = [];
    for (const model of MODELS) {
      const prices = { input: units(model.prices.input), cachedInput: units(model.prices.cachedInput), output: units(model.prices.output) };
      const listed = await mined(await asProvider.writeContract({ address: tollgate, abi: tollgateAbi, functionName: "listModel", args: [providerId, model.name, prices] }), `provider lists ${model.name}`);
      const modelId = parseEventLogs({ abi: tollgateAbi, eventName: "ModelListed", logs: listed.logs })[0].args.modelId;
      models.push({ name: model.name, modelId, prices });
    }
    const modelNamed = (name: string) => models.find((model) => model.name === name)!;
    const planDefined = await mined(
      await asProvider.writeContract({
        address: tollgate,
        abi: tollgateAbi,
        functionName: "defineCreditPlan",
        args: [providerId, units(CREDIT_PLAN.price), units(CREDIT_PLAN.value), CREDIT_PLAN.models.map((name) => modelNamed(name).modelId), 0],
      }),
      "provider defines a credit plan",
    );
    const planId = parseEventLogs({ abi: tollgateAbi, eventName: "CreditPlanDefined", logs: planDefined.logs })[0].args.planId;
    await mined(
      await asProvider.writeContract({ address: tollgate, abi: tollgateAbi, functionName: "setSignerAuthorization", args: [providerId, gatewaySigner, true] }),
      "provider authorizes the gateway key",
    );
    const perMillion = (prices: ModelPrices) => `${formatUnits(prices.input, token.decimals)} in / ${formatUnits(prices.cachedInput, token.decimals)} cached / ${formatUnits(prices.output, token.decimals)} out`;
    step(
      3,
      `provider ${providerId} (${providerAccount.address}) lists ${models.map((m) => `${m.name} #${m.modelId} (${perMillion(m.prices)} ${token.symbol} per 1M tokens)`).join(" and ")}; ` +
        `credit plan #${planId}: 1 credit = ${amount(units(CREDIT_PLAN.value))} of ${CREDIT_PLAN.models.join(", ")} usage for ${amount(units(CREDIT_PLAN.price))}; authorizes gateway key ${gatewaySigner}`,
    );

    // 4. The buyer funds itself: test tokens, a deposit with a permit (no approve transaction), credits from the balance.
    const creditsToken = deployment.credits;
    const depositWithPermit = async (account: PrivateKeyAccount, value: bigint, who: string = account.address): Promise<Hash> => {
      const asAccount = wallet(account);
      await mined(await asAccount.writeContract({ address: tokenAddress, abi: testUsdAbi, functionName: "mint", args: [account.address, value] }), `${who} mints ${amount(value)} (test faucet)`);
      const [, name, version] = await client.readContract({ address: tokenAddress, abi: testUsdAbi, functionName: "eip712Domain" });
      const nonce = await client.readContract({ address: tokenAddress, abi: testUsdAbi, functionName: "nonces", args: [account.address] });
      const latest = await client.getBlock({ blockTag: "latest" });
      const deadline = latest.timestamp + 3_600n;
      const signature = await account.signTypedData({
        domain: { name, version, chainId, verifyingContract: tokenAddress },
        types: permitTypes,
        primaryType: "Permit",
        message: { owner: account.address, spender: tollgate, value, nonce, deadline },
      });
      const { r, s, v, yParity } = parseSignature(signature);
      const hash = await asAccount.writeContract({
        address: tollgate,
        abi: tollgateAbi,
        functionName: "depositWithPermit",
        args: [account.address, value, deadline, Number(v ?? BigInt(yParity + 27)), r, s],
      });
      await mined(hash, `${who} deposits ${amount(value)} with a permit`);
      return hash;
    };
    const position = async (account: Address): Promise<BuyerPosition> => {
      const [view, credits, creditChange] = await Promise.all([
        client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "accountOf", args: [account] }),
        client.readContract({ address: creditsToken, abi: tollgateCreditsAbi, functionName: "balanceOf", args: [account, planId] }),
        client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "creditChangeOf", args: [account, planId] }),
      ]);
      return { balance: view.balance, credits, creditChange };
    };
    const depositHash = await depositWithPermit(buyer, units(BUYER_DEPOSIT), "buyer");
    const creditsHash = await wallet(buyer).writeContract({ address: tollgate, abi: tollgateAbi, functionName: "buyCreditsWithBalance", args: [planId, CREDITS_BOUGHT, buyer.address] });
    const purchase = await mined(creditsHash, `buyer buys ${CREDITS_BOUGHT} credits of plan ${planId} from its balance`);
    const bought = parseEventLogs({ abi: tollgateAbi, eventName: "CreditsPurchased", logs: purchase.logs })[0].args;
    const buyerBefore = await position(buyer.address);
    step(
      4,
      `buyer ${buyer.address} deposits ${amount(units(BUYER_DEPOSIT))} with a permit (tx ${depositHash}) and buys ${CREDITS_BOUGHT} credits for ${amount(bought.paid)} ` +
        `from its balance (tx ${creditsHash}): balance ${amount(buyerBefore.balance)}, ${buyerBefore.credits} credits`,
    );

    // 5. The services: the simulated model server, the gateway over it, the oracle settling the gateway's store.
    fs.mkdirSync(dataDir, { recursive: true });
    // The chain is new every run, so an earlier run's store and journal describe a chain that no longer exists.
    for (const file of [configFile, storePath, `${storePath}-wal`, `${storePath}-shm`, journalPath]) fs.rmSync(file, { force: true });
    const upstream = await startSimulatedUpstream({ host: HOST, ...options.upstream });
    closers.push({ name: "simulated upstream", close: () => upstream.close() });
    const configObject = {
      listen: { host: HOST, port: options.gatewayPort ?? 8787 },
      chain: { rpcUrl: rpc.url, deploymentFile: path.relative(dataDir, deploymentFile), accountCacheMs: 1_000, registryRefreshMs: 2_000 },
      providerId,
      store: { path: path.basename(storePath) },
      upstreams: { simulated: { baseUrl: upstream.url, timeoutMs: 30_000 } },
      models: MODELS.map((model) => ({ name: model.name, modelId: modelNamed(model.name).modelId, upstream: "simulated", upstreamModel: model.upstreamModel, maxOutputTokens: model.maxOutputTokens })),
      log: { level: logLevel },
      oracle: {
        listen: { host: HOST, port: 0 },
        batch: { maxRecords: 200, maxAgeMs: ORACLE_BATCH_MAX_AGE_MS },
        pollMs: 250,
        retry: { initialMs: 250, maxMs: 2_000 },
        journalPath: path.basename(journalPath),
      },
    };
    const writeConfig = () => fs.writeFileSync(configFile, JSON.stringify(configObject, null, 2) + "\n");
    writeConfig();
    // Keys only ever travel through the environment the parsers are given, never through the file.
    const gatewayConfig = parseGatewayConfig(readJsonFile(configFile, "config file"), { TOLLGATE_GATEWAY_SIGNER_KEY: gatewayKey }, dataDir, configFile);
    const adapter = createOpenAICompatibleUpstream({ name: "simulated", baseUrl: upstream.url, timeoutMs: gatewayConfig.upstreams.simulated.timeoutMs });
    const gateway = await createGateway({ config: gatewayConfig, client, upstreams: { simulated: options.wrapUpstream ? options.wrapUpstream(adapter) : adapter } });
    closers.push({ name: "gateway", close: () => gateway.close() });
    const gatewayUrl = await listenOrFallback("gateway", gatewayConfig.listen.port, (port) => gateway.listen(port, HOST), log);
    const gatewayPort = Number(new URL(gatewayUrl).port);
    if (gatewayPort !== configObject.listen.port) {
      configObject.listen.port = gatewayPort;
      writeConfig();
    }
    const oracleConfig = parseOracleConfig(readJsonFile(configFile, "config file"), { TOLLGATE_ORACLE_KEY: oracleKey, TOLLGATE_GATEWAY_SIGNER_KEY: gatewayKey }, dataDir, configFile);
    const oracle = await createOracle({ config: oracleConfig, client });
    closers.push({ name: "oracle", close: () => oracle.close() });
    await oracle.start();
    const oracleUrl = await oracle.listen(0, HOST);
    step(
      5,
      `simulated upstream ${upstream.url}; gateway ${gatewayUrl} (config ${displayPath(configFile)}, store ${displayPath(storePath)}); ` +
        `oracle gas key ${oracleSender}, batches after ${ORACLE_BATCH_MAX_AGE_MS / 1000}s, health ${oracleUrl}/health`,
    );

    // 6. An API key, authorized by the buyer's wallet signature: no password, no account.
    const domain = gatewayDomain(chainId, tollgate);
    const createApiKey = async (account: PrivateKeyAccount, keyOptions: ApiKeyOptions = {}) => {
      const message = {
        buyer: account.address,
        label: keyOptions.label ?? "marketplace demo",
        spendCap: keyOptions.spendCap ?? 0n,
        models: keyOptions.models ?? [],
        tags: keyOptions.tags ?? API_KEY_TAGS,
        expiresAt: 0n,
        issuedAt: BigInt(Math.floor(Date.now() / 1000)),
        nonce: toHex(randomBytes(32)),
      };
      const signature = await account.signTypedData({ domain, types: apiKeyMessageTypes, primaryType: "CreateApiKey", message });
      const response = await fetch(`${gatewayUrl}/v1/keys`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        // JSON has no bigint: amounts and times travel as decimal strings.
        body: JSON.stringify({ message, signature }, (_key, value) => (typeof value === "bigint" ? value.toString() : value)),
      });
      const body = (await response.json()) as { key?: string; id?: string; error?: { message?: string } };
      if (response.status !== 201 || !body.key || !body.id) throw new Error(`creating an API key failed: HTTP ${response.status} ${body.error?.message ?? JSON.stringify(body)}`);
      return { key: body.key, id: body.id };
    };
    const apiKey = await createApiKey(buyer);
    step(6, `buyer signs for an API key over HTTP: ${apiKey.id} (tags ${API_KEY_TAGS.join(", ")}, no spend cap)`);

    // 7. Metered calls through the real openai client: both models, streaming and not.
    const openai = (key: string) => new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: key, maxRetries: 0, timeout: 60_000 });
    const buyerClient = openai(apiKey.key);
    const calls: CallOutcome[] = [];
    step(7, `buyer makes ${callCount} calls through the openai client`);
    for (let i = 0; i < callCount; i++) {
      const model = MODELS[i % MODELS.length].name;
      const streamed = Math.floor(i / MODELS.length) % 2 === 1;
      const messages = [
        { role: "system" as const, content: SYSTEM_PROMPT },
        { role: "user" as const, content: QUESTIONS[i % QUESTIONS.length] },
      ];
      const maxTokens = 48 + ((i * 37) % 160);
      let envelope: ReceiptEnvelope | undefined;
      let usage: OpenAI.CompletionUsage | undefined;
      if (streamed) {
        const stream = await buyerClient.chat.completions.create({ model, messages, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } });
        for await (const chunk of stream) {
          if (chunk.usage) usage = chunk.usage;
          // The gateway's last chunk before [DONE] carries the signed receipt (choices: []).
          const receipt = (chunk as unknown as { tollgate_receipt?: ReceiptEnvelope }).tollgate_receipt;
          if (receipt) envelope = receipt;
        }
      } else {
        const { data, response } = await buyerClient.chat.completions.create({ model, messages, max_tokens: maxTokens }).withResponse();
        usage = data.usage;
        const header = response.headers.get("x-tollgate-receipt");
        if (header) envelope = parseReceiptHeader(header);
      }
      if (!envelope) throw new Error(`call ${i + 1} (${model}${streamed ? ", streamed" : ""}) came back without a receipt`);
      if (!usage) throw new Error(`call ${i + 1} (${model}${streamed ? ", streamed" : ""}) came back without usage`);
      const receipt = usageReceiptFromEnvelope(envelope);
      const outcome: CallOutcome = {
        model,
        streamed,
        inputTokens: usage.prompt_tokens,
        cachedInputTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
        outputTokens: usage.completion_tokens,
        receipt: envelope,
        sequence: receipt.sequence,
        cost: receipt.cost,
      };
      calls.push(outcome);
      log(
        `      call ${String(i + 1).padStart(String(callCount).length)}/${callCount}  ${model.padEnd(11)} ${streamed ? "stream" : "json  "}  ` +
          `${outcome.inputTokens} in (${outcome.cachedInputTokens} cached) / ${outcome.outputTokens} out  receipt #${outcome.sequence}  ${amount(outcome.cost)}`,
      );
    }

    // 8. Settlement: the oracle batches the records on its own once the oldest is old enough.
    const store = gateway.ctx.store;
    const settle = async (timeoutMs = 60_000) => {
      const started = Date.now();
      const forceAt = started + ORACLE_BATCH_MAX_AGE_MS + 3 * oracleConfig.pollMs + 2_000;
      while (store.pendingUsage().count > 0) {
        if (Date.now() > forceAt) {
          // The oracle ages batches by the wall clock, while calls are dated by the chain's clock when it runs
          // ahead (a chain that mined many blocks in one second, or was fast-forwarded): then age-based batches
          // would wait until the wall clock catches up. Settle what waits now instead.
          await oracle.settleAll(Math.max(1_000, timeoutMs - (Date.now() - started)));
          return;
        }
        await sleep(100);
      }
    };
    const pending = store.pendingUsage().count;
    const settleStarted = Date.now();
    await settle();
    const audit = await auditSettlements(client, deployment, { signer: gatewaySigner });
    for (const batch of audit.batches) transactions.push({ label: `oracle settles records ${batch.firstSequence}..${batch.firstSequence + batch.recordCount - 1n}`, hash: batch.txHash });
    step(
      8,
      `oracle settled ${pending} records in ${audit.batches.length} batch${audit.batches.length === 1 ? "" : "es"} within ${((Date.now() - settleStarted) / 1000).toFixed(1)}s: ` +
        audit.batches.map((batch) => `${batch.recordCount} records in tx ${batch.txHash}`).join(", "),
    );

    // 9. The audit: chain data alone against the receipts the buyer holds and the gateway's store.
    const problems = [...audit.problems, ...(await crossCheck(client, audit, store, calls, gatewaySigner, deployment))];
    const auditedRecords = audit.batches.reduce((n, batch) => n + batch.records.length, 0);
    const conservation = await checkConservation(client, deployment);
    const buyerAfter = await position(buyer.address);
    const [earningsAfter, feesAfter] = await Promise.all([
      client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "earningsOf", args: [providerId] }),
      client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "protocolFeesAccrued" }),
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
      `audit: ${auditedRecords} charges rebuilt from ${audit.batches.length} settlement transaction${audit.batches.length === 1 ? "'s" : "s'"} calldata and the price epochs, ` +
        `compared with ${calls.length} signed receipts and the usage store: ${problems.length === 0 ? "all match" : `${problems.length} PROBLEMS`}; ` +
        `vault holds ${amount(conservation.held)}, owes ${amount(conservation.owed)}: ${conservation.conserved ? "conserved" : "NOT CONSERVED"}`,
    );
    const summary: MarketplaceSummary = {
      calls: calls.length,
      streamed: calls.filter((call) => call.streamed).length,
      models: models.map((model) => {
        const mine = calls.filter((call) => call.model === model.name);
        return {
          model: model.name,
          modelId: model.modelId,
          prices: model.prices,
          calls: mine.length,
          inputTokens: mine.reduce((n, call) => n + call.inputTokens, 0),
          cachedInputTokens: mine.reduce((n, call) => n + call.cachedInputTokens, 0),
          outputTokens: mine.reduce((n, call) => n + call.outputTokens, 0),
          cost: mine.reduce((total, call) => total + call.cost, 0n),
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
      audit: { batches: audit.batches.length, records: auditedRecords, problems },
    };

    // Serve mode: report each batch the oracle settles from now on, and shut down cleanly on Ctrl-C.
    let resolveStopped!: () => void;
    const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        const failures = await shutDown();
        resolveStopped();
        if (failures.length > 0) throw new Error(`shutting down: ${failures.join("; ")}`);
      })();
      return closing;
    };
    if (options.serve) {
      let lastReported = audit.batches.at(-1)?.txHash;
      const watcher = setInterval(() => {
        const batch = oracle.streams[0]?.health.lastBatch;
        if (!batch || batch.txHash === lastReported) return;
        lastReported = batch.txHash;
        transactions.push({ label: `oracle settles records ${batch.firstSequence}..${batch.lastSequence}`, hash: batch.txHash });
        log(`settled records ${batch.firstSequence}..${batch.lastSequence} (${batch.records}) in tx ${batch.txHash}, ${batch.gasUsed} gas`);
      }, 500);
      watcher.unref();
      const onSignal = (signal: NodeJS.Signals) => {
        log(`\n${signal}: draining the gateway, stopping the oracle, the upstream and the JSON-RPC server...`);
        close().then(
          () => log("stopped cleanly"),
          (error: unknown) => log(`stopped with errors: ${(error as Error).message}`),
        );
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      closers.unshift({
        name: "serve mode",
        close: async () => {
          clearInterval(watcher);
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        },
      });
    }

    return {
      hre,
      chain,
      client,
      deployment,
      deploymentFile,
      rpcUrl: rpc.url,
      gatewayUrl,
      configFile,
      storePath,
      dataDir,
      gateway,
      gatewayConfig,
      oracle,
      upstream,
      rpc,
      token,
      providerId,
      models,
      planId,
      operator: getAddress(operator),
      provider: providerAccount,
      buyer,
      buyerKey,
      gatewaySigner,
      oracleSender,
      apiKey,
      calls,
      transactions,
      summary,
      amount,
      wallet,
      mined,
      fundGas,
      depositWithPermit,
      createApiKey,
      openai,
      settle,
      stopped,
      close,
    };
  } catch (error) {
    const failures = await shutDown();
    if (failures.length > 0) log(`  (while stopping after the failure: ${failures.join("; ")})`);
    throw error;
  }
}

/**
 * Compares what the chain settled with the gateway's store and with the receipts the buyer was handed:
 * the same counts, times, models, epochs and costs; every receipt's struct hash recomputed from its fields
 * and signed by the gateway key; each batch's content root rebuilt from the receipts it claims to cover.
 */
async function crossCheck(
  client: PublicClient,
  audit: SettlementAudit,
  store: Gateway["ctx"]["store"],
  calls: readonly CallOutcome[],
  gatewaySigner: Address,
  deployment: TollgateDeployment,
): Promise<string[]> {
  const problems: string[] = [];
  let covered = 0n;
  for (const batch of audit.batches) {
    const leaves: Hex[] = [];
    for (const record of batch.records) {
      const stored = store.recordBySequence(record.sequence);
      if (!stored) {
        problems.push(`record ${record.sequence} is settled on-chain but missing from the gateway's store`);
        continue;
      }
      const same =
        stored.buyer === record.buyer &&
        stored.modelId === record.modelId &&
        stored.priceEpoch === record.priceEpoch &&
        stored.inputTokens === record.inputTokens &&
        stored.cachedInputTokens === record.cachedInputTokens &&
        stored.outputTokens === record.outputTokens &&
        stored.servedAt === record.servedAt &&
        stored.cost === record.cost;
      if (!same) problems.push(`record ${record.sequence}: the chain settled ${JSON.stringify({ ...record, epoch: undefined, cost: record.cost.toString(), sequence: undefined })}, the store holds different counts, time, price epoch or cost`);
      if (hashReceipt(usageReceiptOf(stored)) !== stored.receiptHash) problems.push(`record ${record.sequence}: the stored receipt hash does not match the receipt's fields`);
      if (stored.settlement?.txHash.toLowerCase() !== batch.txHash.toLowerCase()) problems.push(`record ${record.sequence}: the store marks it settled by ${stored.settlement?.txHash ?? "nothing"}, the chain by ${batch.txHash}`);
      leaves.push(stored.receiptHash);
    }
    if (leaves.length === batch.records.length && merkleRoot(leaves) !== batch.contentRoot) {
      problems.push(`batch ${batch.firstSequence}: its content root is not the Merkle root of the receipts it settled`);
    }
    covered += batch.recordCount;
  }
  if (covered !== BigInt(store.recordCount())) problems.push(`the chain settled ${covered} records, the gateway's store holds ${store.recordCount()}`);
  const settledBySequence = new Map(audit.batches.flatMap((batch) => batch.records.map((record) => [record.sequence, record] as const)));
  for (const call of calls) {
    const receipt = usageReceiptFromEnvelope(call.receipt);
    const settled = settledBySequence.get(receipt.sequence);
    if (!settled) {
      problems.push(`receipt #${receipt.sequence} (${call.model}) was never settled`);
      continue;
    }
    if (settled.cost !== receipt.cost || settled.outputTokens !== receipt.outputTokens || settled.inputTokens !== receipt.inputTokens) {
      problems.push(`receipt #${receipt.sequence}: the buyer was told ${receipt.cost} for ${receipt.inputTokens}/${receipt.outputTokens} tokens, the chain charged ${settled.cost} for ${settled.inputTokens}/${settled.outputTokens}`);
    }
    if (receipt.inputTokens !== call.inputTokens || receipt.outputTokens !== call.outputTokens) {
      problems.push(`receipt #${receipt.sequence}: the response's usage (${call.inputTokens}/${call.outputTokens}) differs from its receipt (${receipt.inputTokens}/${receipt.outputTokens})`);
    }
    if (hashReceipt(receipt) !== call.receipt.receiptHash) problems.push(`receipt #${receipt.sequence}: its hash does not match its fields`);
    const signer = await recoverTypedDataAddress({
      domain: { ...call.receipt.domain, chainId: deployment.chainId, verifyingContract: deployment.tollgate },
      types: usageReceiptTypes,
      primaryType: "UsageReceipt",
      message: receipt,
      signature: call.receipt.signature,
    });
    if (signer !== gatewaySigner) problems.push(`receipt #${receipt.sequence}: signed by ${signer}, not the authorized gateway key ${gatewaySigner}`);
  }
  // The signer's next sequence on-chain closes the loop: nothing the store holds is left unsettled or settled twice.
  const onChain = await client.readContract({ address: deployment.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [gatewaySigner] });
  if (onChain.nextSequence !== covered) problems.push(`the chain expects sequence ${onChain.nextSequence} next, but its batches cover ${covered} records`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Printing

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
    `  audit           ${s.audit.records} charges in ${s.audit.batches} batch${s.audit.batches === 1 ? "" : "es"} rebuilt from settleBatch calldata + price epochs: ` +
      (s.audit.problems.length === 0 ? "every one matches its signed receipt and the BatchSettled totals" : `${s.audit.problems.length} PROBLEMS`),
    ...s.audit.problems.map((problem) => `    - ${problem}`),
    `  conservation    vault holds ${run.amount(s.conservation.held)} = balances ${run.amount(s.conservation.buyerBalances)} + pending withdrawals ${run.amount(s.conservation.pendingWithdrawals)} ` +
      `+ provider earnings ${run.amount(s.conservation.providerEarnings)} + protocol fees ${run.amount(s.conservation.protocolFees)}: ${s.conservation.conserved ? "conserved" : `NOT CONSERVED (owes ${run.amount(s.conservation.owed)})`}`,
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
    `  API key      ${run.apiKey.key}   (the buyer's, tags ${API_KEY_TAGS.join(", ")})`,
    `  models       ${run.models.map((model) => model.name).join(", ")}   (curl ${base}/models for prices)`,
    "",
    `  curl ${base}/chat/completions \\`,
    `    -H "Authorization: Bearer ${run.apiKey.key}" -H "Content-Type: application/json" \\`,
    `    -d '${body}'`,
    "",
    `  Python: OpenAI(base_url="${base}", api_key="${run.apiKey.key}")`,
    `  Node:   new OpenAI({ baseURL: "${base}", apiKey: "${run.apiKey.key}" })`,
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

// ---------------------------------------------------------------------------------------------
// Command line

interface CliOptions {
  serve: boolean;
  calls?: number;
  rpcPort?: number;
  gatewayPort?: number;
  dataDir?: string;
  logLevel?: LogLevel;
  help: boolean;
}

const USAGE = `Runs the Tollgate marketplace end to end on Hardhat's in-process network.

  npm run demo [-- options]
  npx hardhat run scripts/marketplace.ts        (options from the environment only)

Options (environment variable in brackets):
  --serve               keep everything running until Ctrl-C and print how to connect [TOLLGATE_SERVE=1]
  --calls <n>           metered calls the buyer makes, 1-1000 (default 12) [TOLLGATE_DEMO_CALLS]
  --rpc-port <port>     JSON-RPC port (default 8545; a port in use falls back to a free one) [TOLLGATE_RPC_PORT]
  --gateway-port <port> gateway port (default 8787; falls back likewise) [TOLLGATE_GATEWAY_PORT]
  --data-dir <dir>      config, usage store and oracle journal (default data/marketplace) [TOLLGATE_DATA_DIR]
  --help                this text
Gateway and oracle JSON logs: TOLLGATE_LOG_LEVEL (default warn).`;

function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  const problems: string[] = [];
  const whole = (name: string, raw: string | undefined, min: number, max: number): number | undefined => {
    if (raw === undefined || raw === "") return undefined;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
      return undefined;
    }
    return Number(raw);
  };
  const flag = (raw: string | undefined) => raw !== undefined && raw !== "" && raw !== "0" && raw.toLowerCase() !== "false";
  const values: Record<string, string | undefined> = {
    calls: env.TOLLGATE_DEMO_CALLS,
    "rpc-port": env.TOLLGATE_RPC_PORT,
    "gateway-port": env.TOLLGATE_GATEWAY_PORT,
    "data-dir": env.TOLLGATE_DATA_DIR,
  };
  let serve = flag(env.TOLLGATE_SERVE);
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.startsWith("--") ? arg.slice(2).split(/=(.*)/s, 2) : [undefined, undefined];
    if (name === "serve") serve = true;
    else if (name === "help" || arg === "-h") help = true;
    else if (name !== undefined && name in values) {
      const value = inline ?? argv[++i];
      if (value === undefined) problems.push(`--${name} needs a value`);
      values[name] = value;
    } else problems.push(`unknown option "${arg}"`);
  }
  const logLevel = env.TOLLGATE_LOG_LEVEL;
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) problems.push(`TOLLGATE_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  const options: CliOptions = {
    serve,
    help,
    calls: whole("--calls (TOLLGATE_DEMO_CALLS)", values.calls, 1, 1_000),
    rpcPort: whole("--rpc-port (TOLLGATE_RPC_PORT)", values["rpc-port"], 0, 65_535),
    gatewayPort: whole("--gateway-port (TOLLGATE_GATEWAY_PORT)", values["gateway-port"], 0, 65_535),
    dataDir: values["data-dir"] || undefined,
    logLevel: logLevel as LogLevel | undefined,
  };
  if (problems.length > 0) throw new MarketplaceSetupError(`${problems.join("\n")}\n\n${USAGE}`);
  return options;
}

async function main(): Promise<number> {
  const cli = parseCli(process.argv.slice(2), process.env);
  if (cli.help) {
    console.log(USAGE);
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
