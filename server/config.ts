/**
 * The one reader of `process.env` and of the gateway's config file. Everything is validated with zod at
 * start-up; a bad value stops the process with a message naming the setting and what to put there.
 *
 * Secrets never live in the file: the gateway's signing key and upstream API keys come from the
 * environment (the file names which variable holds each upstream key).
 */
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { isHex, type Hex } from "viem";
import { deploymentSchema, type Deployment } from "./chain/deployment-schema";
import { compileRouting, routingSchema, type CompiledRouting } from "./gateway/routing/routing-config";

const ENCODINGS = ["o200k_base", "cl100k_base"] as const;

const modelSchema = z.object({
  /** The public model name buyers send as `model`. */
  name: z.string().min(1).max(64).regex(/^[\w.:/-]+$/, "letters, digits and . _ : / - only"),
  /** The model's id in the on-chain registry: its prices and provider come from there. */
  modelId: z.number().int().positive(),
  kind: z.enum(["chat", "embeddings"]).default("chat"),
  /** Key of `upstreams` that serves this model. */
  upstream: z.string().min(1),
  /** The name the upstream knows the model by (defaults to `name`). */
  upstreamModel: z.string().min(1).optional(),
  encoding: z.enum(ENCODINGS).default("o200k_base"),
  /** Most output tokens one call may produce; also the reservation when the buyer sets no `max_tokens`. */
  maxOutputTokens: z.number().int().positive().max(1_000_000).default(4096),
});

const upstreamSchema = z.object({
  baseUrl: z.url(),
  /** Name of the environment variable holding this upstream's API key, if it needs one. */
  apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
  timeoutMs: z.number().int().positive().default(60_000),
  connections: z.number().int().positive().max(1024).default(64),
});

