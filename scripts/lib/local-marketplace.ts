/**
 * The pieces of a marketplace on this machine, for the demo (scripts/marketplace.ts) and the end-to-end
 * test: Hardhat's in-process chain served over JSON-RPC (or, through the same `MarketplaceChain` interface, a
 * chain reached by URL: scripts/lib/external-chain.ts), a Tollgate deployment, and the services a provider
 * runs (the simulated model server, the gateway and the oracle). What buyers and providers do on it is not
 * here: that is `client/`'s actions, which the callers compose.
 */
import fs from "node:fs";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { createPublicClient, createWalletClient, custom, defineChain, getAddress, type Address, type Chain, type Hex, type PublicClient, type TransactionReceipt, type Transport } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createTollgateClient, type TollgateClient, type TransactionProgress } from "../../client";
import { writeDeploymentFile } from "../../server/chain/deployment";
import { parseGatewayConfig, readJsonFile, type GatewayConfig } from "../../server/config";
import { createGateway, type Gateway } from "../../server/gateway/gateway";
import { parseOracleConfig, type OracleConfig } from "../../server/oracle/config";
import { createOracle, type Oracle } from "../../server/oracle/oracle";
import { createOpenAICompatibleUpstream } from "../../server/upstream/openai-compatible";
import { startSimulatedUpstream, type SimulatedUpstream, type SimulatedUpstreamOptions } from "../../server/upstream/simulated-upstream";
import type { UpstreamAdapter } from "../../server/upstream/types";
import { deployTollgate, type TollgateDeployment, type TollgateDeployParameters } from "./deploy-tollgate";
import { devChain, type DevChain } from "./dev-chain";
import { PortInUseError, startRpcServer, type RpcServer } from "./rpc-server";

export const HOST = "127.0.0.1";
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The run cannot start as asked (wrong network, bad option). */
export class MarketplaceSetupError extends Error {
  override name = "MarketplaceSetupError";
}

/** A path as a person would type it from here: relative inside the working directory, absolute outside it. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === "" ? "." : relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}

/** Listens on `port`; if another process holds it, on a free port instead, and says so. */
export async function listenOrFallback<T>(what: string, port: number, listen: (port: number) => Promise<T>, log: (line: string) => void): Promise<T> {
  try {
    return await listen(port);
  } catch (error) {
    const inUse = error instanceof PortInUseError || (error as NodeJS.ErrnoException)?.code === "EADDRINUSE";
    if (port === 0 || !inUse) throw error;
    log(`  ${what}: port ${port} on ${HOST} is in use by another process, so a free port is used instead (shown below)`);
    return listen(0);
  }
}

/** Things started so far, stopped in reverse order; a failure to stop one does not stop the others. */
export class Closers {
  private readonly list: { name: string; close: () => Promise<void> }[] = [];
  add(name: string, close: () => Promise<void>, first = false): void {
    if (first) this.list.unshift({ name, close });
    else this.list.push({ name, close });
  }
  async closeAll(): Promise<string[]> {
    const failures: string[] = [];
    for (const { name, close } of this.list.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message}`);
      }
    }
    return failures;
  }
}

export interface RecordedTransaction {
  label: string;
  hash: Hex;
}

/**
 * The chain a marketplace runs on, as everything here uses it: Hardhat's in-process network (`startLocalChain`)
 * or any chain reached by JSON-RPC URL (`connectExternalChain`, scripts/lib/external-chain.ts).
 */
export interface MarketplaceChain {
  chain: Chain;
  /** Reads the chain (in-process: directly; external: over HTTP). */
  client: PublicClient;
  /** Where everything outside this process reaches the chain. */
  rpcUrl: string;
  /** How this process's wallet clients send to the chain. */
  transport: Transport;
  /** Polling interval of clients on this chain (fast on a development node). */
  pollingInterval: number;
  /** What the chain is, for the log: "Hardhat's in-process network, served over JSON-RPC at …". */
  description: string;
  /** The deployer: owner and treasury (in-process: Hardhat's first account). */
  operator: Address;
  /** Every transaction sent through a client of `as`, in order, with what it did. */
  transactions: RecordedTransaction[];
  /** Gives `address` gas money. */
  fundGas(address: Address): Promise<void>;
  /** Waits for a transaction sent some other way, throws if it reverted, and lists it under `label`. */
  mined(hash: Hex, label: string): Promise<TransactionReceipt>;
  /** The development node's controls (clock, balances, mining), or undefined on a real chain. */
  devChain: DevChain | undefined;
}

export interface LocalChain extends MarketplaceChain {
  hre: HardhatRuntimeEnvironment;
  rpc: RpcServer;
  devChain: DevChain;
}

/**
 * Hardhat's in-process network as one chain for this process and everything outside it: served over JSON-RPC,
 * its clock brought level with the wall clock. It must be the in-process network (`hardhat`), not a node.
 */
export async function startLocalChain(hre: HardhatRuntimeEnvironment, options: { rpcPort?: number; log: (line: string) => void; closers: Closers }): Promise<LocalChain> {
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
  const rpc = await listenOrFallback("JSON-RPC", options.rpcPort ?? 8545, (port) => startRpcServer(provider, { hostname: HOST, port }), options.log);
  options.closers.add("JSON-RPC server", () => rpc.close());
  const chain = defineChain({
    id: chainId,
    name: "Hardhat (in-process, Tollgate marketplace)",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpc.url] } },
  });
  const [operator] = (await provider.request({ method: "eth_accounts" })) as Address[];
  const transactions: RecordedTransaction[] = [];
  const devChainControls = devChain("hardhat", (args) => provider.request(args));
  return {
    hre,
    chain,
    client,
    rpc,
    rpcUrl: rpc.url,
    transport: custom(provider),
    pollingInterval: 50,
    description: `Hardhat's in-process network, served over JSON-RPC at ${rpc.url}`,
    operator: getAddress(operator),
    transactions,
    devChain: devChainControls,
    fundGas: (address) => devChainControls.setBalance(address, 10n ** 20n),
    mined: async (hash, label) => {
      const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
      if (receipt.status !== "success") throw new Error(`${label}: transaction ${hash} reverted`);
      transactions.push({ label, hash });
      return receipt;
    },
  };
}

