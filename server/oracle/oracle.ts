/**
 * The settlement oracle: one `SettlementStream` per gateway signer, one gas key (`TxSender`) for all of
 * them, and a loop that looks at each stream every `pollMs`. A stream whose batch the chain refuses, or
 * whose reads fail, backs off on its own; the others keep settling.
 *
 * `/health` reports each stream (pending records, the chain's sequence, last batch, last error) and
 * `/metrics` the Prometheus metrics.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createPublicClient, http as httpTransport, type Address, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { Logger } from "pino";
import { createLogger } from "../logging/logger";
import { MarketplaceReader } from "../chain/marketplace-reader";
import { UsageStore } from "../store/usage-store";
import { WithdrawalWatch } from "./chain-logs";
import { isChainUnreachable } from "../chain/revert";
import { describeRpcError } from "./chain-errors";
import type { OracleConfig } from "./config";
import { OracleMetrics } from "./metrics";
import { SettlementStream, type StreamHealth, type TickResult } from "./settlement-stream";
import { TxJournal } from "./tx-journal";
import { SenderStoppedError, TxSender } from "./tx-sender";

export interface OracleOptions {
  config: OracleConfig;
  /** Read and send through this client (tests: Hardhat's in-process provider). Default: HTTP to `config.rpcUrl`. */
  client?: PublicClient;
  logger?: Logger;
  defaultMetrics?: boolean;
}

export interface OracleHealth {
  /** ok: every stream healthy; degraded: some stream blocked or failing; down: the chain cannot be read. */
  status: "ok" | "degraded" | "down";
  sender: Address;
  chainId: number;
  tollgate: Address;
  streams: StreamHealth[];
}