const fileSchema = z
  .object({
    listen: z
      .object({ host: z.string().default("127.0.0.1"), port: z.number().int().min(0).max(65535).default(8787) })
      .prefault({}),
    chain: z.object({
      rpcUrl: z.url().optional(),
      /** Deployment file written by the deploy step: chain id and the Tollgate address. */
      deploymentFile: z.string().min(1),
      /** How long a buyer's on-chain balance and credits are trusted before they are read again. */
      accountCacheMs: z.number().int().min(0).default(2_000),
      /**
       * After a buyer's last call, how long its balance is kept fresh in the background (re-read before it goes
       * stale), so a buyer that pauses between calls does not wait for the chain on the next one. 0 turns it off.
       */
      keepWarmMs: z.number().int().min(0).default(60_000),
      /** How often model prices, pauses and the signer's authorization are refreshed. */
      registryRefreshMs: z.number().int().positive().default(15_000),
    }),
    providerId: z.number().int().positive(),
    store: z
      .object({
        path: z.string().min(1).default("data/usage.sqlite"),
        durability: z.enum(["process-crash", "power-loss"]).default("process-crash"),
        /**
         * How often a worker thread folds the WAL back into the database. After each, the next COMMIT on the event
         * loop restarts the WAL and fsyncs its header (SQLite does that to survive a power cut), a few ms every
         * time: rarer checkpoints mean fewer of those stalls and a bigger WAL (about 20 MB a second at 600 calls/s).
         */
        checkpointIntervalMs: z.number().int().min(10).max(60_000).default(1_000),
        /**
         * Keep each call's exact request and response bytes beside its record, so the buyer can export them
         * (`GET /v1/usage?include_content=true`) and recount tokens and recompute the content hash. Off by
         * default: the gateway then keeps only hashes of content, never content.
         */
        retainContent: z.boolean().default(false),
      })
      .prefault({}),
    upstreams: z.record(z.string(), upstreamSchema).refine((u) => Object.keys(u).length > 0, "name at least one upstream"),
    models: z.array(modelSchema).min(1, "list at least one model"),
    limits: z
      .object({
        maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
        /** Requests per key per minute; a burst of the same size is allowed. 0 turns rate limiting off. */
        requestsPerMinute: z.number().int().min(0).default(600),
        /** Wallet signatures for key management are accepted this long after their `issuedAt`. */
        signatureMaxAgeSeconds: z.number().int().positive().default(300),
        /** How long a wallet-signed read session (the web app's, `POST /v1/sessions`) lasts: 12 hours by default. */
        sessionLifetimeSeconds: z.number().int().positive().max(30 * 24 * 3600).default(12 * 3600),
      })
      .prefault({}),
    tokenizer: z
      .object({
        workers: z.number().int().min(1).max(16).default(1),
        inlineLimitChars: z.number().int().positive().default(4_096),
      })
      .prefault({}),
    /**
     * The web app the gateway serves at `/app`: where its build is, and what the browser is told about the chain
     * (`GET /app/config.json`). The browser reads the chain itself, so `publicRpcUrl` must be reachable from
     * the user's machine (the gateway's own `chain.rpcUrl` may be a private node).
     */
    app: z
      .object({
        /** The Vite build output (default: `app/dist` in the repository). Relative paths are from the config file's folder. */
        dir: z.string().min(1).optional(),
        /** The JSON-RPC URL browsers use (default: `chain.rpcUrl`). Also allowed by the page's Content-Security-Policy. */
        publicRpcUrl: z.url().optional(),
        /** A block explorer's base URL for transaction links (e.g. https://etherscan.io), or null for none. */
        explorerUrl: z.url().nullable().default(null),
      })
      .prefault({}),
    /** Budget threshold alerts: how the webhook outbox is read and retried (server/gateway/budgets/budget-webhooks.ts). */
    budgets: z
      .object({
        webhookPollMs: z.number().int().positive().default(1_000),
        webhookRetryBaseMs: z.number().int().positive().default(2_000),
        webhookMaxRetryDelayMs: z.number().int().positive().default(3_600_000),
        webhookMaxAttempts: z.number().int().min(1).max(100).default(12),
        webhookTimeoutMs: z.number().int().positive().default(5_000),
        /**
         * Let buyers' webhooks reach loopback, private and link-local addresses. Off by default: the alert is a
         * POST from the gateway's own network, so a buyer's URL must not reach what only the gateway can.
         */
        webhookAllowPrivateNetworks: z.boolean().default(false),
      })
      .prefault({}),
    /**
     * Fleet mode: several gateway instances of one provider, behind one address, share through Redis what each
     * buyer has reserved and not yet settled, and what each key and budget has spent (server/gateway/fleet/).
     * Absent (the default): one instance, and everything lives in its own SQLite store.
     */
    fleet: z
      .object({
        /** The shared store, `redis://host:port[/db]`. */
        redisUrl: z.url(),
        /** This instance's name in the fleet, unique among its instances (default: its signer address). */
        instanceId: z.string().regex(/^[\w.-]{1,64}$/, "1-64 letters, digits and . _ - only").optional(),
        /** How long a reservation outlives an instance that stopped renewing it (it died mid-call). */
        leaseMs: z.number().int().min(1_000).default(30_000),
        /** How long a call waits for the shared store before it is refused with a 503. */
        timeoutMs: z.number().int().positive().default(1_000),
        /** Prefix of every key in the store (default `tollgate:<chainId>:<contract>:<providerId>:`). */
        keyPrefix: z.string().min(1).max(200).optional(),
      })
      .optional(),
    /** Model tiers and the aliases (`auto`, …) routed to the cheapest model good enough for each call (gateway/routing/). */
    routing: routingSchema.optional(),
    log: z.object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info") }).prefault({}),
    shutdownTimeoutMs: z.number().int().positive().default(30_000),
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.models.forEach((model, index) => {
      if (names.has(model.name)) ctx.addIssue({ code: "custom", path: ["models", index, "name"], message: `duplicate model name "${model.name}"` });
      names.add(model.name);
      if (!(model.upstream in config.upstreams)) {
        ctx.addIssue({
          code: "custom",
          path: ["models", index, "upstream"],
          message: `no upstream named "${model.upstream}"; define it under "upstreams" (have: ${Object.keys(config.upstreams).join(", ")})`,
        });
      }
    });
    for (const problem of compileRouting(config.routing, config.models).problems) ctx.addIssue({ code: "custom", path: problem.path, message: problem.message });
  });

export type GatewayFileConfig = z.infer<typeof fileSchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema> & { apiKey?: string };

export type DeploymentFile = Deployment;

/** Where `createApp` finds the web app's build and what it tells the browser; paths resolved, defaults applied. */
export interface WebAppConfig {
  dir: string;
  publicRpcUrl: string;
  explorerUrl: string | null;
}

/** The repository's own `app/dist`, wherever the process was started from. */
export const DEFAULT_APP_DIR = path.resolve(__dirname, "..", "app", "dist");

export interface GatewayConfig extends Omit<GatewayFileConfig, "upstreams" | "chain" | "app" | "routing"> {
  chain: GatewayFileConfig["chain"] & { rpcUrl: string; deployment: DeploymentFile };
  app: WebAppConfig;
  upstreams: Record<string, UpstreamConfig>;
  /** The gateway key: it signs receipts and batches, never pays gas. */
  signerKey: Hex;
  /** Tiers and routing policies, resolved (none when the file declares no `routing`). */
  routing?: CompiledRouting;
}

