/**
 * Gateway latency and throughput: `npx hardhat run bench/gateway-latency.ts` (npm run bench:gateway).
 *
 * The same load, in one run, against the simulated upstream directly, through a bare Node proxy
 * (bench/bare-proxy-main.ts: node:http in, an undici pool out, JSON parsed and re-serialised, nothing else: the
 * floor any Node gateway pays) and through the metered gateway, loopback only. The simulated upstream (`server/upstream/simulated-main.ts`, no added latency) and the
 * gateway (`server/gateway/main.ts`) each run in their own child process; the chain is this process's
 * Hardhat network served over JSON-RPC; the load generator runs on a worker thread of this process, so
 * neither the chain nor the servers share its event loop.
 *
 *   (a) fixed rate (1,000 req/s): non-streaming chat, small prompt, max_tokens 16. Two generators:
 *       - paced open loop: one request every 1/rate s on a keep-alive pool, whatever the answers do
 *         (also at a quarter of the rate, to see the added latency of a call when nothing queues);
 *       - autocannon `overallRate`: autocannon sends each connection's per-second quota back to back
 *         and then waits for the next second, so this is bursts at concurrency = connections.
 *       p50/p99 direct and via the gateway; "added" is the difference of the two percentiles.
 *   (b) max throughput: autocannon, N connections, as fast as the answers come: calls/s direct, and metered
 *       calls/s via the gateway (each one a durable SQLite record and a signed receipt).
 *
 * Every gateway run uses a fixed request count (autocannon `amount`, or the paced generator's total), so no
 * call is cut off at the end; after a graceful stop the bench opens the gateway's store and checks that it
 * holds exactly one record per 2xx the generators received.
 *
 * Every run also prints the CPU each process used per answered call (from /proc), and the machine's busy
 * and hypervisor-stolen time, since a 2-core box shared with the load generator and the upstream is the
 * bottleneck.
 *
 * Knobs (environment):
 *   BENCH_DURATION_S (10 per run)           BENCH_RATE (1000)        BENCH_LOW_RATE (BENCH_RATE / 4)
 *   BENCH_CONNECTIONS (64, phase b)         BENCH_RATE_CONNECTIONS (10, autocannon in phase a)
 *   BENCH_BUYERS (8, at most 8)             BENCH_LOG_LEVEL (gateway log level, "warn")
 *   BENCH_ACCOUNT_CACHE_MS (the gateway's chain.accountCacheMs, 1000)
 *   BENCH_CPU_PROF=1 (run the gateway with --cpu-prof; print where its time went; keep the profile)
 *   BENCH_GATEWAY_NODE_ARGS (extra Node flags for the gateway process, space-separated)
 *   BENCH_TOKENIZER=0 (skip the tokenizer throughput table from bench/tokenizer-throughput.ts)
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre from "hardhat";
import { createPublicClient, custom, getAddress, type Address, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { createApiKey, deposit, setSignerAuthorization } from "../client";
import { MarketplaceReader } from "../server/chain/marketplace-reader";
import { UsageStore } from "../server/store/usage-store";
import { deployMarketplace, USD, type Marketplace } from "../scripts/lib/marketplace-fixtures";
import { killAllProcesses, spawnTsProcess, startGatewayProcess, startSimulatedUpstreamProcess } from "../scripts/lib/processes";
import { startRpcServer } from "../scripts/lib/rpc-server";
import { loadModules, runLoad, type LoadJob, type LoadResult } from "./lib/load";
import { printCpuProfile } from "./lib/cpu-profile";
import { cpuSecondsOf, machineTicks } from "./lib/machine";
import { stats, type Stats } from "./lib/stats";

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
/** A second paced rate, meant to sit below the gateway's capacity: the added latency of one call when nothing queues. */
const LOW_RATE = Number(process.env.BENCH_LOW_RATE ?? Math.round(RATE / 4));
const MAX_CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const RATE_CONNECTIONS = Number(process.env.BENCH_RATE_CONNECTIONS ?? 10);
const BUYERS = Math.min(8, Number(process.env.BENCH_BUYERS ?? 8));
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? "warn";
const ACCOUNT_CACHE_MS = Number(process.env.BENCH_ACCOUNT_CACHE_MS ?? 1_000);
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
/** Extra Node flags for the gateway process only, e.g. "--max-semi-space-size=64" or "--heap-prof". */
const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
const WARMUP_CALLS = 4_000;
const ROOT = path.resolve(__dirname, "..");

