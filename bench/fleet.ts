/**
 * Fleet mode (issue 14): `npx hardhat run bench/fleet.ts` (npm run bench:fleet).
 *
 * In one run, loopback only, with the same load generator as bench/gateway-latency.ts (bench/lib/load.ts, a worker
 * thread of this process) and the same simulated upstream process (no added latency):
 *   - "single": one gateway process without `fleet` (the embedded default: SQLite, no shared store);
 *   - "fleet ×1": one gateway process with `fleet` on a real redis-server (AOF on, `appendfsync everysec` as in
 *     production), so the two differ only by the shared store;
 *   - "fleet ×2": two gateway processes of the same provider (own signer keys, own stores) on that redis-server,
 *     each sent half the load by its own generator, at once.
 * Per target: (b) metered calls/s, autocannon, as fast as the answers come; (a) a paced open loop below capacity,
 * p50/p99, where "added" is the difference of a percentile between "fleet ×1" and "single": the extra latency the
 * shared store adds per call. The rounds are repeated (BENCH_ROUNDS, 2) and interleaved, target by target, so a
 * neighbour's load on this shared 2-core machine shows as disagreement between rounds rather than as a ratio.
 * Every call must be a 2xx (the buyers are funded far beyond the run); any other answer is reported.
 *
 * Knobs: BENCH_ROUNDS (2), BENCH_CALLS (3000, per throughput run), BENCH_CONNECTIONS (64),
 * BENCH_RATE (200 calls/s, paced), BENCH_DURATION_S (10, paced), BENCH_BUYERS (8).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre from "hardhat";
import { getAddress, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { createApiKey, deposit, setSignerAuthorization } from "../client";
import { deployMarketplace, USD } from "../scripts/lib/marketplace-fixtures";
import { killAllProcesses, startGatewayProcess, startSimulatedUpstreamProcess, type GatewayProcess } from "../scripts/lib/processes";
import { startRpcServer } from "../scripts/lib/rpc-server";
import { startRedisServer } from "../test/helpers/redis-server";
import { writeBenchGatewaySite } from "./lib/gateway-site";
import { loadModules, runLoad, type LoadJob, type LoadResult } from "./lib/load";
import { stats } from "./lib/stats";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CALLS = Number(process.env.BENCH_CALLS ?? 3000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const BUYERS = Math.min(8, Number(process.env.BENCH_BUYERS ?? 8));

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Instance {
  gateway: GatewayProcess;
  keys: string[];
}

interface Target {
  name: string;
  instances: Instance[];
}

async function main(): Promise<void> {
  const market = await deployMarketplace();
  const tollgate = getAddress(await market.tollgate.getAddress());
  const chainId = Number(market.chainId);
  const buyers = market.buyers.map((buyer) => getAddress(buyer.address)).slice(0, BUYERS);
  for (const buyer of buyers) {
    await (await market.token.mint(buyer, USD(1_000_000))).wait();
    await deposit(market.clientOf(buyer), { amount: USD(1_000_000) });
  }
  const rpc = await startRpcServer(hre.network.provider);
  const redis = await startRedisServer({ appendfsync: "everysec" });
  const sim = await startSimulatedUpstreamProcess({ args: ["--latency-ms", "0"] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-bench-fleet-"));
  log(`chain ${chainId} at ${rpc.url}; redis-server ${redis.url} (AOF, everysec); simulated upstream ${sim.url}`);

  const startInstance = async (name: string, fleet: boolean): Promise<Instance> => {
    const signerKey: Hex = generatePrivateKey();
    const signer: Address = privateKeyToAddress(signerKey);
    await setSignerAuthorization(market.clientOf(market.provider.address as Address), { providerId: Number(market.providerId), signer, authorized: true });
    const site = writeBenchGatewaySite({
      folder: path.join(dir, name),
      chainId,
      tollgate,
      providerId: Number(market.providerId),
      upstreamUrl: sim.url,
      extra: fleet ? { fleet: { redisUrl: redis.url, instanceId: name } } : {},
    });
    const gateway = await startGatewayProcess({ configPath: site.configPath, signerKey, rpcUrl: rpc.url });
    for (let tries = 0; ; tries++) {
      const health = (await (await fetch(`${gateway.url}/health`)).json()) as { status: string };
      if (health.status === "ok") break;
      if (tries > 200) throw new Error(`${name} never became healthy: ${JSON.stringify(health)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const keys: string[] = [];
    for (const buyer of buyers) keys.push((await createApiKey(market.clientOf(buyer, { url: gateway.url }), { label: "bench", tags: ["team:bench"] })).key);
    log(`${name}: ${gateway.url} (pid ${gateway.pid}, signer ${signer}${fleet ? ", fleet" : ""})`);
    return { gateway, keys };
  };

  try {
    const single = await startInstance("single", false);
    const fleetA = await startInstance("fleet-a", true);
    const fleetB = await startInstance("fleet-b", true);
    const targets: Target[] = [
      { name: "single", instances: [single] },
      { name: "fleet ×1", instances: [fleetA] },
      { name: "fleet ×2", instances: [fleetA, fleetB] },
    ];
    const body = JSON.stringify({ model: "small-model", messages: [{ role: "user", content: "Say hello to the toll booth." }], max_tokens: 16 });
    const modules = loadModules();
    /** Splits a job across the target's instances (one generator each, at once); merges what they measured. */
    const runOn = async (target: Target, job: Omit<LoadJob, "origin" | "requests" | "modules">): Promise<LoadResult> => {
      const share = target.instances.length;
      const results = await Promise.all(
        target.instances.map((instance) =>
          runLoad({
            ...job,
            amount: Math.round(job.amount / share),
            connections: Math.max(1, Math.round(job.connections / share)),
            rate: job.rate && job.rate / share,
            origin: instance.gateway.url,
            requests: instance.keys.map((key) => ({ method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body })),
            modules,
          }),
        ),
      );
      const latencies = new Float64Array(results.reduce((n, r) => n + r.latencies.length, 0));
      let at = 0;
      for (const r of results) latencies.set(r.latencies, (at += r.latencies.length) - r.latencies.length);
      return {
        latencies,
        ok: results.reduce((n, r) => n + r.ok, 0),
        non2xx: results.reduce((n, r) => n + r.non2xx, 0),
        errors: results.reduce((n, r) => n + r.errors, 0),
        elapsedS: Math.max(...results.map((r) => r.elapsedS)),
        startedAtMs: Math.min(...results.map((r) => r.startedAtMs)),
      };
    };

    const failures: string[] = [];
    const check = (label: string, r: LoadResult) => {
      if (r.non2xx > 0 || r.errors > 0) failures.push(`${label}: ${r.non2xx} non-2xx, ${r.errors} errors`);
    };
    // Warm-up: JIT, pools, buyer caches, the fleet's scripts loaded.
    for (const target of targets) check(`warm-up ${target.name}`, await runOn(target, { kind: "autocannon", amount: 1_000, connections: CONNECTIONS }));

    const rows: { round: number; target: string; perSecond: number; p50: number; p99: number }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of targets) {
        const throughput = await runOn(target, { kind: "autocannon", amount: CALLS, connections: CONNECTIONS });
        check(`round ${round} ${target.name} throughput`, throughput);
        const paced = await runOn(target, { kind: "paced", amount: RATE * DURATION_S, rate: RATE, leadIn: RATE, connections: 128 });
        check(`round ${round} ${target.name} paced`, paced);
        const s = stats(paced.latencies);
        rows.push({ round, target: target.name, perSecond: throughput.ok / throughput.elapsedS, p50: s.p50, p99: s.p99 });
        log(`round ${round} ${target.name}: ${(throughput.ok / throughput.elapsedS).toFixed(0)} calls/s; paced ${RATE}/s p50 ${s.p50.toFixed(2)} ms p99 ${s.p99.toFixed(2)} ms`);
      }
    }

    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`\n### Fleet mode: metered calls/s and the shared store's added latency (${os.cpus().length} cores, loopback)\n`);
    out(`Throughput: autocannon, ${CONNECTIONS} connections, ${CALLS} calls per run. Latency: paced open loop at ${RATE} calls/s for ${DURATION_S} s (whole fleet).\n`);
    out("| round | target | metered calls/s | vs single | paced p50 (ms) | paced p99 (ms) | p50 added vs single | p99 added vs single |");
    out("|---|---|---:|---:|---:|---:|---:|---:|");
    for (const row of rows) {
      const base = rows.find((r) => r.round === row.round && r.target === "single")!;
      out(
        `| ${row.round} | ${row.target} | ${row.perSecond.toFixed(0)} | ${(row.perSecond / base.perSecond).toFixed(2)}x | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ` +
          `${row.target === "single" ? "–" : `${(row.p50 - base.p50 >= 0 ? "+" : "")}${(row.p50 - base.p50).toFixed(2)}`} | ${row.target === "single" ? "–" : `${(row.p99 - base.p99 >= 0 ? "+" : "")}${(row.p99 - base.p99).toFixed(2)}`} |`,
      );
    }
    if (failures.length > 0) {
      out(`\nFAILED: ${failures.join("; ")}`);
      process.exitCode = 1;
    }
  } finally {
    await killAllProcesses();
    await rpc.close();
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  log(`bench:fleet failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
});
