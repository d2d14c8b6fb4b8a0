/**
 * The oracle's configuration: the `oracle` section of the same config file the gateway reads, plus the
 * chain and store settings they share, plus the environment. Keys come from the environment only: the
 * oracle's own key pays gas, each gateway key it settles for only signs batches.
 */
import path from "node:path";
import { z } from "zod";
import { isHex, type Hex } from "viem";
import { ConfigError, describeIssues, readJsonFile } from "../config";
import { deploymentSchema, type Deployment } from "../chain/deployment-schema";
import { INSTANCES_ENV, instanceCountFromEnv, planInstances } from "../gateway-instances/instance-layout";

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const streamSchema = z.object({
  /** The usage store the gateway instance writes. */
  storePath: z.string().min(1),
  /** Environment variable holding that gateway's signer key. */
  signerKeyEnv: z.string().regex(ENV_NAME, "an environment variable name, e.g. TOLLGATE_GATEWAY_B_SIGNER_KEY"),
});

const oracleSchema = z
  .object({
    listen: z
      .object({ host: z.string().default("127.0.0.1"), port: z.number().int().min(0).max(65535).default(8788) })
      .prefault({}),
    batch: z
      .object({
        /** A batch is sent as soon as this many records wait... */
        maxRecords: z.number().int().min(1).max(10_000).default(500),
        /** ...or when the oldest waiting record was served this long ago. */
        maxAgeMs: z.number().int().min(0).default(10_000),
      })
      .prefault({}),
    /** How often each stream is looked at. */
    pollMs: z.number().int().min(10).default(1_000),
    /** Blocks on top of the settling block before records are marked settled. */
    confirmations: z.number().int().min(1).max(64).default(1),
    /**
     * Settle a buyer's usage at once, whatever the batch age, when its pending withdrawal becomes
     * executable within this many seconds: providers are paid before the money can leave.
     */
    earlySettleSeconds: z.number().int().min(0).default(3_600),
    gas: z
      .object({
        /** A transaction not mined after this long is re-sent with the same nonce and higher fees. */
        stuckAfterMs: z.number().int().positive().default(30_000),
        feeBumpPercent: z.number().int().min(10).max(1_000).default(25),
        maxFeeBumps: z.number().int().min(0).max(20).default(6),
        /** Gas limit = estimate × this / 100. */
        limitPercent: z.number().int().min(100).max(500).default(130),
      })
      .prefault({}),
    retry: z
      .object({
        /** Backoff after an RPC error or a rejected batch doubles from here... */
        initialMs: z.number().int().positive().default(500),
        /** ...up to here. */
        maxMs: z.number().int().positive().default(30_000),
      })
      .prefault({}),
    /** Widest block range asked for in one `eth_getLogs` (public RPCs cap it). */
    logBlockRange: z.number().int().positive().default(5_000),
    /** Where in-flight transactions are journaled, so a restarted oracle finds and finishes them. */
    journalPath: z.string().min(1).default("data/oracle-journal.json"),
    /** Gateway streams to settle. Default: the gateway in this file (`store.path`, TOLLGATE_GATEWAY_SIGNER_KEY). */
    streams: z.array(streamSchema).min(1).optional(),
  })
  .prefault({});

const fileSchema = z.object({
  chain: z.object({ rpcUrl: z.url().optional(), deploymentFile: z.string().min(1) }),
  store: z.object({ path: z.string().min(1).default("data/usage.sqlite") }).prefault({}),
  log: z.object({ level: z.enum(LOG_LEVELS).default("info") }).prefault({}),
  oracle: oracleSchema,
});

export type OracleSettings = z.infer<typeof oracleSchema>;

export interface OracleStreamConfig {
  storePath: string;
  signerKey: Hex;
}

export interface OracleConfig extends Omit<OracleSettings, "streams"> {
  rpcUrl: string;
  deployment: Deployment;
  /** The oracle's own key: it pays gas and signs nothing else. */
  senderKey: Hex;
  streams: OracleStreamConfig[];
  logLevel: (typeof LOG_LEVELS)[number];
  /** Fault-injection points (TOLLGATE_FAILPOINTS, comma-separated): the oracle SIGKILLs itself there. Tests only. */
  failpoints: string[];
}

function isPrivateKey(value: string | undefined): value is Hex {
  return value !== undefined && isHex(value) && value.length === 66;
}

/**
 * N gateway instances on one host (TOLLGATE_GATEWAY_INSTANCES, `start-oracle --instances N`): one stream per
 * instance, each its store file and its key, named exactly as the launcher names them (gateway-instances/).
 * Undefined when one gateway is asked for; a problem is added when instances and explicit streams are mixed.
 */
