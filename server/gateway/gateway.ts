/**
 * Builds a running gateway from its configuration: chain client, usage store, cached chain state,
 * tokenizer, upstreams, receipt signer, then the express app. `close()` is the graceful shutdown:
 * refuse new calls, let in-flight ones finish and write their records, then close the store.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createPublicClient, http as httpTransport, type PublicClient } from "viem";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config";
import { UsageStore } from "../store/usage-store";
import { WalCheckpointer } from "../store/wal-checkpointer";
import { createOpenAICompatibleUpstream } from "../upstream/openai-compatible";
import type { UpstreamAdapter } from "../upstream/types";
import { createGatewayHttp, type createApp } from "./app";
import { BudgetWebhooks } from "./budgets/budget-webhooks";
import { createLogger } from "../logging/logger";
import { MarketplaceReader } from "../chain/marketplace-reader";
import { MarketplaceState } from "./marketplace-state";
import { ApiKeyCache } from "./middleware/authenticate";
import { GroupCommit } from "./metering/group-commit";
import { Meter } from "./metering/meter";
import { ReceiptSigner } from "./metering/receipt-signer";
import { SpendLedger } from "./metering/spend-ledger";
import { Tokenizer } from "./metering/tokenizer";
import { GatewayMetrics } from "./metrics";
import type { GatewayContext } from "./context";
import { TOLLGATE_DOMAIN_NAME, TOLLGATE_DOMAIN_VERSION } from "../chain/eip712";
import { createFleetLedger } from "./fleet/create-fleet-ledger";
import type { FleetLedger } from "./fleet/fleet-ledger";
import { FleetDefinitions } from "./fleet/fleet-definitions";
import { FleetSessions } from "./fleet/fleet-sessions";

export interface GatewayOptions {
  config: GatewayConfig;
  /** Defaults to an HTTP client for `config.chain.rpcUrl`; tests pass one over Hardhat's in-process provider. */
  client?: PublicClient;
  /** Adapters by upstream name; any configured upstream not given here gets an OpenAI-compatible adapter from `config.upstreams`. */
  upstreams?: Record<string, UpstreamAdapter>;
  logger?: Logger;
  defaultMetrics?: boolean;
  /**
   * Crash points for fault tests (`TOLLGATE_FAILPOINTS` in main.ts). `gateway.after-commit:N`: SIGKILL this
   * process right after the group commit that brings its written records to N or more, before any answer of
   * that group is sent.
   */
  failpoints?: readonly string[];
}

export interface Gateway {
  app: ReturnType<typeof createApp>;
  ctx: GatewayContext;
  /** Starts serving; resolves with the base URL (`http://host:port`). */
  listen(port?: number, host?: string): Promise<string>;
  /** Graceful shutdown; safe to call twice. */
  close(): Promise<void>;
}

const REBUILD_PAGE = 10_000;

/** `gateway.after-commit:N` → a hook that kills the process, as a power cut or OOM kill would: no cleanup. */
function afterCommitFailpoint(failpoints: readonly string[]): ((committed: number) => void) | undefined {
  const spec = failpoints.find((name) => name.startsWith("gateway.after-commit"));
  if (!spec) return undefined;
  const threshold = Number(spec.split(":")[1] ?? 1);
  if (!Number.isSafeInteger(threshold) || threshold < 1) throw new Error(`failpoint ${spec}: write gateway.after-commit:N with N ≥ 1`);
  return (committed) => {
    if (committed < threshold) return;
    process.stderr.write(`tollgate gateway: failpoint ${spec} reached after ${committed} records; killing myself before answering\n`);
    process.kill(process.pid, "SIGKILL");
  };
}