const PROMPT = { model: "small-model", messages: [{ role: "user", content: "Write one sentence about a toll bridge at dawn." }], max_tokens: 16 };

/** CPU µs per answered call of each process during one run. */
interface CpuPerCall {
  gateway?: number;
  sim?: number;
  bench?: number;
}

/** The gateway's /metrics as `name{labels}` → value. */
async function gatewayMetrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/** Event-loop delay since the previous scrape (prom-client resets it on each scrape), and GC time between two scrapes. */
function loopAndGc(before: Map<string, number>, after: Map<string, number>): string {
  const gc = (kind: string) => ((after.get(`nodejs_gc_duration_seconds_sum{kind="${kind}"}`) ?? 0) - (before.get(`nodejs_gc_duration_seconds_sum{kind="${kind}"}`) ?? 0)) * 1000;
  const lag = (name: string) => ((after.get(name) ?? NaN) * 1000).toFixed(1);
  return (
    `gateway event-loop delay p99 ${lag("nodejs_eventloop_lag_p99_seconds")} ms, max ${lag("nodejs_eventloop_lag_max_seconds")} ms; ` +
    `GC ${(gc("minor") + gc("major") + gc("incremental") + gc("weakcb")).toFixed(0)} ms (major ${gc("major").toFixed(0)} ms)`
  );
}

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : "n/a");
const us = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(0) : "n/a");
const log = (line: string) => console.log(`[bench] ${line}`);

interface Target {
  name: "direct" | "bare" | "gateway";
  origin: string;
  requests: LoadJob["requests"];
  /** The process in front of the upstream (the bare proxy or the gateway), whose CPU per call is measured. */
  pid?: number;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const cpu = os.cpus();
  log(`machine: ${cpu.length} × ${cpu[0]?.model ?? "?"}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`);
  log(`load average at start: ${os.loadavg().map((v) => v.toFixed(2)).join(" ")}`);
  log(`phases: ${DURATION_S} s each; fixed rate ${RATE} req/s; max throughput with ${MAX_CONNECTIONS} connections; ${BUYERS} buyers`);