function instanceStreams(env: NodeJS.ProcessEnv, storePath: string, explicitStreams: boolean, problems: string[]): OracleStreamConfig[] | undefined {
  let count: number;
  try {
    count = instanceCountFromEnv(env);
    if (count < 2) return undefined;
    if (explicitStreams) {
      problems.push(`${INSTANCES_ENV}: oracle.streams already names the stores to settle; drop one of the two (instances settle every instance of this config's gateway)`);
      return undefined;
    }
    return planInstances({ env, count, storePath }).instances.map((instance) => ({ storePath: instance.storePath, signerKey: instance.signerKey }));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(error.message);
    return undefined;
  }
}

/**
 * Environment: TOLLGATE_ORACLE_KEY (required, pays gas), TOLLGATE_GATEWAY_SIGNER_KEY (or each stream's
 * `signerKeyEnv`), TOLLGATE_GATEWAY_INSTANCES with TOLLGATE_GATEWAY_SIGNER_KEY(S) (N instances), TOLLGATE_RPC_URL, TOLLGATE_ORACLE_PORT, TOLLGATE_LOG_LEVEL, TOLLGATE_FAILPOINTS.
 */
export function parseOracleConfig(raw: unknown, env: NodeJS.ProcessEnv, baseDir: string, source = "config"): OracleConfig {
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssues(source, parsed.error));
  const file = parsed.data;
  const problems: string[] = [];

  const senderKey = env.TOLLGATE_ORACLE_KEY;
  if (!isPrivateKey(senderKey)) {
    problems.push("TOLLGATE_ORACLE_KEY: set it to the oracle's gas-paying 32-byte private key as 0x-prefixed hex (fund it with the chain's native token)");
  }
  const rpcUrl = env.TOLLGATE_RPC_URL ?? file.chain.rpcUrl;
  if (!rpcUrl) problems.push("chain.rpcUrl: set it in the file or in TOLLGATE_RPC_URL (e.g. http://127.0.0.1:8545)");
  const port = env.TOLLGATE_ORACLE_PORT !== undefined ? Number(env.TOLLGATE_ORACLE_PORT) : file.oracle.listen.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`TOLLGATE_ORACLE_PORT: "${env.TOLLGATE_ORACLE_PORT}" is not a port number`);
  const logLevel = env.TOLLGATE_LOG_LEVEL ?? file.log.level;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) problems.push(`TOLLGATE_LOG_LEVEL: use one of ${LOG_LEVELS.join(", ")}`);

  const storePath = env.TOLLGATE_STORE_PATH ?? file.store.path;
  const instances = instanceStreams(env, path.resolve(baseDir, storePath), file.oracle.streams !== undefined, problems);
  const streamSources = instances ? [] : (file.oracle.streams ?? [{ storePath, signerKeyEnv: "TOLLGATE_GATEWAY_SIGNER_KEY" }]);
  const streams: OracleStreamConfig[] = instances ?? [];
  streamSources.forEach((stream, index) => {
    const key = env[stream.signerKeyEnv];
    if (!isPrivateKey(key)) {
      problems.push(`${stream.signerKeyEnv}: set it to the signer key of the gateway whose store is ${stream.storePath} (oracle.streams[${index}])`);
      return;
    }
    streams.push({ storePath: path.resolve(baseDir, stream.storePath), signerKey: key });
  });
  if (senderKey && streams.some((stream) => stream.signerKey.toLowerCase() === senderKey.toLowerCase())) {
    problems.push("TOLLGATE_ORACLE_KEY: use a key of its own, not a gateway signer key (the gateway key only signs, it never holds gas money)");
  }

  const deploymentPath = path.resolve(baseDir, file.chain.deploymentFile);
  let deployment: Deployment | undefined;
  const deploymentParsed = deploymentSchema.safeParse(readJsonFile(deploymentPath, "deployment file"));
  if (!deploymentParsed.success) {
    problems.push(describeIssues(deploymentPath, deploymentParsed.error) + "\n    (run the deploy step again, or point chain.deploymentFile at its output)");
  } else {
    deployment = deploymentParsed.data;
  }
  if (problems.length > 0) throw new ConfigError(`invalid oracle configuration (${source}):\n${problems.map((p) => `  - ${p}`).join("\n")}`);

  const { streams: _streams, ...settings } = file.oracle;
  return {
    ...settings,
    listen: { host: file.oracle.listen.host, port },
    journalPath: path.resolve(baseDir, file.oracle.journalPath),
    rpcUrl: rpcUrl!,
    deployment: deployment!,
    senderKey: senderKey as Hex,
    streams,
    logLevel: logLevel as OracleConfig["logLevel"],
    failpoints: (env.TOLLGATE_FAILPOINTS ?? "").split(",").map((name) => name.trim()).filter(Boolean),
  };
}

/** Reads the file named by `TOLLGATE_CONFIG` (default `tollgate.config.json`) and the environment. */
export function loadOracleConfig(env: NodeJS.ProcessEnv = process.env): OracleConfig {
  const file = path.resolve(env.TOLLGATE_CONFIG ?? "tollgate.config.json");
  return parseOracleConfig(readJsonFile(file, "config file"), env, path.dirname(file), file);
}
