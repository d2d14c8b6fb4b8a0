/**
 * Gateway latency and throughput: `npx hardhat run bench/gateway-latency.ts` (npm run bench:gateway).
 *
 * The same load, in one run, against the simulated upstream directly, through a bare Node proxy
 * (bench/bare-proxy-main.ts: node:http in, an undici pool out, JSON parsed and re-serialised, SSE piped through,
 * nothing else: the floor any Node gateway pays) and through the metered gateway, loopback only. The simulated
 * upstream (`server/upstream/simulated-main.ts`, no added latency) and the gateway (`server/gateway/main.ts`)
 * each run in their own child process; the chain is this process's Hardhat network served over JSON-RPC; the
 * load generator runs on a worker thread of this process, so neither the chain nor the servers share its event loop.
 *
 *   warm-up: autocannon, as fast as the answers come. The gateway's calls/s here is its capacity as this run
 *       measures it; the lower paced rate defaults to half of it (issue 12 judges the added latency there).
 *   (a) paced open loop (one request every 1/rate s on a keep-alive pool, whatever the answers do), non-streaming
 *       chat, small prompt, max_tokens 16: at the lower rate (below capacity: the added latency of a call when
 *       nothing queues) and at BENCH_RATE; and autocannon `overallRate` at BENCH_RATE (autocannon sends each
 *       connection's per-second quota back to back and then waits for the next second: bursts at concurrency =
 *       connections). p50/p99/p99.9; "added" is the difference of a percentile via a proxy and direct.
 *   (s) streaming: `stream: true`, exactly 64 output tokens (max_tokens 64 on a prompt whose answer is longer),
 *       `stream_options.include_usage`, the upstream pausing BENCH_INTER_TOKEN_MS between events, paced: time to
 *       the first token (the first event with a non-empty `choices[0].delta.content`) and to the last (`[DONE]`),
 *       the body read chunk by chunk as it arrives.
 *   (b) max throughput: autocannon, N connections, as fast as the answers come: calls/s direct, via the bare
 *       proxy, and metered calls/s via the gateway (each one a durable SQLite record and a signed receipt).
 *
 * For the gateway during the lower-rate paced run it prints the event-loop delay (p99 and the longest stall,
 * from prom-client's default metrics, reset on each scrape), GC time, and the store's timings when the gateway
 * exposes them: `tollgate_store_commit_seconds` (commits on the event loop), `tollgate_store_checkpoint_seconds`
 * (WAL checkpoints) and the gauge `tollgate_store_commit_max_seconds`; "n/a" when absent.
 *
 * Every gateway run uses a fixed request count (autocannon `amount`, or the paced generator's total), so no
 * call is cut off at the end; after a graceful stop the bench opens the gateway's store and checks that it
 * holds exactly one record per 2xx the generators received (streamed answers included).
 *
 * Every run also prints the CPU each process used per answered call (from /proc), and the machine's busy
 * and hypervisor-stolen time, since a 2-core box shared with the load generator and the upstream is the
 * bottleneck. The tables are printed as markdown, ready to paste into bench/README.md.
 *
 * Knobs (environment):
 *   BENCH_DURATION_S (10 per run)           BENCH_RATE (1000)
 *   BENCH_LOW_RATE (half the gateway's capacity measured by the warm-up)
 *   BENCH_PACED_CONNECTIONS (128: the paced generator's connection limit)
 *   BENCH_STREAM_RATE (the lower rate / 2)  BENCH_INTER_TOKEN_MS (the upstream's pause between SSE events, 1)
 *   BENCH_CONNECTIONS (64, phase b)         BENCH_RATE_CONNECTIONS (10, autocannon in phase a)
 *   BENCH_BUYERS (8, at most 8)             BENCH_LOG_LEVEL (gateway log level, "warn")
 *   BENCH_ACCOUNT_CACHE_MS (the gateway's chain.accountCacheMs; 2000, the gateway's default)
 *   BENCH_CPU_PROF=1 (run the gateway with --cpu-prof; print where its time went; keep the profile)
 *   BENCH_GATEWAY_NODE_ARGS (extra Node flags for the gateway process, space-separated)
 *   BENCH_TOKENIZER=0 (skip the tokenizer throughput table from bench/tokenizer-throughput.ts)
 *   BENCH_LEAD_IN_S (1: untimed seconds of calls before each paced run, at its rate and on its pool)
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
import { cpuSecondsOf, machineTicks, runQueueSecondsOf } from "./lib/machine";
import { stats, type Stats } from "./lib/stats";

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const MAX_CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const RATE_CONNECTIONS = Number(process.env.BENCH_RATE_CONNECTIONS ?? 10);
const BUYERS = Math.min(8, Number(process.env.BENCH_BUYERS ?? 8));
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? "warn";
const ACCOUNT_CACHE_MS = Number(process.env.BENCH_ACCOUNT_CACHE_MS ?? 2_000);
/**
 * The upstream's pause between SSE events. With 0 it writes a whole answer at once, so the first and the last
 * token arrive together and the streaming row cannot tell the work before the first token from the work after
 * the last; 1 ms (tens of ms for the few dozen events of a 64-token answer; the probe prints how many) keeps them apart.
 */
