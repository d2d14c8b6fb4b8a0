/**
 * Runs N gateway instances on one host, sharing one port (`tollgate operator start-gateway --instances N`):
 * TOLLGATE_GATEWAY_INSTANCES=N, the gateway's config file (TOLLGATE_CONFIG), and either TOLLGATE_GATEWAY_SIGNER_KEY
 * (a base key each instance's key is derived from) or TOLLGATE_GATEWAY_SIGNER_KEYS (one key per instance).
 *
 * Before starting any instance it refuses N > 1 without the config's `fleet` section, and any instance key the
 * chain does not let sign for the provider (naming the command that authorizes them). It prints each
 * instance's signer, then one JSON line `{"event":"listening","url":…,"instances":[…]}` once all listen.
 *
 *   TOLLGATE_GATEWAY_INSTANCES=3 TOLLGATE_GATEWAY_SIGNER_KEY=0x… node -r ts-node/register/transpile-only server/gateway-instances/main.ts
 */
import path from "node:path";
import { createPublicClient, http, type PublicClient } from "viem";
import { ConfigError, loadGatewayConfig } from "../config";
import { createLogger } from "../logging/logger";
import { exitOnStartFailure } from "../service-process";
import { runClusterPrimary } from "./cluster-primary";
import { KEY_LIST_ENV } from "./instance-keys";
import { INSTANCES_ENV, instanceCountFromEnv, planInstances } from "./instance-layout";
import { readSignerStandings, requireAuthorizedSigners, requireSharedStore } from "./launch-checks";

const GATEWAY_ENTRY = path.join(__dirname, "..", "gateway", "main.ts");
/** On top of the gateway's own drain limit: closing the store and the tokenizer after the last call. */
const STOP_SLACK_MS = 10_000;

const emit = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + "\n");

async function main(): Promise<void> {
  const env = process.env;
  const count = instanceCountFromEnv(env);
  if (count < 2) {
    throw new ConfigError(`${INSTANCES_ENV} is ${count}: one instance is the plain gateway (\`tollgate operator start-gateway\` without --instances, or server/gateway/main.ts)`);
  }
  // The config as an instance reads it (with a placeholder key: each instance's own key replaces it).
  const probeKey = `0x${"11".repeat(32)}`;
  const config = loadGatewayConfig({ ...env, TOLLGATE_GATEWAY_SIGNER_KEY: probeKey, [KEY_LIST_ENV]: undefined });
  requireSharedStore(count, config);
  const { instances, keySource } = planInstances({ env, count, storePath: config.store.path, instanceIdBase: config.fleet?.instanceId });
  // Instances are told their own key only: no process but this one holds the list or the base key.
  delete process.env[KEY_LIST_ENV];

  const logger = createLogger("tollgate-gateway", config.log.level).child({ role: "primary" });
  for (const instance of instances) {
    process.stdout.write(`instance ${instance.index}: signer ${instance.signer}, store ${instance.storePath}, id ${instance.instanceId}\n`);
  }
  emit({ event: "instances", keySource, instances: instances.map(({ index, signer, storePath, instanceId }) => ({ index, signer, storePath, instanceId })) });

  const client = createPublicClient({ transport: http(config.chain.rpcUrl, { retryCount: 1, timeout: 15_000 }) }) as PublicClient;
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch (error) {
    throw new Error(`cannot reach the chain at ${config.chain.rpcUrl} to check the instances' signers: ${(error as Error).message.split("\n")[0]}. Is the node running?`);
  }
  if (chainId !== config.chain.deployment.chainId) {
    throw new ConfigError(`the RPC at ${config.chain.rpcUrl} is chain ${chainId}, but the deployment file is for chain ${config.chain.deployment.chainId}: point chain.rpcUrl at the right chain`);
  }
  const standings = await readSignerStandings(client, config.chain.deployment.tollgate, instances);
  requireAuthorizedSigners(standings, config.providerId, count);

  const host = config.listen.host;
  const code = await runClusterPrimary({
    instances,
    workerScript: GATEWAY_ENTRY,
    logger,
    stopTimeoutMs: config.shutdownTimeoutMs + STOP_SLACK_MS,
    emit,
    onAllListening: ({ port }, pids) => {
      const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
      emit({ event: "listening", url, pid: process.pid, instances: instances.map(({ index, signer, instanceId }) => ({ index, signer, instanceId, pid: pids.get(index) })) });
    },
  });
  process.exit(code);
}

main().catch((error: unknown) => exitOnStartFailure("gateway instances", error));