export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const { config } = options;
  const logger = options.logger ?? createLogger("tollgate-gateway", config.log.level);
  const { chainId, tollgate } = config.chain.deployment;
  const client = options.client ?? (createPublicClient({ transport: httpTransport(config.chain.rpcUrl, { retryCount: 3, timeout: 10_000 }) }) as PublicClient);
  const actualChainId = await client.getChainId();
  if (actualChainId !== chainId) {
    throw new Error(`the RPC at ${config.chain.rpcUrl} is chain ${actualChainId}, but the deployment file is for chain ${chainId}: point chain.rpcUrl at the right chain`);
  }

  const signer = new ReceiptSigner(config.signerKey, chainId, tollgate);
  const reader = new MarketplaceReader(client, tollgate);
  const signerOnChain = await reader.signerStatus(signer.address);
  const store = UsageStore.open({
    path: config.store.path,
    signer: signer.address,
    firstSequence: signerOnChain.nextSequence,
    durability: config.store.durability,
    chain: { chainId, contract: tollgate },
    // Checkpoints run on a worker thread (below), never inside a call's COMMIT.
    autoCheckpoint: false,
  });

  const ledger = new SpendLedger();
  // Usage this gateway served that the chain has not settled yet still counts against each buyer.
  for (let from = signerOnChain.nextSequence; ; ) {
    const page = store.unsettledRecords(from, REBUILD_PAGE);
    for (const record of page) if (record.sequence >= signerOnChain.nextSequence) ledger.addRebuilt(record.buyer, record.sequence, record.cost, record.modelId, record.servedAt);
    if (page.length < REBUILD_PAGE) break;
    from = page[page.length - 1].sequence + 1n;
  }

  const metrics = new GatewayMetrics({ defaultMetrics: options.defaultMetrics });
  // Fleet mode: reservations and unsettled usage shared with the provider's other instances (fleet/fleet-ledger.ts).
  const fleet: FleetLedger | undefined = config.fleet && createFleetLedger({ config, fleet: config.fleet, signer: signer.address, store, logger, registry: metrics.registry, chainNextSequence: (): bigint => state.signerStatus().nextSequence });
  const checkpointer = new WalCheckpointer({
    path: config.store.path,
    durability: config.store.durability,
    intervalMs: config.store.checkpointIntervalMs,
    onCheckpoint: ({ seconds }) => metrics.storeCheckpoint.observe(seconds),
    onError: (message) => logger.warn({ error: message }, "checkpointing the usage store's WAL failed; retrying"),
  });
  const records = new GroupCommit(store, {
    onCommit: (count, seconds) => metrics.observeCommit(count, seconds),
    afterCommit: afterCommitFailpoint(options.failpoints ?? []),
  });
  const state = new MarketplaceState({
    client,
    tollgate,
    providerId: config.providerId,
    signer: signer.address,
    models: config.models,
    accountCacheMs: config.chain.accountCacheMs,
    keepWarmMs: config.chain.keepWarmMs,
    registryRefreshMs: config.chain.registryRefreshMs,
    ledger,
    logger,
    fleetSigners: fleet ? () => fleet.signers() : undefined,
  });
  try {
    await state.start();
    // Rebuilt records are tagged with their subscription period by model: read from the chain just now.
    ledger.localIndexOf = (modelId) => state.models().find((model) => model.terms.modelId === modelId)?.terms.localIndex;
  } catch (error) {
    await checkpointer.stop();
    store.close();
    throw error;
  }
  fleet?.start();
  if (!state.canSettle()) {
    logger.warn({ signer: signer.address, providerId: config.providerId }, "the gateway key is not authorized by the provider: metered calls get 503 until it is");
  }

  // An adapter given in `options.upstreams` replaces the one its name would get; the others are built from the config.
  const upstreams: Record<string, UpstreamAdapter> = {
    ...Object.fromEntries(
      Object.entries(config.upstreams)
        .filter(([name]) => !options.upstreams?.[name])
        .map(([name, upstream]) => [
          name,
          createOpenAICompatibleUpstream({ name, baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, timeoutMs: upstream.timeoutMs, connections: upstream.connections }),
        ]),
    ),
    ...options.upstreams,
  };
  const tokenizer = new Tokenizer({ workers: config.tokenizer.workers, inlineLimitChars: config.tokenizer.inlineLimitChars });
  const keys = new ApiKeyCache(store);
  // Fleet mode: keys, budgets and sessions made on any instance count on this one (fleet/fleet-definitions.ts).
  const fleetDefinitions = fleet && new FleetDefinitions({ fleet, store, keys, logger, now: () => state.now() });
  if (fleetDefinitions) keys.adopt = (keyHash) => fleetDefinitions.lookupKey(keyHash);
  const receiptDomain = { name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, chainId, verifyingContract: tollgate };
  const ctx: GatewayContext = {
    chainId,
    tollgate,
    client,
    state,
    ledger,
    store,
    meter: new Meter({ state, ledger, records, signer, metrics, domain: receiptDomain, retainContent: config.store.retainContent, budgets: store, fleet, fleetDefinitions }),
    tokenizer,
    keys,
    metrics,
    logger,
    receiptDomain,
    signatureMaxAgeSeconds: config.limits.signatureMaxAgeSeconds,
    sessionLifetimeSeconds: config.limits.sessionLifetimeSeconds,
    upstreamFor: (model) => upstreams[model.config.upstream],
    routing: config.routing,
    fleet,
    fleetDefinitions,
    fleetSessions: fleet && new FleetSessions({ fleet, store }),
    webhookAllowPrivateNetworks: config.budgets.webhookAllowPrivateNetworks,
  };

  const webhooks = new BudgetWebhooks({
    store,
    logger,
    pollMs: config.budgets.webhookPollMs,
    retryBaseMs: config.budgets.webhookRetryBaseMs,
    maxRetryDelayMs: config.budgets.webhookMaxRetryDelayMs,
    maxAttempts: config.budgets.webhookMaxAttempts,
    timeoutMs: config.budgets.webhookTimeoutMs,
    allowPrivateNetworks: config.budgets.webhookAllowPrivateNetworks,
  });
  webhooks.start();

  let draining = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const { app, listener } = createGatewayHttp(ctx, {
    maxBodyBytes: config.limits.maxBodyBytes,
    requestsPerMinute: config.limits.requestsPerMinute,
    isDraining: () => draining,
    app: { ...config.app, network: config.chain.deployment.network, deployBlock: config.chain.deployment.deployBlock },
  });
  const server = http.createServer((req, res) => {
    inFlight++;
    res.on("close", () => {
      if (--inFlight === 0) idle?.();
    });
    listener(req, res);
  });
  server.keepAliveTimeout = 65_000;
  let closing: Promise<void> | undefined;

  return {
    app,
    ctx,
    listen(port = config.listen.port, host = config.listen.host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          logger.info({ host, port: address.port, signer: signer.address, nextSequence: store.nextSequence().toString() }, "gateway listening");
          resolve(`http://${host.includes(":") ? `[${host}]` : host}:${address.port}`);
        });
      });
    },
    close() {
      closing ??= (async () => {
        draining = true;
        server.close();
        server.closeIdleConnections();
        if (inFlight > 0) {
          logger.info({ inFlight }, "draining in-flight calls");
          await new Promise<void>((resolve) => {
            idle = resolve;
            setTimeout(resolve, config.shutdownTimeoutMs).unref();
          });
        }
        server.closeAllConnections();
        state.stop();
        await Promise.all(Object.values(upstreams).map((upstream) => upstream.close()));
        await tokenizer.close();
        await records.drained();
        await webhooks.stop();
        await checkpointer.stop();
        await fleet?.close();
        store.close();
        logger.info({ nextSequence: store.nextSequence().toString() }, "gateway stopped; usage store closed");
      })();
      return closing;
    },
  };
}