/** Most keep-alive connections the paced generator opens (it opens one more whenever all are busy). */
const PACED_CONNECTIONS = Number(process.env.BENCH_PACED_CONNECTIONS ?? 128);
const INTER_TOKEN_MS = Number(process.env.BENCH_INTER_TOKEN_MS ?? 1);
/**
 * Seconds of untimed calls each paced run sends first, at its rate and on its pool. Each target sits idle while
 * the others are measured, so without it every paced run opened on a cold target: the gateway's first call per
 * buyer after 16 s idle waits for an on-chain snapshot (5–7 eth_calls to the Hardhat EVM in this process, 8
 * buyers at once: 170–390 ms), the generator opens a connection for each call that piles up behind those, and
 * that cold start was the whole p99 at half capacity. The lead-in's slowest call is printed, so it stays visible.
 */
const LEAD_IN_S = Number(process.env.BENCH_LEAD_IN_S ?? 1);
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
/** Extra Node flags for the gateway process only, e.g. "--max-semi-space-size=64" or "--heap-prof". */
const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
const WARMUP_CALLS = 4_000;
/** Output tokens of every streamed answer (issue 12: "a row with stream: true and 64 output tokens"). */
const STREAM_TOKENS = 64;
/** Where a store commit or checkpoint becomes a stall (issue 12), and the histogram bucket that counts below it. */
const STALL_MS = 5;
const ROOT = path.resolve(__dirname, "..");

const PROMPT = { model: "small-model", messages: [{ role: "user", content: "Write one sentence about a toll bridge at dawn." }], max_tokens: 16 };

/** CPU µs per answered call of each process during one run. */
interface CpuPerCall {
  gateway?: number;
  sim?: number;
  bench?: number;
  /** µs per call the proxy's (bare or gateway) main thread was runnable but waiting for a core. */
  runQueue?: number;
}

/** Share of the machine's CPU time during one run (%), all cores. */
interface MachineShare {
  busy?: number;
  steal?: number;
}

/** `# HELP` texts of the gateway's metrics, as last scraped. */
const helpTexts = new Map<string, string>();

/** The gateway's /metrics as `name{labels}` → value; each metric's `# HELP` text goes to `helpTexts`. */
async function gatewayMetrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("# HELP ")) {
      const [name, ...help] = line.slice(7).split(" ");
      helpTexts.set(name, help.join(" "));
    }
    if (line.startsWith("#") || line.trim() === "") continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/** The series of one metric name (any labels), e.g. `x_count` and `x_count{kind="a"}`, whose key holds every filter. */
function series(metrics: Map<string, number>, name: string, ...labelFilters: string[]): number[] {
  const values: number[] = [];
  for (const [key, value] of metrics) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    if (!labelFilters.every((filter) => key.includes(filter))) continue;
    values.push(value);
  }
  return values;
}

/** What a histogram recorded between two scrapes (histograms are cumulative), over its label sets holding `label`. */
interface HistogramDelta {
  count: number;
  /** In the metric's unit (seconds for the timings). */
  sum: number;
  /** Per bound asked for: the observations above it, or undefined when the histogram has no bucket there. */
  over: Array<[number, number | undefined]>;
  /** Observations above STALL_MS (one of the default bounds); undefined if the histogram has no bucket there. */
  overStall?: number;
}

function histogramDelta(before: Map<string, number>, after: Map<string, number>, name: string, bounds: readonly number[] = [STALL_MS / 1000], label?: string): HistogramDelta | undefined {
  const filters = label === undefined ? [] : [label];
  if (series(after, `${name}_count`, ...filters).length === 0) return undefined;
  const delta = (metric: string, ...more: string[]) => {
    const total = (m: Map<string, number>) => series(m, metric, ...filters, ...more).reduce((x, y) => x + y, 0);
    return total(after) - total(before);
  };
  const count = delta(`${name}_count`);
  const over = bounds.map((bound): [number, number | undefined] => {
    const le = `le="${bound}"`;
    return [bound, series(after, `${name}_bucket`, ...filters, le).length === 0 ? undefined : count - delta(`${name}_bucket`, le)];
  });
  return { count, sum: delta(`${name}_sum`), over, overStall: over.find(([bound]) => bound === STALL_MS / 1000)?.[1] };
}

/** The gateway process during one run, read from its /metrics before and after. */
interface GatewayLoop {
  lagP99Ms: number;
  lagMaxMs: number;
  gcMs: number;
  gcMajorMs: number;
  /** GC pauses longer than 10 ms (prom-client's GC histogram has a bucket at 10 ms, none at 5), all kinds. */
  gcPausesOver10Ms: number;
  commits?: HistogramDelta;
  checkpoints?: HistogramDelta;
  /** The longest commit since the gateway started (a gauge). */
  commitMaxMs?: number;
  /** Group commits and the records they wrote (`tollgate_store_group_records`), when exposed. */
  groups?: { commits: number; records: number };
  /**
   * The gateway's own view of its chat calls (`tollgate_http_request_duration_seconds`, from the request's
   * first byte to its response's last): how many took longer than each bound. Set against the client's
   * percentiles, it tells time spent in the gateway from time spent waiting for a CPU or in the client.
   */
  serverSide?: HistogramDelta;
  /** Calls that waited for a buyer's on-chain snapshot longer than each bound (`tollgate_balance_wait_seconds`). */
  balanceWaits?: HistogramDelta;
}