/** A configuration problem, with every issue listed as `path: what is wrong`. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export function describeIssues(source: string, error: z.ZodError): string {
  const lines = error.issues.map((issue) => `  - ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  return `invalid configuration in ${source}:\n${lines.join("\n")}`;
}

export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read the ${what} ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`the ${what} ${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Builds the gateway configuration from a parsed config object and the environment.
 * Environment: TOLLGATE_GATEWAY_SIGNER_KEY (required), TOLLGATE_RPC_URL, TOLLGATE_PORT, TOLLGATE_HOST,
 * TOLLGATE_STORE_PATH, TOLLGATE_LOG_LEVEL, TOLLGATE_INSTANCE_ID (fleet mode), and each upstream's `apiKeyEnv`.
 * `baseDir` resolves relative paths in the file (the file's own folder).
 */
export function parseGatewayConfig(raw: unknown, env: NodeJS.ProcessEnv, baseDir: string, source = "config"): GatewayConfig {
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssues(source, parsed.error));
  const file = parsed.data;

  const problems: string[] = [];
  const signerKey = env.TOLLGATE_GATEWAY_SIGNER_KEY;
  if (!signerKey || !isHex(signerKey) || signerKey.length !== 66) {
    problems.push("TOLLGATE_GATEWAY_SIGNER_KEY: set it to the gateway key's 32-byte private key as 0x-prefixed hex");
  }
  const rpcUrl = env.TOLLGATE_RPC_URL ?? file.chain.rpcUrl;
  if (!rpcUrl) problems.push("chain.rpcUrl: set it in the file or in TOLLGATE_RPC_URL (e.g. http://127.0.0.1:8545)");

  const port = env.TOLLGATE_PORT !== undefined ? Number(env.TOLLGATE_PORT) : file.listen.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`TOLLGATE_PORT: "${env.TOLLGATE_PORT}" is not a port number`);
  const logLevel = env.TOLLGATE_LOG_LEVEL ?? file.log.level;
  const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (!levels.includes(logLevel)) problems.push(`TOLLGATE_LOG_LEVEL: use one of ${levels.join(", ")}`);

  const upstreams: Record<string, UpstreamConfig> = {};
  for (const [name, upstream] of Object.entries(file.upstreams)) {
    const apiKey = upstream.apiKeyEnv ? env[upstream.apiKeyEnv] : undefined;
    if (upstream.apiKeyEnv && !apiKey) problems.push(`upstreams.${name}.apiKeyEnv: the variable ${upstream.apiKeyEnv} is not set`);
    upstreams[name] = { ...upstream, apiKey };
  }

  const deploymentPath = path.resolve(baseDir, file.chain.deploymentFile);
  let deployment: DeploymentFile | undefined;
  const deploymentParsed = deploymentSchema.safeParse(readJsonFile(deploymentPath, "deployment file"));
  if (!deploymentParsed.success) {
    problems.push(describeIssues(deploymentPath, deploymentParsed.error) + "\n    (run the deploy step again, or point chain.deploymentFile at its output)");
  } else {
    deployment = deploymentParsed.data;
  }

  if (problems.length > 0) throw new ConfigError(`invalid configuration (${source}):\n${problems.map((p) => `  - ${p}`).join("\n")}`);

  return {
    ...file,
    listen: { host: env.TOLLGATE_HOST ?? file.listen.host, port },
    chain: { ...file.chain, rpcUrl: rpcUrl!, deployment: deployment! },
    store: { ...file.store, path: path.resolve(baseDir, env.TOLLGATE_STORE_PATH ?? file.store.path) },
    log: { level: logLevel as GatewayFileConfig["log"]["level"] },
    fleet: file.fleet && { ...file.fleet, instanceId: env.TOLLGATE_INSTANCE_ID ?? file.fleet.instanceId },
    app: {
      dir: file.app.dir === undefined ? DEFAULT_APP_DIR : path.resolve(baseDir, file.app.dir),
      publicRpcUrl: file.app.publicRpcUrl ?? rpcUrl!,
      explorerUrl: file.app.explorerUrl,
    },
    upstreams,
    signerKey: signerKey as Hex,
    // Already checked by the schema's refinement: compiling again cannot find a problem.
    routing: compileRouting(file.routing, file.models).routing,
  };
}

/** Reads the file named by `TOLLGATE_CONFIG` (default `tollgate.config.json`) and the environment. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const file = path.resolve(env.TOLLGATE_CONFIG ?? "tollgate.config.json");
  return parseGatewayConfig(readJsonFile(file, "config file"), env, path.dirname(file), file);
}