/** Tollgate deployed the one way it is deployed everywhere (Ignition), described in `deploymentFile` for the CLI and wallets. */
export async function deployLocal(local: LocalChain, deploymentFile: string, parameters: TollgateDeployParameters = {}): Promise<{ deployment: TollgateDeployment; lines: string[] }> {
  const lines: string[] = [];
  const deployment = await deployTollgate(local.hre, { treasury: local.operator, owner: local.operator, ...parameters }, { log: (line) => lines.push(line) });
  // The file names the chain as the CLI and wallets reach it: over JSON-RPC on localhost.
  writeDeploymentFile(deploymentFile, { ...deployment, network: "localhost" });
  return { deployment, lines };
}

/**
 * A Tollgate client for `privateKey`'s account on the local chain. Each transaction it sends is listed in
 * `local.transactions` under `labels(description)` once confirmed.
 */
export function localTollgateClient(local: MarketplaceChain, base: TollgateClient, privateKey: Hex, label: (description: string) => string): TollgateClient {
  const account = privateKeyToAccount(privateKey);
  const wallet = createWalletClient({ account, chain: local.chain, transport: local.transport, pollingInterval: local.pollingInterval });
  const onTransaction = (progress: TransactionProgress) => {
    if (progress.stage === "confirmed") local.transactions.push({ label: label(progress.description), hash: progress.hash });
  };
  return { ...base, wallet, onTransaction, pollingInterval: local.pollingInterval };
}

/** The read-only client of a deployment on the local chain; `localTollgateClient` adds a wallet. */
export function readOnlyClient(local: MarketplaceChain, deployment: TollgateDeployment, gatewayUrl?: string): Promise<TollgateClient> {
  return createTollgateClient({ publicClient: local.client, deployment, pollingInterval: local.pollingInterval, gateway: gatewayUrl ? { url: gatewayUrl } : undefined });
}

export interface ServedModel {
  name: string;
  modelId: number;
  upstreamModel: string;
  maxOutputTokens: number;
}

export interface ProviderServicesOptions {
  local: MarketplaceChain;
  deploymentFile: string;
  providerId: number;
  models: readonly ServedModel[];
  gatewayKey: Hex;
  oracleKey: Hex;
  /** Where the gateway's config, usage store and oracle journal go; an earlier run's files are replaced (that chain is gone). */
  dataDir: string;
  gatewayPort?: number;
  /** How old the oldest record may get before the oracle settles a batch. */
  batchMaxAgeMs: number;
  logLevel: LogLevel;
  upstream?: SimulatedUpstreamOptions;
  /** Wraps the upstream adapter the gateway calls: tests put failure injection in front of it. */
  wrapUpstream?: (adapter: UpstreamAdapter) => UpstreamAdapter;
  /** The web app's build the gateway serves at /app (default: the repository's app/dist). */
  appDir?: string;
  log: (line: string) => void;
  closers: Closers;
}