const SERVER_SIDE_BOUNDS_S = [0.005, 0.025, 0.1, 0.25];
const BALANCE_WAIT_BOUNDS_S = [0.001, 0.025, 0.1, 0.25];

/** Event-loop delay since the previous scrape (prom-client resets it on each scrape), GC and store timings between two scrapes. */
function gatewayLoop(before: Map<string, number>, after: Map<string, number>): GatewayLoop {
  const gc = (kind: string) => ((after.get(`nodejs_gc_duration_seconds_sum{kind="${kind}"}`) ?? 0) - (before.get(`nodejs_gc_duration_seconds_sum{kind="${kind}"}`) ?? 0)) * 1000;
  const commitMax = series(after, "tollgate_store_commit_max_seconds");
  const groups = histogramDelta(before, after, "tollgate_store_group_records");
  return {
    lagP99Ms: (after.get("nodejs_eventloop_lag_p99_seconds") ?? NaN) * 1000,
    lagMaxMs: (after.get("nodejs_eventloop_lag_max_seconds") ?? NaN) * 1000,
    gcMs: gc("minor") + gc("major") + gc("incremental") + gc("weakcb"),
    gcMajorMs: gc("major"),
    gcPausesOver10Ms: histogramDelta(before, after, "nodejs_gc_duration_seconds", [0.01])?.over[0][1] ?? 0,
    commits: histogramDelta(before, after, "tollgate_store_commit_seconds"),
    checkpoints: histogramDelta(before, after, "tollgate_store_checkpoint_seconds"),
    commitMaxMs: commitMax.length === 0 ? undefined : Math.max(...commitMax) * 1000,
    groups: groups && { commits: groups.count, records: groups.sum },
    serverSide: histogramDelta(before, after, "tollgate_http_request_duration_seconds", SERVER_SIDE_BOUNDS_S, 'route="chat.completions"'),
    balanceWaits: histogramDelta(before, after, "tollgate_balance_wait_seconds", BALANCE_WAIT_BOUNDS_S),
  };
}

const countOver = (values: Float64Array, bound: number) => values.reduce((n, v) => (v > bound ? n + 1 : n), 0);
const ms = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(3) : "n/a");
const ms1 = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(1) : "n/a");
const signed = (v: number) => (Number.isFinite(v) ? `${v < 0 ? "−" : "+"}${Math.abs(v).toFixed(3)}` : "n/a");
const us = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(0) : "n/a");
const pct = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(0) : "n/a");
const log = (line: string) => console.log(`[bench] ${line}`);

/** "count / above 5 ms / sum ms" of a store histogram, or n/a when the gateway does not expose it. */
function histogramCells(h: HistogramDelta | undefined): string {
  if (!h) return "n/a (not exposed)";
  return `${h.count} / ${h.overStall === undefined ? `n/a (no bucket at ${STALL_MS} ms)` : h.overStall} / ${(h.sum * 1000).toFixed(1)}`;
}

function recordsPerGroup(loop: GatewayLoop): string {
  if (!loop.groups) return "n/a (not exposed)";
  const { commits, records } = loop.groups;
  return `${commits > 0 ? (records / commits).toFixed(2) : "n/a"} (${records.toFixed(0)} records in ${commits} commits)`;
}

function describeLoop(loop: GatewayLoop): string {
  return (
    `gateway event-loop delay p99 ${ms1(loop.lagP99Ms)} ms, longest stall ${ms1(loop.lagMaxMs)} ms; GC ${loop.gcMs.toFixed(0)} ms (major ${loop.gcMajorMs.toFixed(0)} ms); ` +
    `store commits (count / > ${STALL_MS} ms / sum ms) ${histogramCells(loop.commits)}; checkpoints ${histogramCells(loop.checkpoints)}; longest commit since start ${ms1(loop.commitMaxMs)} ms; records per group commit ${recordsPerGroup(loop)}`
  );
}

interface Target {
  name: "direct" | "bare" | "gateway";
  label: string;
  origin: string;
  /** The chat completions path on this target. */
  chatPath: string;
  requests: LoadJob["requests"];
  streamRequests: LoadJob["requests"];
  /** The process in front of the upstream (the bare proxy or the gateway), whose CPU per call is measured. */
  pid?: number;
}

/** A streamed answer read whole, for the checks before the timed streaming runs. */
interface StreamProbe {
  status: number;
  contentTokens?: number;
  finishReason?: string;
  content: string;
  receipt: boolean;
  done: boolean;
  /** `data:` events, [DONE] included. */
  events: number;
}