export interface Oracle {
  readonly streams: SettlementStream[];
  readonly metrics: OracleMetrics;
  readonly sender: TxSender;
  /** Starts the loop (after finishing any transaction a previous run left in flight). */
  start(): Promise<void>;
  /** One pass over every stream; `force` settles whatever waits regardless of batch size and age. */
  runOnce(options?: { force?: boolean }): Promise<TickResult[]>;
  /** Forces passes until no stream has records waiting (or `timeoutMs` passes). */
  settleAll(timeoutMs?: number): Promise<void>;
  health(): OracleHealth;
  /** Serves /health and /metrics; resolves with the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops after the current pass; a transaction in flight stays journaled for the next run. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function createOracle(options: OracleOptions): Promise<Oracle> {
  const { config } = options;
  const logger = options.logger ?? createLogger("tollgate-oracle", config.logLevel);
  const { chainId, tollgate } = config.deployment;
  const client =
    options.client ?? (createPublicClient({ transport: httpTransport(config.rpcUrl, { retryCount: 0, timeout: 15_000 }) }) as PublicClient);
  const actualChainId = await client.getChainId();
  if (actualChainId !== chainId) {
    throw new Error(`the RPC at ${config.rpcUrl} is chain ${actualChainId}, but the deployment file is for chain ${chainId}: point the oracle at the right chain`);
  }
  const metrics = new OracleMetrics({ defaultMetrics: options.defaultMetrics });
  let stopping = false;
  const failpoint = (name: string) => {
    if (!config.failpoints.includes(name)) return;
    // A fault test asked for a crash exactly here: no cleanup, no flush, as a power cut or OOM kill would.
    process.stderr.write(`tollgate oracle: failpoint ${name} reached; killing myself\n`);
    process.kill(process.pid, "SIGKILL");
  };
  const sender = new TxSender({
    client,
    account: privateKeyToAccount(config.senderKey),
    chainId,
    journal: new TxJournal(config.journalPath),
    settings: config,
    logger,
    metrics,
    failpoint,
    stopping: () => stopping,
  });
  const deployBlock = BigInt(config.deployment.deployBlock ?? 0);
  const withdrawals = new WithdrawalWatch(client, tollgate, deployBlock, config.logBlockRange);
  const reader = new MarketplaceReader(client, tollgate);

  const streams: SettlementStream[] = [];
  const stores: UsageStore[] = [];
  for (const stream of config.streams) {
    const signer = privateKeyToAccount(stream.signerKey);
    const status = await reader.signerStatus(signer.address);
    const store = UsageStore.open({ path: stream.storePath, signer: signer.address, firstSequence: status.nextSequence, chain: { chainId, contract: tollgate } });
    stores.push(store);
    streams.push(
      new SettlementStream({
        client,
        chainId,
        tollgate,
        deployBlock,
        store,
        storePath: stream.storePath,
        signer,
        sender,
        withdrawals,
        settings: config,
        logger,
        metrics,
        failpoint,
      }),
    );
  }
  if (new Set(streams.map((s) => s.signer)).size !== streams.length) throw new Error("two oracle streams name the same gateway signer");

  const streamBackoff = new Map<SettlementStream, { failures: number; until: number }>();
  let rpcDown = false;

  const runStream = async (stream: SettlementStream, force: boolean): Promise<TickResult> => {
    const backoff = streamBackoff.get(stream);
    if (!force && backoff && Date.now() < backoff.until) return { kind: "retry", reason: "backing off after an error" };
    try {
      const result = await stream.tick({ force });
      streamBackoff.delete(stream);
      // A pass that settled has reached the chain: the outage the withdrawals read met is over.
      rpcDown = false;
      return result;
    } catch (error) {
      if (error instanceof SenderStoppedError) return { kind: "retry", reason: error.message };
      const failures = (backoff?.failures ?? 0) + 1;
      const waitMs = Math.min(config.retry.maxMs, config.retry.initialMs * 2 ** Math.min(failures - 1, 16));
      streamBackoff.set(stream, { failures, until: Date.now() + waitMs });
      const message = describeRpcError(error);
      const rpc = isChainUnreachable(error);
      if (rpc) metrics.rpcErrors.inc();
      stream.health.state = rpc ? "rpc_unavailable" : "error";
      stream.health.lastError = { message, at: Date.now() };
      logger.warn({ signer: stream.signer, error: message, failures, retryInMs: waitMs }, rpc ? "chain unreachable; retrying" : "settlement pass failed; retrying");
      return { kind: "retry", reason: message };
    }
  };

  // Passes never overlap (the loop and a caller's settleAll): two could build the same batch twice.
  let passes: Promise<unknown> = Promise.resolve();
  const runOnce = (options: { force?: boolean } = {}): Promise<TickResult[]> => {
    const pass = passes.then(() => runPass(options));
    passes = pass.catch(() => undefined);
    return pass;
  };

  const runPass = async ({ force = false }: { force?: boolean }): Promise<TickResult[]> => {
    try {
      await withdrawals.refresh();
      rpcDown = false;
    } catch (error) {
      rpcDown = isChainUnreachable(error);
      metrics.rpcErrors.inc();
      logger.warn({ error: describeRpcError(error) }, "cannot read withdrawals; settling by size and age only this pass");
    }
    const results: TickResult[] = [];
    // One stream after another: they share the gas key, whose transactions go one at a time anyway.
    for (const stream of streams) results.push(await runStream(stream, force));
    return results;
  };

  let starting: Promise<unknown> | undefined;
  let loop: Promise<void> | undefined;
  let server: http.Server | undefined;

  const oracle: Oracle = {
    streams,
    metrics,
    sender,
    async start() {
      const recovering = sender.recover();
      starting = recovering;
      let recovered: Awaited<typeof recovering>;
      try {
        recovered = await recovering;
      } catch (error) {
        if (error instanceof SenderStoppedError) return;
        throw error;
      }
      if (recovered) logger.info({ txHash: recovered.transactionHash, status: recovered.status }, "finished the transaction a previous run left in flight");
      if (stopping) return;
      loop = (async () => {
        while (!stopping) {
          await runOnce();
          if (!stopping) await sleep(config.pollMs);
        }
      })();
      logger.info({ sender: sender.address, streams: streams.map((s) => s.signer), batch: config.batch }, "oracle started");
    },
    runOnce,
    async settleAll(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await runOnce({ force: true });
        if (streams.every((stream) => stream.pending() === 0)) return;
        if (Date.now() > deadline) {
          const left = streams.map((s) => `${s.signer}: ${s.pending()} pending (${s.health.lastError?.message ?? s.health.state})`).join("; ");
          throw new Error(`settlement did not finish within ${timeoutMs} ms: ${left}`);
        }
        await sleep(Math.min(config.pollMs, 200));
      }
    },
    health() {
      const streamHealth = streams.map((stream) => ({ ...stream.health }));
      const failing = streamHealth.filter((s) => s.state === "blocked" || s.state === "rpc_unavailable" || s.state === "error");
      const unreachable = rpcDown || streamHealth.every((s) => s.state === "rpc_unavailable");
      const status = unreachable ? "down" : failing.length > 0 ? "degraded" : "ok";
      return { status, sender: sender.address, chainId, tollgate, streams: streamHealth };
    },
    async listen(port = config.listen.port, host = config.listen.host) {
      server = http.createServer((req, res) => {
        if (req.url === "/health") {
          const body = oracle.health();
          res.writeHead(body.status === "down" ? 503 : 200, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        } else if (req.url === "/metrics") {
          metrics.registry.metrics().then((text) => {
            res.writeHead(200, { "content-type": metrics.registry.contentType });
            res.end(text);
          });
        } else {
          res.writeHead(404, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: "not found: the oracle serves /health and /metrics" }));
        }
      });
      await new Promise<void>((resolve, reject) => {
        server!.once("error", reject);
        server!.listen(port, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      return `http://${host}:${address.port}`;
    },
    async close() {
      stopping = true;
      await starting?.catch(() => undefined);
      await loop;
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
      }
      for (const store of stores) store.close();
    },
  };
  return oracle;
}