  // --- chain: contracts, a gateway key, funded buyers, served over JSON-RPC -----------------------
  log("deploying the marketplace on Hardhat's network…");
  const market: Marketplace = await deployMarketplace();
  const tollgate = getAddress(await market.tollgate.getAddress());
  const chainId = Number(market.chainId);
  const signerKey = generatePrivateKey();
  const signer = privateKeyToAddress(signerKey);
  await setSignerAuthorization(market.clientOf(market.provider.address as Address), { providerId: Number(market.providerId), signer, authorized: true });
  const buyers = market.buyers.map((buyer) => getAddress(buyer.address)).slice(0, BUYERS);
  for (const buyer of buyers) await deposit(market.clientOf(buyer), { amount: USD(500) });
  const client = createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
  const { nextSequence: firstSequence } = await new MarketplaceReader(client, tollgate).signerStatus(signer);
  const rpc = await startRpcServer(hre.network.provider);
  log(`chain ${chainId} served at ${rpc.url}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-bench-"));
  const profileDir = path.join(dir, "cpu-profile");
  try {
    // --- servers, each in its own process ----------------------------------------------------------
    log("starting the simulated upstream and the gateway (child processes)…");
    const sim = await startSimulatedUpstreamProcess({ args: ["--latency-ms", "0"] });
    fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId, tollgate }));
    const config = {
      listen: { host: "127.0.0.1", port: 0 },
      chain: { deploymentFile: "deployment.json", accountCacheMs: ACCOUNT_CACHE_MS, registryRefreshMs: 15_000 },
      providerId: Number(market.providerId),
      store: { path: "usage.sqlite", durability: "process-crash" },
      upstreams: { sim: { baseUrl: sim.url, timeoutMs: 30_000, connections: 128 } },
      models: [{ name: "small-model", modelId: 1, upstream: "sim", maxOutputTokens: 512 }],
      // Rate limiting off: the bench is the only client.
      limits: { requestsPerMinute: 0 },
      log: { level: LOG_LEVEL },
    };
    const configPath = path.join(dir, "tollgate.config.json");
    fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
    const gateway = await startGatewayProcess({
      configPath,
      signerKey,
      rpcUrl: rpc.url,
      nodeArgs: [...(CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), ...GATEWAY_NODE_ARGS],
    });
    const bare = await spawnTsProcess({
      script: "bench/bare-proxy-main.ts",
      name: "bare proxy",
      args: ["--upstream", sim.url],
      isReady: (line) => typeof line.url === "string" && typeof line.port === "number",
    });
    log(`simulated upstream ${sim.url} (pid ${sim.pid}); bare proxy ${bare.url} (pid ${bare.pid}); gateway ${gateway.url} (pid ${gateway.pid}, signer ${signer})`);

    // --- one API key per buyer, wallet-signed ------------------------------------------------------
    const keys: string[] = [];
    for (const buyer of buyers) keys.push((await createApiKey(market.clientOf(buyer, { url: gateway.url }), { label: "bench", tags: ["team:bench"] })).key);

    const body = JSON.stringify(PROMPT);
    const requestsFor = (pathname: string): LoadJob["requests"] =>
      keys.map((key) => ({ method: "POST", path: pathname, headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body }));
    const targets: Target[] = [
      { name: "direct", origin: new URL(sim.url).origin, requests: requestsFor(`${new URL(sim.url).pathname}/chat/completions`) },
      { name: "bare", origin: new URL(bare.url).origin, requests: requestsFor(`${new URL(bare.url).pathname}/chat/completions`), pid: bare.pid },
      { name: "gateway", origin: new URL(gateway.url).origin, requests: requestsFor("/v1/chat/completions"), pid: gateway.pid },
    ];
    const modules = loadModules();

    let gateway2xx = 0;
    const failures: string[] = [];
    const run = async (label: string, target: Target, job: Omit<LoadJob, "origin" | "requests" | "modules">): Promise<LoadResult & { cpu: CpuPerCall }> => {
      log(`${label} → ${target.name}: ${job.amount} calls${job.rate ? ` at ${job.rate}/s` : ""}, ${job.kind}, ${job.connections} connections…`);
      const metricsBefore = target.name === "gateway" ? await gatewayMetrics(gateway.url) : undefined;
      const before = { proxy: target.pid === undefined ? undefined : cpuSecondsOf(target.pid), sim: cpuSecondsOf(sim.pid), bench: process.cpuUsage(), machine: machineTicks() };
      const result = await runLoad({ ...job, origin: target.origin, requests: target.requests, modules });
      const perCall = (start: number | undefined, end: number | undefined) => (start === undefined || end === undefined ? undefined : ((end - start) * 1e6) / result.ok);
      const benchUsage = process.cpuUsage(before.bench);
      const cpu: CpuPerCall = {
        gateway: target.pid === undefined ? undefined : perCall(before.proxy, cpuSecondsOf(target.pid)),
        sim: perCall(before.sim, cpuSecondsOf(sim.pid)),
        bench: (benchUsage.user + benchUsage.system) / result.ok,
      };
      if (target.name === "gateway") gateway2xx += result.ok;
      if (result.non2xx > 0 || result.errors > 0) failures.push(`${label} → ${target.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      const s = stats(result.latencies);
      log(`   ${result.ok} ok, ${result.non2xx} non-2xx, ${result.errors} errors in ${result.elapsedS.toFixed(2)} s (${(result.ok / result.elapsedS).toFixed(0)}/s); p50 ${ms(s.p50)} ms, p99 ${ms(s.p99)} ms, max ${ms(s.max)} ms`);
      const machine = machineTicks();
      const share = (part: number | undefined, m: typeof machine) => (part === undefined || !m || !before.machine ? "n/a" : `${((100 * part) / (m.total - before.machine.total)).toFixed(0)}%`);
      log(
        `   CPU per call: ${target.name === "bare" ? "bare proxy" : "gateway"} ${us(cpu.gateway)} µs, simulated upstream ${us(cpu.sim)} µs, load generator + chain ${us(cpu.bench)} µs; ` +
          `machine busy ${share(machine && before.machine ? machine.busy - before.machine.busy : undefined, machine)}, stolen by the hypervisor ${share(machine && before.machine ? machine.steal - before.machine.steal : undefined, machine)}`,
      );
      if (metricsBefore) log(`   ${loopAndGc(metricsBefore, await gatewayMetrics(gateway.url))}`);
      return { ...result, cpu };
    };

    // --- warm-up (JIT, connection pools, the gateway's buyer cache) --------------------------------
    const warm: Record<string, LoadResult> = {};
    for (const target of targets) warm[target.name] = await run("warm-up", target, { kind: "autocannon", amount: WARMUP_CALLS, connections: MAX_CONNECTIONS });

    // --- (a) fixed rate ------------------------------------------------------------------------------
    const paced: Record<string, Stats> = {};
    const pacedLow: Record<string, Stats> = {};
    const cannonRate: Record<string, Stats> = {};
    // The lower rate first: a gateway that cannot keep up with RATE leaves a long queue (and a grown heap) behind.
    for (const target of targets) {
      pacedLow[target.name] = stats((await run("(a) paced, lower rate", target, { kind: "paced", amount: LOW_RATE * DURATION_S, rate: LOW_RATE, connections: 128 })).latencies);
    }
    for (const target of targets) {
      paced[target.name] = stats((await run("(a) paced", target, { kind: "paced", amount: RATE * DURATION_S, rate: RATE, connections: 128 })).latencies);
    }
    for (const target of targets) {
      cannonRate[target.name] = stats(
        (await run("(a) autocannon overallRate", target, { kind: "autocannon", amount: RATE * DURATION_S, rate: RATE, connections: RATE_CONNECTIONS })).latencies,
      );
    }

    // --- (b) max throughput: a fixed count sized from the warm-up, so each run lasts about DURATION_S --
    const throughput: Record<string, { perSecond: number; stats: Stats; ok: number; elapsedS: number; cpu: CpuPerCall }> = {};
    for (const target of targets) {
      const estimate = warm[target.name].ok / warm[target.name].elapsedS;
      const amount = Math.max(MAX_CONNECTIONS * 10, Math.round(estimate * DURATION_S));
      const result = await run("(b) max throughput", target, { kind: "autocannon", amount, connections: MAX_CONNECTIONS });
      throughput[target.name] = { perSecond: result.ok / result.elapsedS, stats: stats(result.latencies), ok: result.ok, elapsedS: result.elapsedS, cpu: result.cpu };
    }

    // --- graceful stop, then the store must hold one record per 2xx ----------------------------------
    log("stopping the gateway (SIGTERM) and checking its usage store…");
    const exit = await gateway.stop();
    if (exit.code !== 0) failures.push(`the gateway exited with ${JSON.stringify(exit)}:\n${gateway.output()}`);
    const store = UsageStore.open({ path: path.join(dir, "usage.sqlite"), signer, firstSequence });
    const records = store.recordCount();
    const nextSequence = store.nextSequence();
    store.close();
    const storeOk = records === gateway2xx && nextSequence === firstSequence + BigInt(records);
    if (!storeOk) failures.push(`store holds ${records} records (next sequence ${nextSequence}) for ${gateway2xx} 2xx answers`);
    await bare.stop();
    await sim.stop();
    await rpc.close();
    log(`load average at end: ${os.loadavg().map((v) => v.toFixed(2)).join(" ")}`);

    // --- the table ----------------------------------------------------------------------------------
    const added = (name: "p50" | "p99", of: Record<string, Stats>, via: "bare" | "gateway" = "gateway") => of[via][name] - of.direct[name];
    const latencyRow = (load: string, name: "p50" | "p99", of: Record<string, Stats>) =>
      `| ${load} | ${name} latency (ms) | ${ms(of.direct[name])} | ${ms(of.bare[name])} (+${ms(added(name, of, "bare"))}) | ${ms(of.gateway[name])} (+${ms(added(name, of))}) |`;
    const cpuOf = (name: Target["name"]) => `${us(throughput[name].cpu.gateway)} / ${us(throughput[name].cpu.sim)} / ${us(throughput[name].cpu.bench)}`;
    const lines = [
      `Direct vs a bare Node proxy vs the metered gateway (loopback; simulated upstream with no added latency; non-streaming chat, ${Buffer.byteLength(body)}-byte body, max_tokens 16; ${BUYERS} buyers; ${DURATION_S} s per run)`,
      "",
      "| load | metric | direct | bare proxy (added) | metered gateway (added) |",
      "|:---|:---|---:|---:|---:|",
      latencyRow(`${RATE} req/s, paced open loop`, "p50", paced),
      latencyRow(`${RATE} req/s, paced open loop`, "p99", paced),
      latencyRow(`${LOW_RATE} req/s, paced open loop`, "p50", pacedLow),
      latencyRow(`${LOW_RATE} req/s, paced open loop`, "p99", pacedLow),
      latencyRow(`${RATE} req/s, autocannon overallRate, ${RATE_CONNECTIONS} conns`, "p50", cannonRate),
      latencyRow(`${RATE} req/s, autocannon overallRate, ${RATE_CONNECTIONS} conns`, "p99", cannonRate),
      `| max, autocannon, ${MAX_CONNECTIONS} conns | calls/s | ${throughput.direct.perSecond.toFixed(0)} | ${throughput.bare.perSecond.toFixed(0)} | ${throughput.gateway.perSecond.toFixed(0)} metered (${(throughput.gateway.perSecond / throughput.bare.perSecond).toFixed(2)}× the bare proxy) |`,
      `| max, autocannon, ${MAX_CONNECTIONS} conns | p50 / p99 latency (ms) | ${ms(throughput.direct.stats.p50)} / ${ms(throughput.direct.stats.p99)} | ${ms(throughput.bare.stats.p50)} / ${ms(throughput.bare.stats.p99)} | ${ms(throughput.gateway.stats.p50)} / ${ms(throughput.gateway.stats.p99)} |`,
      `| max, autocannon, ${MAX_CONNECTIONS} conns | CPU µs per call: proxy / upstream / load generator | – / ${us(throughput.direct.cpu.sim)} / ${us(throughput.direct.cpu.bench)} | ${cpuOf("bare")} | ${cpuOf("gateway")} |`,
      "",
      `Usage store after a graceful stop: ${records} records for ${gateway2xx} 2xx answers via the gateway (sequences ${firstSequence}..${nextSequence - 1n}): ${storeOk ? "one record per answer" : "MISMATCH"}.`,
      `Targets (issue 12): metered calls/s ≥ 0.6× the bare proxy's (${(throughput.gateway.perSecond / throughput.bare.perSecond).toFixed(2)}×: ${throughput.gateway.perSecond >= 0.6 * throughput.bare.perSecond ? "met" : "missed"}); ` +
        `added p50 ≤ 1 ms and p99 ≤ 5 ms over direct below capacity (paced ${LOW_RATE} req/s: ${added("p50", pacedLow) <= 1 ? "met" : "missed"} / ${added("p99", pacedLow) <= 5 ? "met" : "missed"}).`,
    ];
    console.log(`\n${lines.join("\n")}\n`);

    if (CPU_PROF) printCpuProfile(profileDir);
    if (process.env.BENCH_TOKENIZER !== "0") await tokenizerThroughput();

    if (failures.length > 0) {
      console.error(`[bench] FAILED:\n  ${failures.join("\n  ")}`);
      process.exitCode = 1;
    }
    log(`finished in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
  } finally {
    await killAllProcesses();
    await rpc.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

function tokenizerThroughput(): Promise<void> {
  const script = path.join(ROOT, "bench", "tokenizer-throughput.ts");
  if (!fs.existsSync(script)) {
    log("bench/tokenizer-throughput.ts is not present: no tokenizer table");
    return Promise.resolve();
  }
  log("tokenizer throughput (bench/tokenizer-throughput.ts, its own process)…");
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", script], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
    child.once("exit", (code) => {
      if (code !== 0) log(`tokenizer throughput exited with ${code}`);
      resolve();
    });
    child.once("error", (error) => {
      log(`tokenizer throughput could not run: ${error.message}`);
      resolve();
    });
  });
}

main().catch(async (error: unknown) => {
  console.error(error);
  await killAllProcesses();
  process.exitCode = 1;
});