async function probeStream(origin: string, pathname: string, headers: Record<string, string>, body: string): Promise<StreamProbe> {
  const answer = await fetch(`${origin}${pathname}`, { method: "POST", headers, body });
  const probe: StreamProbe = { status: answer.status, content: "", receipt: false, done: false, events: 0 };
  for (const event of (await answer.text()).split("\n\n")) {
    for (const line of event.split("\n")) {
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      probe.events++;
      if (data === "[DONE]") {
        probe.done = true;
        continue;
      }
      const chunk = JSON.parse(data) as {
        choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
        usage?: { completion_tokens?: number } | null;
        tollgate_receipt?: unknown;
      };
      probe.content += chunk.choices?.[0]?.delta?.content ?? "";
      probe.finishReason = chunk.choices?.[0]?.finish_reason ?? probe.finishReason;
      if (chunk.usage?.completion_tokens !== undefined) probe.contentTokens = chunk.usage.completion_tokens;
      if (chunk.tollgate_receipt !== undefined) probe.receipt = true;
    }
  }
  return probe;
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
  // On Hardhat's in-process network the chain runs in this process, beside the load generator's thread, and is
  // served over JSON-RPC from here. With `--network localhost` (a `hardhat node` of its own, see
  // `npm run bench:gateway:node-chain`) the gateway talks to that node directly and this process only loads.
  const networkUrl = (hre.network.config as { url?: string }).url;
  const rpc = networkUrl ? { url: networkUrl, close: async () => undefined } : await startRpcServer(hre.network.provider);
  log(`chain ${chainId} served at ${rpc.url}${networkUrl ? " (a node process of its own)" : " (Hardhat in this process)"}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-bench-"));
  const profileDir = path.join(dir, "cpu-profile");
  try {
    // --- servers, each in its own process ----------------------------------------------------------
    log("starting the simulated upstream and the gateway (child processes)…");
    const sim = await startSimulatedUpstreamProcess({ args: ["--latency-ms", "0", "--inter-token-delay-ms", String(INTER_TOKEN_MS)] });
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
    const headersFor = (key: string) => ({ "content-type": "application/json", authorization: `Bearer ${key}` });

    // --- the streamed prompt: one whose natural answer is longer than STREAM_TOKENS, so max_tokens cuts it at exactly that
    const simOrigin = new URL(sim.url).origin;
    const simChat = `${new URL(sim.url).pathname}/chat/completions`;
    let found: string | undefined;
    for (let variant = 0; variant < 64 && found === undefined; variant++) {
      const candidate = JSON.stringify({
        model: "small-model",
        messages: [{ role: "user", content: `Tell a short story about a toll bridge at dawn (${variant}).` }],
        max_tokens: STREAM_TOKENS,
        stream: true,
        stream_options: { include_usage: true },
      });
      const probe = await probeStream(simOrigin, simChat, headersFor(keys[0]), candidate);
      if (probe.status === 200 && probe.done && probe.contentTokens === STREAM_TOKENS && probe.finishReason === "length") found = candidate;
    }
    if (found === undefined) throw new Error(`no prompt found whose simulated answer is cut at ${STREAM_TOKENS} tokens: did the simulated upstream's answer lengths change?`);
    const streamBody = found;

    const body = JSON.stringify(PROMPT);
    const requestsFor = (pathname: string, payload: string): LoadJob["requests"] => keys.map((key) => ({ method: "POST", path: pathname, headers: headersFor(key), body: payload }));
    const targetOf = (name: Target["name"], label: string, origin: string, chatPath: string, pid?: number): Target => ({
      name,
      label,
      origin,
      chatPath,
      requests: requestsFor(chatPath, body),
      streamRequests: requestsFor(chatPath, streamBody),
      pid,
    });
    const targets: Target[] = [
      targetOf("direct", "direct", simOrigin, simChat),
      targetOf("bare", "bare proxy", new URL(bare.url).origin, `${new URL(bare.url).pathname}/chat/completions`, bare.pid),
      targetOf("gateway", "gateway", new URL(gateway.url).origin, "/v1/chat/completions", gateway.pid),
    ];
    const modules = loadModules();

    let gateway2xx = 0;
    const failures: string[] = [];
    let stealTicks = 0;
    let totalTicks = 0;
    let maxStealPct = 0;

    // Every target must stream the same 64 tokens to the end (the gateway with its receipt) before any timing.
    const eventCounts: string[] = [];
    for (const target of targets) {
      const probe = await probeStream(target.origin, target.chatPath, headersFor(keys[0]), streamBody);
      eventCounts.push(`${target.label} ${probe.events}`);
      if (target.name === "gateway" && probe.status === 200) gateway2xx++;
      const problems = [
        probe.status !== 200 && `HTTP ${probe.status}`,
        !probe.done && "no [DONE]",
        probe.contentTokens !== STREAM_TOKENS && `usage.completion_tokens ${probe.contentTokens} (expected ${STREAM_TOKENS})`,
        probe.content.length === 0 && "no content",
        target.name === "gateway" && !probe.receipt && "no tollgate_receipt event",
      ].filter(Boolean);
      if (problems.length > 0) failures.push(`streamed probe → ${target.label}: ${problems.join(", ")}`);
    }
    log(`streamed prompt: ${Buffer.byteLength(streamBody)}-byte body, ${STREAM_TOKENS} output tokens (finish_reason "length"); SSE events per answer: ${eventCounts.join(", ")}`);

    type RunResult = LoadResult & { cpu: CpuPerCall; machine: MachineShare; loop?: GatewayLoop; stats: Stats; firstTokenStats?: Stats };
    const run = async (label: string, target: Target, job: Omit<LoadJob, "origin" | "requests" | "modules">): Promise<RunResult> => {
      log(`${label} → ${target.label}: ${job.amount} calls${job.rate ? ` at ${job.rate}/s` : ""}, ${job.kind}${job.stream ? ", streamed" : ""}, ${job.connections} connections…`);
      // Counters are read where the timed calls start: after the lead-in's last answer when there is one, so
      // CPU, event-loop delay, GC and the store's timings cover the timed window only.
      let metricsBefore: Map<string, number> | undefined;
      let before!: { proxy?: number; runQueue?: number; sim?: number; bench: NodeJS.CpuUsage; machine: ReturnType<typeof machineTicks> };
      const readBefore = async () => {
        metricsBefore = target.name === "gateway" ? await gatewayMetrics(gateway.url) : undefined;
        before = { proxy: target.pid === undefined ? undefined : cpuSecondsOf(target.pid), runQueue: target.pid === undefined ? undefined : runQueueSecondsOf(target.pid), sim: cpuSecondsOf(sim.pid), bench: process.cpuUsage(), machine: machineTicks() };
      };
      if (!job.leadIn) await readBefore();
      const result = await runLoad({ ...job, origin: target.origin, requests: job.stream ? target.streamRequests : target.requests, modules }, readBefore);
      const answered = result.ok;
      const perCall = (start: number | undefined, end: number | undefined) => (start === undefined || end === undefined ? undefined : ((end - start) * 1e6) / answered);
      const benchUsage = process.cpuUsage(before.bench);
      const cpu: CpuPerCall = {
        gateway: target.pid === undefined ? undefined : perCall(before.proxy, cpuSecondsOf(target.pid)),
        sim: perCall(before.sim, cpuSecondsOf(sim.pid)),
        bench: (benchUsage.user + benchUsage.system) / answered,
        runQueue: target.pid === undefined ? undefined : perCall(before.runQueue, runQueueSecondsOf(target.pid)),
      };
      const after = machineTicks();
      const machine: MachineShare = {};
      if (after && before.machine) {
        const total = after.total - before.machine.total;
        machine.busy = (100 * (after.busy - before.machine.busy)) / total;
        machine.steal = (100 * (after.steal - before.machine.steal)) / total;
        stealTicks += after.steal - before.machine.steal;
        totalTicks += total;
        maxStealPct = Math.max(maxStealPct, machine.steal);
      }
      if (target.name === "gateway") gateway2xx += answered + (result.leadInOk ?? 0);
      if (result.non2xx > 0 || result.errors > 0) {
        failures.push(`${label} → ${target.label}: ${result.non2xx} non-2xx, ${result.errors} errors${result.badStreams ? ` (${result.badStreams} streams without a token or [DONE])` : ""}`);
      }
      const s = stats(result.latencies);
      const first = result.firstToken ? stats(result.firstToken) : undefined;
      log(
        `   ${result.ok} ok, ${result.non2xx} non-2xx, ${result.errors} errors in ${result.elapsedS.toFixed(2)} s (${(result.ok / result.elapsedS).toFixed(0)}/s); ` +
          (first ? `first token p50 ${ms(first.p50)} ms, p99 ${ms(first.p99)} ms; last token ` : "") +
          `p50 ${ms(s.p50)} ms, p99 ${ms(s.p99)} ms, p99.9 ${ms(s.p999)} ms, max ${ms(s.max)} ms` +
          (result.connects !== undefined ? `; ${result.connects} connections opened, ${countOver(result.latencies, 100)} answers over 100 ms` : "") +
          (job.leadIn ? `; untimed lead-in before it: ${result.leadInOk} calls, slowest ${ms(result.leadInMaxMs ?? 0)} ms` : ""),
      );
      log(
        `   CPU per call: ${target.name === "bare" ? "bare proxy" : "gateway"} ${us(cpu.gateway)} µs, simulated upstream ${us(cpu.sim)} µs, load generator + chain ${us(cpu.bench)} µs; ` +
          `machine busy ${pct(machine.busy)}%, stolen by the hypervisor ${pct(machine.steal)}%` +
          (cpu.runQueue === undefined ? "" : `; the ${target.name === "bare" ? "bare proxy" : "gateway"}'s event loop waited for a core ${us(cpu.runQueue)} µs per call`),
      );
      const loop = metricsBefore ? gatewayLoop(metricsBefore, await gatewayMetrics(gateway.url)) : undefined;
      if (loop) log(`   ${describeLoop(loop)}`);
      return { ...result, cpu, machine, loop, stats: s, firstTokenStats: first };
    };
    type ByTarget = Record<Target["name"], RunResult>;
    const eachTarget = async (label: string, job: (target: Target) => Omit<LoadJob, "origin" | "requests" | "modules">): Promise<ByTarget> => {
      const results: Partial<ByTarget> = {};
      for (const target of targets) results[target.name] = await run(label, target, job(target));
      return results as ByTarget;
    };

    // --- warm-up (JIT, connection pools, the gateway's buyer cache); the gateway's capacity --------------
    const warm = await eachTarget("warm-up", () => ({ kind: "autocannon", amount: WARMUP_CALLS, connections: MAX_CONNECTIONS }));
    const warmCapacity = warm.gateway.ok / warm.gateway.elapsedS;
    const lowRate = process.env.BENCH_LOW_RATE !== undefined ? Number(process.env.BENCH_LOW_RATE) : Math.max(1, Math.round(warmCapacity / 2));
    const lowRateWhy =
      process.env.BENCH_LOW_RATE !== undefined
        ? `set by BENCH_LOW_RATE (the gateway's warm-up capacity was ${warmCapacity.toFixed(0)} calls/s)`
        : `half the gateway's capacity as this run's warm-up measured it (${warmCapacity.toFixed(0)} calls/s, autocannon, ${MAX_CONNECTIONS} connections, ${WARMUP_CALLS} calls)`;
    const streamRate = Number(process.env.BENCH_STREAM_RATE ?? Math.max(1, Math.round(lowRate / 2)));
    log(`lower paced rate: ${lowRate} req/s, ${lowRateWhy}; streaming rate ${streamRate} req/s${process.env.BENCH_STREAM_RATE ? " (BENCH_STREAM_RATE)" : " (half the lower rate)"}`);

    // --- (a) paced, the lower rate first: a gateway that cannot keep up with RATE leaves a long queue (and a grown heap) behind
    const pacedLow = await eachTarget("(a) paced, lower rate", () => ({ kind: "paced", amount: lowRate * DURATION_S, rate: lowRate, leadIn: Math.round(lowRate * LEAD_IN_S), connections: PACED_CONNECTIONS }));

    // --- (s) streaming: a short untimed warm-up of the streaming paths, then the measured run ------------
    await eachTarget("(s) streamed, warm-up", () => ({ kind: "paced", amount: Math.max(50, streamRate), rate: streamRate, connections: PACED_CONNECTIONS, stream: true }));
    const streamed = await eachTarget("(s) streamed", () => ({ kind: "paced", amount: streamRate * DURATION_S, rate: streamRate, leadIn: Math.round(streamRate * LEAD_IN_S), connections: PACED_CONNECTIONS, stream: true }));

    // --- (a) fixed rate -------------------------------------------------------------------------------
    const paced = await eachTarget("(a) paced", () => ({ kind: "paced", amount: RATE * DURATION_S, rate: RATE, leadIn: Math.round(RATE * LEAD_IN_S), connections: PACED_CONNECTIONS }));
    const cannonRate = await eachTarget("(a) autocannon overallRate", () => ({ kind: "autocannon", amount: RATE * DURATION_S, rate: RATE, connections: RATE_CONNECTIONS }));

    // --- (b) max throughput: a fixed count sized from the warm-up, so each run lasts about DURATION_S --
    const throughput = await eachTarget("(b) max throughput", (target) => {
      const estimate = warm[target.name].ok / warm[target.name].elapsedS;
      return { kind: "autocannon", amount: Math.max(MAX_CONNECTIONS * 10, Math.round(estimate * DURATION_S)), connections: MAX_CONNECTIONS };
    });
    const perSecond = (r: RunResult) => r.ok / r.elapsedS;

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

    // --- the tables (markdown, ready to paste) -----------------------------------------------------------
    type Percentile = "p50" | "p99" | "p999";
    const PERCENTILES: Array<[Percentile, string]> = [
      ["p50", "p50"],
      ["p99", "p99"],
      ["p999", "p99.9"],
    ];
    const statOf = (r: RunResult, firstToken: boolean) => (firstToken ? r.firstTokenStats! : r.stats);
    const added = (of: ByTarget, via: "bare" | "gateway", p: Percentile, firstToken = false) => statOf(of[via], firstToken)[p] - statOf(of.direct, firstToken)[p];
    const latencyRows = (load: string, of: ByTarget, what = "latency", firstToken = false) =>
      PERCENTILES.map(
        ([p, name]) =>
          `| ${load} | ${name} ${what} (ms) | ${ms(statOf(of.direct, firstToken)[p])} | ${ms(statOf(of.bare, firstToken)[p])} (${signed(added(of, "bare", p, firstToken))}) | ${ms(statOf(of.gateway, firstToken)[p])} (${signed(added(of, "gateway", p, firstToken))}) |`,
      );
    const cpuCells = (r: RunResult, proxy: boolean) => `${proxy ? us(r.cpu.gateway) : "–"} / ${us(r.cpu.sim)} / ${us(r.cpu.bench)}`;
    const cpuRow = (load: string, of: ByTarget) =>
      `| ${load} | CPU µs per call: proxy / upstream / load generator | ${cpuCells(of.direct, false)} | ${cpuCells(of.bare, true)} | ${cpuCells(of.gateway, true)} |`;
    const machineRow = (load: string, of: ByTarget) =>
      `| ${load} | machine busy / stolen by the hypervisor (%) | ${pct(of.direct.machine.busy)} / ${pct(of.direct.machine.steal)} | ${pct(of.bare.machine.busy)} / ${pct(of.bare.machine.steal)} | ${pct(of.gateway.machine.busy)} / ${pct(of.gateway.machine.steal)} |`;
    const lowLoad = `${lowRate} req/s${process.env.BENCH_LOW_RATE === undefined ? " (½ capacity)" : ""}, paced open loop`;
    const streamLoad = `stream, ${STREAM_TOKENS} tokens, ${streamRate} req/s, paced`;
    const maxLoad = `max, autocannon, ${MAX_CONNECTIONS} conns`;
    const ratio = perSecond(throughput.gateway) / perSecond(throughput.bare);
    const maxRow = (metric: string, cell: (r: RunResult) => string, gatewayNote = "") =>
      `| ${maxLoad} | ${metric} | ${cell(throughput.direct)} | ${cell(throughput.bare)} | ${cell(throughput.gateway)}${gatewayNote} |`;

    const table = [
      `Direct vs a bare Node proxy vs the metered gateway (loopback; simulated upstream with no added latency, ${INTER_TOKEN_MS} ms between SSE events; ` +
        `non-streaming chat: ${Buffer.byteLength(body)}-byte body, max_tokens 16; streaming: ${Buffer.byteLength(streamBody)}-byte body, ${STREAM_TOKENS} output tokens, include_usage; ${BUYERS} buyers; ${DURATION_S} s per run)`,
      "",
      "| load | metric | direct | bare proxy (added) | metered gateway (added) |",
      "|:---|:---|---:|---:|---:|",
      ...latencyRows(lowLoad, pacedLow),
      cpuRow(lowLoad, pacedLow),
      machineRow(lowLoad, pacedLow),
      ...latencyRows(streamLoad, streamed, "time to first token", true),
      ...latencyRows(streamLoad, streamed, "time to last token"),
      cpuRow(streamLoad, streamed),
      ...latencyRows(`${RATE} req/s, paced open loop`, paced),
      ...latencyRows(`${RATE} req/s, autocannon overallRate, ${RATE_CONNECTIONS} conns`, cannonRate),
      maxRow("calls/s", (r) => perSecond(r).toFixed(0), ` metered (${ratio.toFixed(2)}× the bare proxy)`),
      maxRow("p50 / p99 / p99.9 latency (ms)", (r) => `${ms(r.stats.p50)} / ${ms(r.stats.p99)} / ${ms(r.stats.p999)}`),
      cpuRow(maxLoad, throughput),
      machineRow(maxLoad, throughput),
    ];

    const loop = pacedLow.gateway.loop!;
    const loopTable = [
      `The gateway process during the paced ${lowRate} req/s run (${pacedLow.gateway.ok} calls)`,
      "",
      "| metric | value |",
      "|:---|---:|",
      `| event-loop delay p99 / longest stall (ms) | ${ms1(loop.lagP99Ms)} / ${ms1(loop.lagMaxMs)} |`,
      `| GC, all / major (ms); pauses over 10 ms | ${loop.gcMs.toFixed(0)} / ${loop.gcMajorMs.toFixed(0)}; ${loop.gcPausesOver10Ms} |`,
      `| store commits on the event loop (\`tollgate_store_commit_seconds\`): count / > ${STALL_MS} ms / sum (ms) | ${histogramCells(loop.commits)} |`,
      `| WAL checkpoints (\`tollgate_store_checkpoint_seconds\`): count / > ${STALL_MS} ms / sum (ms) | ${histogramCells(loop.checkpoints)} |`,
      `| longest commit since the gateway started (\`tollgate_store_commit_max_seconds\`, ms) | ${ms1(loop.commitMaxMs)} |`,
      `| records per group commit (\`tollgate_store_group_records\`) | ${recordsPerGroup(loop)} |`,
      `| chat calls the gateway itself timed (\`tollgate_http_request_duration_seconds\`) over ${SERVER_SIDE_BOUNDS_S.map((b) => `${b * 1000}`).join(" / ")} ms | ${
        loop.serverSide ? `${loop.serverSide.over.map(([, n]) => n ?? "n/a").join(" / ")} of ${loop.serverSide.count}` : "n/a"
      } |`,
      `| of those, calls that waited for the buyer's on-chain balance (\`tollgate_balance_wait_seconds\`) over ${BALANCE_WAIT_BOUNDS_S.map((b) => `${b * 1000}`).join(" / ")} ms | ${
        loop.balanceWaits ? `${loop.balanceWaits.over.map(([, n]) => n ?? "n/a").join(" / ")} of ${loop.balanceWaits.count}` : "n/a"
      } |`,
    ];

    // --- the targets ---------------------------------------------------------------------------------------
    const verdict = (met: boolean | undefined) => (met === undefined ? "n/a" : met ? "met" : "missed");
    const loopQuiet = Number.isFinite(loop.lagMaxMs) && loop.lagMaxMs <= STALL_MS;
    const commitVerdict = (() => {
      const c = loop.commits;
      if (!c || c.overStall === undefined) return `n/a (not exposed)${loopQuiet ? `; the loop never stalled > ${STALL_MS} ms, so no commit did` : ""}`;
      return verdict(c.overStall === 0);
    })();
    const checkpointVerdict = (() => {
      const c = loop.checkpoints;
      if (!c || c.overStall === undefined) return `n/a (not exposed)${loopQuiet ? `; the loop never stalled > ${STALL_MS} ms, so no checkpoint did` : ""}`;
      if (c.overStall === 0) return "met";
      // Where checkpoints run is the gateway's to say: its metric's help text names the thread.
      const help = helpTexts.get("tollgate_store_checkpoint_seconds") ?? "";
      if (/worker thread/i.test(help)) return `met: off the event loop ("${help}")`;
      return loopQuiet ? `met (the ${c.overStall} slow ones ran off the loop: it never stalled > ${STALL_MS} ms)` : `missed if checkpoints run on the event loop`;
    })();
    const stallCell = (h: HistogramDelta | undefined) => (h && h.overStall !== undefined ? `${h.overStall} of ${h.count} > ${STALL_MS} ms` : "n/a");
    const addedTriple = (of: ByTarget, firstToken = false) => PERCENTILES.map(([p]) => signed(added(of, "gateway", p, firstToken))).join(" / ");
    const targetsTable = [
      `Targets (issue 12), measured in this run`,
      "",
      "| target | measured | verdict |",
      "|:---|:---|:---|",
      `| metered calls/s ≥ 0.6× the bare proxy's | ${ratio.toFixed(2)}× (${perSecond(throughput.gateway).toFixed(0)} / ${perSecond(throughput.bare).toFixed(0)} calls/s) | ${verdict(ratio >= 0.6)} |`,
      `| added p50 ≤ 1 ms at half capacity (paced ${lowRate} req/s) | ${signed(added(pacedLow, "gateway", "p50"))} ms | ${verdict(added(pacedLow, "gateway", "p50") <= 1)} |`,
      `| added p99 ≤ 5 ms at half capacity | ${signed(added(pacedLow, "gateway", "p99"))} ms | ${verdict(added(pacedLow, "gateway", "p99") <= 5)} |`,
      `| added p99.9 at half capacity | ${signed(added(pacedLow, "gateway", "p999"))} ms | printed |`,
      `| event-loop delay p99 / longest stall of the gateway, same run | ${ms1(loop.lagP99Ms)} / ${ms1(loop.lagMaxMs)} ms | printed |`,
      `| no store commit on the event loop > ${STALL_MS} ms, same run | ${stallCell(loop.commits)}; longest since start ${ms1(loop.commitMaxMs)} ms | ${commitVerdict} |`,
      `| no WAL checkpoint stall on the event loop > ${STALL_MS} ms, same run | ${stallCell(loop.checkpoints)} | ${checkpointVerdict} |`,
      `| streaming (${STREAM_TOKENS} tokens, ${streamRate} req/s): added time to first token p50 / p99 / p99.9 | ${addedTriple(streamed, true)} ms | printed |`,
      `| streaming: added time to last token p50 / p99 / p99.9 | ${addedTriple(streamed)} ms | printed |`,
    ];

    const notes = [
      `Lower paced rate: ${lowRate} req/s, ${lowRateWhy}; the max-throughput run later measured ${perSecond(throughput.gateway).toFixed(0)} metered calls/s, so it ran at ${((100 * lowRate) / perSecond(throughput.gateway)).toFixed(0)} % of that.`,
      `Usage store after a graceful stop: ${records} records for ${gateway2xx} 2xx answers via the gateway, streamed ones included (sequences ${firstSequence}..${nextSequence - 1n}): ${storeOk ? "one record per answer" : "MISMATCH"}.`,
      `Stolen by the hypervisor: ${totalTicks > 0 ? ((100 * stealTicks) / totalTicks).toFixed(1) : "n/a"} % of the machine over all runs, at most ${maxStealPct.toFixed(0)} % in one run.`,
    ];
    const rule = "-".repeat(24);
    console.log(`\n${rule} markdown for bench/README.md ${rule}\n`);
    console.log([...table, "", ...loopTable, "", ...targetsTable, "", ...notes].join("\n"));
    console.log(`\n${rule} end of markdown ${rule}\n`);

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