export interface ProviderServices {
  upstream: SimulatedUpstream;
  gateway: Gateway;
  gatewayConfig: GatewayConfig;
  gatewayUrl: string;
  oracle: Oracle;
  oracleConfig: OracleConfig;
  oracleUrl: string;
  configFile: string;
  storePath: string;
  /** Waits until the usage store has no unsettled record. */
  settle(timeoutMs?: number): Promise<void>;
}

/** The simulated model server, the gateway over it and the oracle settling the gateway's store, from one config file. */
export async function startProviderServices(options: ProviderServicesOptions): Promise<ProviderServices> {
  const { dataDir, closers, log } = options;
  const configFile = path.join(dataDir, "tollgate.config.json");
  const storePath = path.join(dataDir, "usage.sqlite");
  const journalPath = path.join(dataDir, "oracle-journal.json");
  fs.mkdirSync(dataDir, { recursive: true });
  for (const file of [configFile, storePath, `${storePath}-wal`, `${storePath}-shm`, journalPath]) fs.rmSync(file, { force: true });
  const upstream = await startSimulatedUpstream({ host: HOST, ...options.upstream });
  closers.add("simulated upstream", () => upstream.close());
  const configObject = {
    listen: { host: HOST, port: options.gatewayPort ?? 8787 },
    chain: { rpcUrl: options.local.rpcUrl, deploymentFile: path.relative(dataDir, options.deploymentFile), accountCacheMs: 1_000, registryRefreshMs: 2_000 },
    providerId: options.providerId,
    store: { path: path.basename(storePath) },
    upstreams: { simulated: { baseUrl: upstream.url, timeoutMs: 30_000 } },
    models: options.models.map(({ name, modelId, upstreamModel, maxOutputTokens }) => ({ name, modelId, upstream: "simulated", upstreamModel, maxOutputTokens })),
    log: { level: options.logLevel },
    ...(options.appDir ? { app: { dir: options.appDir } } : {}),
    oracle: {
      listen: { host: HOST, port: 0 },
      batch: { maxRecords: 200, maxAgeMs: options.batchMaxAgeMs },
      pollMs: 250,
      retry: { initialMs: 250, maxMs: 2_000 },
      journalPath: path.basename(journalPath),
    },
  };
  const writeConfig = () => fs.writeFileSync(configFile, JSON.stringify(configObject, null, 2) + "\n");
  writeConfig();
  // Keys only ever travel through the environment the parsers are given, never through the file.
  const gatewayConfig = parseGatewayConfig(readJsonFile(configFile, "config file"), { TOLLGATE_GATEWAY_SIGNER_KEY: options.gatewayKey }, dataDir, configFile);
  const adapter = createOpenAICompatibleUpstream({ name: "simulated", baseUrl: upstream.url, timeoutMs: gatewayConfig.upstreams.simulated.timeoutMs });
  const client = options.local.client;
  const gateway = await createGateway({ config: gatewayConfig, client, upstreams: { simulated: options.wrapUpstream ? options.wrapUpstream(adapter) : adapter } });
  closers.add("gateway", () => gateway.close());
  const gatewayUrl = await listenOrFallback("gateway", gatewayConfig.listen.port, (port) => gateway.listen(port, HOST), log);
  const gatewayPort = Number(new URL(gatewayUrl).port);
  if (gatewayPort !== configObject.listen.port) {
    configObject.listen.port = gatewayPort;
    writeConfig();
  }
  const oracleConfig = parseOracleConfig(readJsonFile(configFile, "config file"), { TOLLGATE_ORACLE_KEY: options.oracleKey, TOLLGATE_GATEWAY_SIGNER_KEY: options.gatewayKey }, dataDir, configFile);
  const oracle = await createOracle({ config: oracleConfig, client });
  closers.add("oracle", () => oracle.close());
  await oracle.start();
  const oracleUrl = await oracle.listen(0, HOST);
  const store = gateway.ctx.store;
  const settle = async (timeoutMs = 60_000) => {
    const started = Date.now();
    const forceAt = started + options.batchMaxAgeMs + 3 * oracleConfig.pollMs + 2_000;
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
  return { upstream, gateway, gatewayConfig, gatewayUrl, oracle, oracleConfig, oracleUrl, configFile, storePath, settle };
}

/** Serve mode: report each batch the oracle settles after `lastSettled`, and shut down cleanly on Ctrl-C. */
export function serveUntilSignal(oracle: Oracle, lastSettled: Hex | undefined, transactions: RecordedTransaction[], log: (line: string) => void, close: () => Promise<void>, closers: Closers): void {
  let lastReported = lastSettled;
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
  closers.add(
    "serve mode",
    async () => {
      clearInterval(watcher);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
    true,
  );
}
