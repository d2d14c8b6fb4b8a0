/**
 * A benched gateway's folder: its deployment file and a config tuned for measuring (one small model on the
 * simulated upstream, rate limit off, log level warn, a wide upstream pool). Shared by the A/B and fleet benches so
 * the gateways they compare are configured alike.
 */
import fs from "node:fs";
import path from "node:path";
import type { Address } from "viem";

export interface BenchGatewaySite {
  folder: string;
  configPath: string;
}

export function writeBenchGatewaySite(options: {
  folder: string;
  chainId: number;
  tollgate: Address;
  providerId: number;
  upstreamUrl: string;
  /** Merged into the config object (e.g. a `fleet` section). */
  extra?: Record<string, unknown>;
}): BenchGatewaySite {
  const { folder } = options;
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, "deployment.json"), JSON.stringify({ chainId: options.chainId, tollgate: options.tollgate }));
  const config = {
    listen: { host: "127.0.0.1", port: 0 },
    chain: { deploymentFile: "deployment.json", accountCacheMs: 2_000, registryRefreshMs: 15_000 },
    providerId: options.providerId,
    store: { path: "usage.sqlite", durability: "process-crash" },
    upstreams: { sim: { baseUrl: options.upstreamUrl, timeoutMs: 30_000, connections: 128 } },
    models: [{ name: "small-model", modelId: 1, upstream: "sim", maxOutputTokens: 512 }],
    limits: { requestsPerMinute: 0 },
    log: { level: "warn" },
    ...options.extra,
  };
  const configPath = path.join(folder, "tollgate.config.json");
  fs.writeFileSync(configPath, JSON.stringify(config));
  return { folder, configPath };
}
