/**
 * Settlement throughput, gas per record and lag: `npx hardhat run bench/settlement-lag.ts` (npm run bench:settlement).
 *
 * A sustained load of metered calls goes through gateways to the settlement oracles, on the bench's Hardhat
 * chain with INTERVAL mining (automine off, one block every BENCH_BLOCK_MS), so "two blocks" is wall time.
 * One lane per batch interval (`oracle.batch.maxAgeMs`, default 1 s, 2 s and 5 s), all lanes at once, side by
 * side on the same chain and the same blocks:
 *
 *   load worker ──paced HTTP──▶ gateway process ──SQLite──▶ oracle process ──settleBatch──▶ chain
 *
 * Each lane has its own gateway (`server/gateway/main.ts`, its own signer key and usage store) and its own
 * oracle (`server/oracle/main.ts`, its own gas key), each an OS process started the way an operator starts
 * them (`node -r ts-node/register/transpile-only …`); both read one config file (the gateway part and its
 * `oracle` section). The simulated upstream is one more process. The chain is this process's Hardhat
 * network served over JSON-RPC; each lane's paced open-loop load generator runs on a worker thread.
 * Buyers: BENCH_BUYERS funded wallets, the first BENCH_CREDIT_BUYERS of them also holding credits of a
 * plan that covers both models (so batches name a plan for them), calling both models, round robin.
 *
 * Before the load, the chain's clock is put on the wall clock (Hardhat keeps any lead a burst of automined
 * blocks gave it, and the gateway then dates receipts on the chain's clock), interval mining starts, and a
 * short warm-up per lane (both models' tokenizers, JIT) is served and settled; it is not measured.
 *
 * Measured in the one run, per lane:
 *   - records settled per second: sustained during the load (records of the lane's batches mined during the
 *     load, after its first, over the time from its first to its last) and over load + drain; the drain
 *     time after the last answer;
 *   - gas per record as settled: Σ gasUsed of the lane's settlement receipts / records; batches and
 *     records per batch, and how many blocks apart the lane's batches landed;
 *   - lag from serving to on-chain settlement, p50/p90/p99/max, two ways:
 *       store: `settled_at − served_at` (settling block timestamp − receipt servedAt), both in whole
 *              seconds, so each value is the true lag ±1 s;
 *       wall clock: when the settling block was first seen by this process (polled every 25 ms) − when
 *              the load generator got the answer (the answer's receipt names its sequence);
 *     beside the target "batch interval + two blocks";
 *   - where the lag goes, from the oracle's own log times (it runs at log level debug): answer → broadcast
 *     of the record's batch, broadcast → block; per batch, due (oldest servedAt + interval) → broadcast and
 *     how much of that the batch waited for the previous settlement (the oracle has one transaction in
 *     flight at a time), block → marked settled in the store;
 *   - CPU of each gateway and oracle (/proc), the machine's busy share and what other processes took of
 *     it, and the JSON-RPC requests per second the gateways and oracles made, by method.
 * After the drain every lane is checked: one record per 2xx answer, warm-up included (the receipts'
 * sequences are exactly the store's, no repeats), every record settled, the chain's next sequence equal to
 * the store's, and the `BatchSettled` record counts equal to the records marked with each transaction.
 * About 1.5 minutes on 2 cores.
 *
 * Knobs (environment):
 *   BENCH_DURATION_S (40, load per lane)        BENCH_RATE (40 calls/s per lane)
 *   BENCH_BATCH_INTERVALS_MS ("1000,2000,5000") one lane per value
 *   BENCH_BLOCK_MS (1000)   BENCH_POLL_MS (100, oracle.pollMs)   BENCH_MAX_RECORDS (1000, oracle.batch.maxRecords)
 *   BENCH_BUYERS (8, at most 8)                 BENCH_CREDIT_BUYERS (4)
 *   BENCH_CPU_PROF=1 (run the first lane's gateway with --cpu-prof and print where its time went)
 *   BENCH_LOG_LEVEL (gateway log level, "warn"; the oracles log at "debug": the bench reads when each batch was broadcast and marked)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import hre, { ethers } from "hardhat";
import type { EIP1193Provider, RequestArguments } from "hardhat/types";
import { createPublicClient, custom, decodeEventLog, getAddress, toHex, type Address, type Hex, type PublicClient, type TransactionReceipt } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { createApiKey } from "../client";
import { tollgateAbi } from "../server/chain/abis";
import { MarketplaceReader } from "../server/chain/marketplace-reader";
import { deployLocalTollgate, LARGE_PRICES, SMALL_PRICES, USD } from "../scripts/lib/marketplace-fixtures";
import { killAllProcesses, spawnTsProcess, startGatewayProcess, startSimulatedUpstreamProcess, type GatewayProcess, type ManagedProcess } from "../scripts/lib/processes";
import { startRpcServer, type RpcServer } from "../scripts/lib/rpc-server";
import { loadModules, runLoad, type LoadJob, type LoadResult } from "./lib/load";
import { printCpuProfile } from "./lib/cpu-profile";
import { cpuSecondsOf, machineTicks } from "./lib/machine";
import { stats, type Stats } from "./lib/stats";

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 40);
const RATE = Number(process.env.BENCH_RATE ?? 40);
const INTERVALS_MS = (process.env.BENCH_BATCH_INTERVALS_MS ?? "1000,2000,5000").split(",").map((v) => Number(v.trim()));
const BLOCK_MS = Number(process.env.BENCH_BLOCK_MS ?? 1000);
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 100);
const MAX_RECORDS = Number(process.env.BENCH_MAX_RECORDS ?? 1000);
const BUYERS = Math.min(8, Number(process.env.BENCH_BUYERS ?? 8));
const CREDIT_BUYERS = Math.min(BUYERS, Number(process.env.BENCH_CREDIT_BUYERS ?? 4));
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? "warn";
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
const PROGRESS_MS = 3_000;
const BLOCK_WATCH_MS = 25;
const CONNECTIONS = 16;

const PROMPTS = [
  "Write one sentence about a toll bridge at dawn.",
  "List three things a ferry operator checks before the first crossing of the day, one line each.",
  "Summarize in two sentences why metered APIs settle usage in batches rather than per call.",
];
const MODELS = ["small-model", "large-model"];

const log = (line: string) => console.log(`[bench] ${line}`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : "n/a");

interface Lane {
  intervalMs: number;
  name: string;
  dir: string;
  signerKey: Hex;
  signer: Address;
  oracleKey: Hex;
  firstSequence: bigint;
  /** The first sequence of the measured load (the warm-up's records come before it). */
  measureFrom: number;
  /** Batches are counted by reason once the measured load starts. */
  measuring?: boolean;
  gateway?: GatewayProcess;
  oracle?: ManagedProcess;
  db?: Database.Database;
  keys?: string[];
  /** From the oracle's "batch settled" log lines: why each batch went (size, age, …). */
  reasons: Map<string, number>;
  /** Oracle log lines at warn level or above. */
  warnings: string[];
  /** From the oracle's debug and info lines (pino's `time`, epoch ms): when each settlement was broadcast and marked settled. */
  broadcastAt: Map<string, number>;
  markedAt: Map<string, number>;
  /** Batches the chain refused for now (a record served after the latest block's timestamp, …), retried next pass. */
  notYet: number;
  warmup?: LoadResult;
  result?: LoadResult;
  cpuAtStart?: { gateway?: number; oracle?: number };
  /** The gateway's CPU while no calls arrive (after the warm-up), % of one core. */
  gatewayIdleShare?: number;
  cpuAtEnd?: { gateway?: number; oracle?: number };
}

interface StoreRow {
  sequence: number;
  served_at: number;
  settled_at: number | null;
  settled_tx: string | null;
}

/** Follows the oracle's JSON log lines on stdout: when each batch was broadcast and marked, why it went, refusals, warnings. */
function watchOracleLog(lane: Lane, oracle: ManagedProcess): void {
  let pending = "";
  oracle.child.stdout!.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8");
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      let entry: { level?: number; msg?: string; reason?: string; time?: number; hash?: string; txHash?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      if (entry.msg === "transaction broadcast" && entry.hash && entry.time && !lane.broadcastAt.has(entry.hash)) lane.broadcastAt.set(entry.hash, entry.time);
      if (entry.msg === "batch settled" && entry.txHash && entry.time) lane.markedAt.set(entry.txHash, entry.time);
      if (entry.msg === "batch not settleable yet; retrying next pass" && lane.measuring) lane.notYet++;
      if (entry.msg === "batch settled" && entry.reason && lane.measuring) {
        const reason = entry.reason.startsWith("withdrawal") ? "withdrawal" : entry.reason;
        lane.reasons.set(reason, (lane.reasons.get(reason) ?? 0) + 1);
      }
      if ((entry.level ?? 0) >= 40 && lane.warnings.length < 50) lane.warnings.push(line.slice(0, 400));
    }
  });
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const cpus = os.cpus();
  log(`machine: ${cpus.length} × ${cpus[0]?.model ?? "?"}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`);
  log(
    `lanes (oracle.batch.maxAgeMs): ${INTERVALS_MS.join(", ")} ms; ${RATE} calls/s per lane for ${DURATION_S} s; blocks every ${BLOCK_MS} ms; ` +
      `oracle pollMs ${POLL_MS}, maxRecords ${MAX_RECORDS}, confirmations 1; ${BUYERS} buyers (${CREDIT_BUYERS} holding credits)`,
  );
  const provider = hre.network.provider;
  const client = createPublicClient({ transport: custom(provider) }) as PublicClient;

  // --- chain: marketplace, a credit plan on both models, one gateway key and one gas key per lane ------
  // Hardhat moves its clock forward for good whenever it has to date a block later than the wall clock (two
  // blocks in one second), so the setup packs its transactions into a few blocks and then resets the clock.
  log("deploying the marketplace on Hardhat's network…");
  const base = await deployLocalTollgate();
  const { token, tollgate: t, provider: seller } = base;
  const tollgate = getAddress(await t.getAddress());
  const reader = new MarketplaceReader(client, tollgate);
  const chainId = Number(base.chainId);
  const buyers = base.buyers.slice(0, BUYERS);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-settlement-bench-"));
  const lanes: Lane[] = INTERVALS_MS.map((intervalMs) => {
    const signerKey = generatePrivateKey();
    const dir = path.join(root, `lane-${intervalMs}ms`);
    fs.mkdirSync(dir);
    return {
      intervalMs,
      name: `${intervalMs / 1000} s`,
      dir,
      signerKey,
      signer: privateKeyToAddress(signerKey),
      oracleKey: generatePrivateKey(),
      firstSequence: 0n,
      measureFrom: 0,
      reasons: new Map(),
      warnings: [],
      broadcastAt: new Map(),
      markedAt: new Map(),
      notYet: 0,
    };
  });
  await inOneBlock([
    () => t.connect(seller).registerProvider(seller.address, "ipfs://bench-provider"),
    ...buyers.map((buyer) => () => token.mint(buyer.address, USD(1_000))),
    ...buyers.map((buyer) => () => token.connect(buyer).approve(tollgate, ethers.MaxUint256)),
  ]);
  const providerId = 1n; // the first provider of a fresh deployment
  await inOneBlock([
    () => t.connect(seller).listModel(providerId, "small-model", SMALL_PRICES),
    () => t.connect(seller).listModel(providerId, "large-model", LARGE_PRICES),
    ...lanes.map((lane) => () => t.connect(seller).setSignerAuthorization(providerId, lane.signer, true)),
    ...buyers.map((buyer) => () => t.connect(buyer).deposit(buyer.address, USD(500))),
  ]);
  await inOneBlock([() => t.connect(seller).defineCreditPlan(providerId, USD(1), USD("1.2"), [1n, 2n], 0)]);
  const planId = await t.creditPlanCount();
  await inOneBlock(buyers.slice(0, CREDIT_BUYERS).map((buyer) => () => t.connect(buyer).buyCredits(planId, 20n, buyer.address)));
  for (const lane of lanes) {
    await provider.request({ method: "hardhat_setBalance", params: [privateKeyToAddress(lane.oracleKey), toHex(10n ** 20n)] });
    lane.firstSequence = (await reader.signerStatus(lane.signer)).nextSequence;
  }
  await alignChainClock(client);
  // Served over JSON-RPC through counters: one endpoint for the gateways, one per oracle, to see what each asks of the node.
  const rpcCalls = new Map<string, Map<string, number>>();
  const countedRpc = (who: string) => {
    const calls = new Map<string, number>();
    rpcCalls.set(who, calls);
    const counting = Object.create(provider, {
      request: {
        value: (args: RequestArguments) => {
          calls.set(args.method, (calls.get(args.method) ?? 0) + 1);
          return provider.request(args);
        },
      },
    }) as EIP1193Provider;
    return startRpcServer(counting);
  };
  const rpc = await countedRpc("gateways");
  const oracleRpc = new Map<Lane, RpcServer>();
  for (const lane of lanes) oracleRpc.set(lane, await countedRpc(`oracle ${lane.name}`));
  log(`chain ${chainId} served at ${rpc.url}; ${Number(await client.getBlockNumber({ cacheTime: 0 }))} blocks of setup`);

  let blockWatch: NodeJS.Timeout | undefined;
  let progress: NodeJS.Timeout | undefined;
  const failures: string[] = [];
  try {
    // --- interval mining from here on: the servers start on a chain whose clock follows the wall clock ---
    await provider.request({ method: "evm_setAutomine", params: [false] });
    await provider.request({ method: "evm_setIntervalMining", params: [BLOCK_MS] });
    const seenAtMs = new Map<number, number>();
    let latestBlock = Number(await client.getBlockNumber({ cacheTime: 0 }));
    const pollBlocks = async () => {
      const n = Number(BigInt((await provider.request({ method: "eth_blockNumber" })) as string));
      const now = Date.now();
      for (let b = latestBlock + 1; b <= n; b++) seenAtMs.set(b, now);
      latestBlock = Math.max(latestBlock, n);
    };
    blockWatch = setInterval(() => void pollBlocks().catch(() => undefined), BLOCK_WATCH_MS);
    log(`interval mining on: one block every ${BLOCK_MS} ms`);

    // --- processes: the simulated upstream, then per lane a gateway and an oracle -------------------
    log(`starting the simulated upstream, ${lanes.length} gateways and ${lanes.length} oracles (child processes)…`);
    const sim = await startSimulatedUpstreamProcess({ args: ["--latency-ms", "0"] });
    await Promise.all(
      lanes.map(async (lane) => {
        fs.writeFileSync(path.join(lane.dir, "deployment.json"), JSON.stringify({ chainId, tollgate, deployBlock: 0 }));
        const config = {
          listen: { host: "127.0.0.1", port: 0 },
          chain: { deploymentFile: "deployment.json" },
          providerId: Number(providerId),
          store: { path: "usage.sqlite", durability: "process-crash" },
          upstreams: { sim: { baseUrl: sim.url, timeoutMs: 30_000 } },
          models: [
            { name: "small-model", modelId: 1, upstream: "sim", maxOutputTokens: 512 },
            { name: "large-model", modelId: 2, upstream: "sim", upstreamModel: "large-reasoning", maxOutputTokens: 1024 },
          ],
          limits: { requestsPerMinute: 0 },
          log: { level: LOG_LEVEL },
          oracle: {
            listen: { host: "127.0.0.1", port: 0 },
            batch: { maxRecords: MAX_RECORDS, maxAgeMs: lane.intervalMs },
            pollMs: POLL_MS,
            confirmations: 1,
            journalPath: "oracle-journal.json",
          },
        };
        const configPath = path.join(lane.dir, "tollgate.config.json");
        fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
        const profile = CPU_PROF && lane === lanes[0] ? ["--cpu-prof", `--cpu-prof-dir=${path.join(lane.dir, "cpu-profile")}`] : [];
        lane.gateway = await startGatewayProcess({ configPath, signerKey: lane.signerKey, rpcUrl: rpc.url, nodeArgs: profile });
        lane.oracle = await spawnTsProcess({
          script: "server/oracle/main.ts",
          name: `oracle (${lane.name})`,
          env: {
            TOLLGATE_CONFIG: configPath,
            TOLLGATE_ORACLE_KEY: lane.oracleKey,
            TOLLGATE_GATEWAY_SIGNER_KEY: lane.signerKey,
            TOLLGATE_RPC_URL: oracleRpc.get(lane)!.url,
            TOLLGATE_ORACLE_PORT: "0",
            TOLLGATE_LOG_LEVEL: "debug",
          },
          isReady: (line) => line.event === "listening" && typeof line.url === "string",
        });
        watchOracleLog(lane, lane.oracle);
        lane.keys = [];
        for (const buyer of buyers) lane.keys.push((await createApiKey(base.clientOf(buyer.address as Address, { url: lane.gateway.url }), { label: "bench", tags: ["team:bench"] })).key);
        lane.db = new Database(path.join(lane.dir, "usage.sqlite"), { readonly: true, fileMustExist: true });
      }),
    );
    for (const lane of lanes) log(`lane ${lane.name}: gateway ${lane.gateway!.url} (pid ${lane.gateway!.pid}), oracle ${lane.oracle!.url} (pid ${lane.oracle!.pid}), signer ${lane.signer}`);

    // --- load jobs: round robin over buyer × (model, prompt), so every buyer calls both models -----------
    const modules = loadModules();
    const bodies = MODELS.flatMap((model) => PROMPTS.map((content) => JSON.stringify({ model, messages: [{ role: "user", content }], max_tokens: 32 })));
    const jobFor = (lane: Lane, amount: number, rate: number): LoadJob => {
      const requests: LoadJob["requests"] = [];
      for (let i = 0; i < lane.keys!.length * bodies.length; i++) {
        const key = lane.keys![i % lane.keys!.length];
        const body = bodies[Math.floor(i / lane.keys!.length) % bodies.length];
        requests.push({ method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body });
      }
      return { kind: "paced", origin: new URL(lane.gateway!.url).origin, requests, amount, rate, connections: CONNECTIONS, receipts: true, modules };
    };
    const counts = (lane: Lane) =>
      lane.db!.prepare("SELECT COUNT(*) AS served, COALESCE(SUM(settled_tx IS NULL), 0) AS pending, COUNT(DISTINCT settled_tx) AS batches FROM usage_records").get() as {
        served: number;
        pending: number;
        batches: number;
      };
    const checkAnswers = (label: string, lane: Lane, r: LoadResult) => {
      if (r.non2xx > 0 || r.errors > 0 || (r.missingReceipts ?? 0) > 0) failures.push(`lane ${lane.name}, ${label}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.missingReceipts} answers without a receipt`);
    };
    /** Waits until every lane's store has nothing pending and the chain's next sequence matches it. */
    const allSettled = async (label: string, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let done = true;
        for (const lane of lanes) {
          const c = counts(lane);
          const onChain = (await reader.signerStatus(lane.signer)).nextSequence;
          if (c.pending > 0 || onChain !== lane.firstSequence + BigInt(c.served)) done = false;
        }
        if (done) return;
        if (Date.now() > deadline) {
          failures.push(`${label}: not everything was settled within ${timeoutMs} ms`);
          return;
        }
        await sleep(200);
      }
    };

    // --- warm-up: each gateway loads both models' tokenizers and JIT-compiles its hot path; settled, not measured
    const warmupCalls = BUYERS * bodies.length * 2;
    log(`warm-up: ${warmupCalls} calls per lane at ${Math.round(RATE / 2)}/s, then waiting until they are settled…`);
    const warmupStart = Date.now();
    const warmups = await Promise.all(lanes.map((lane) => runLoad(jobFor(lane, warmupCalls, Math.round(RATE / 2)))));
    log(`warm-up answered in ${((Date.now() - warmupStart) / 1000).toFixed(1)} s; max call latency ${warmups.map((w) => fmt(stats(w.latencies).max, 0)).join(" / ")} ms`);
    lanes.forEach((lane, i) => {
      lane.warmup = warmups[i];
      checkAnswers("warm-up", lane, warmups[i]);
    });
    const idleFrom = { at: Date.now(), cpu: lanes.map((lane) => cpuSecondsOf(lane.gateway!.pid) ?? NaN) };
    await allSettled("warm-up", Math.max(...INTERVALS_MS) + 60_000);
    await sleep(2_000);
    lanes.forEach((lane, i) => (lane.gatewayIdleShare = (100 * ((cpuSecondsOf(lane.gateway!.pid) ?? NaN) - idleFrom.cpu[i])) / ((Date.now() - idleFrom.at) / 1000)));
    for (const lane of lanes) lane.measureFrom = Number(lane.firstSequence) + counts(lane).served;

    // --- load: every lane at once, with progress lines -----------------------------------------------------
    const loadStartMs = Date.now();
    for (const lane of lanes) lane.measuring = true;
    const progressLine = () => {
      const parts = lanes.map((lane) => {
        const c = counts(lane);
        const served = c.served - (lane.measureFrom - Number(lane.firstSequence));
        return `${lane.name}: served ${served}, pending ${c.pending}, settled ${served - c.pending}, ${c.batches} batches in all`;
      });
      log(`t=${((Date.now() - loadStartMs) / 1000).toFixed(0)} s, block ${latestBlock} | ${parts.join(" | ")}`);
    };
    progress = setInterval(progressLine, PROGRESS_MS);
    const rpcAtStart = new Map([...rpcCalls].map(([who, calls]) => [who, new Map(calls)]));
    const machineStart = machineTicks();
    const simCpuStart = cpuSecondsOf(sim.pid);
    const benchCpuStart = process.cpuUsage();
    for (const lane of lanes) lane.cpuAtStart = { gateway: cpuSecondsOf(lane.gateway!.pid), oracle: cpuSecondsOf(lane.oracle!.pid) };
    log(`load: ${RATE * DURATION_S} calls per lane, paced at ${RATE}/s, ${CONNECTIONS} connections per lane…`);
    const results = await Promise.all(lanes.map((lane) => runLoad(jobFor(lane, RATE * DURATION_S, RATE))));
    lanes.forEach((lane, i) => {
      lane.result = results[i];
      checkAnswers("load", lane, results[i]);
    });
    const loadEndByLane = lanes.map((lane) => Math.max(...lane.result!.answeredAtMs!));
    for (const lane of lanes) {
      const r = lane.result!;
      const l = stats(r.latencies);
      log(
        `lane ${lane.name}: first request sent ${((r.startedAtMs - loadStartMs) / 1000).toFixed(2)} s after the start (worker start-up), ${r.ok} answered in ${fmt(r.elapsedS, 1)} s; ` +
          `call latency p50 ${fmt(l.p50, 1)} ms, p99 ${fmt(l.p99, 1)} ms, max ${fmt(l.max, 0)} ms`,
      );
    }
    log(`load done in ${((Math.max(...loadEndByLane) - loadStartMs) / 1000).toFixed(1)} s; draining (the oracles settle what is left by age)…`);

    // --- drain: every record settled and the chain's sequence caught up ----------------------------------
    await allSettled("drain", Math.max(...INTERVALS_MS) + 60_000);
    clearInterval(progress);
    progress = undefined;
    progressLine();
    const drainedAtMs = Date.now();
    for (const lane of lanes) lane.cpuAtEnd = { gateway: cpuSecondsOf(lane.gateway!.pid), oracle: cpuSecondsOf(lane.oracle!.pid) };
    const machineEnd = machineTicks();
    const simCpu = (cpuSecondsOf(sim.pid) ?? NaN) - (simCpuStart ?? NaN);
    const rpcSeconds = (Date.now() - loadStartMs) / 1000;
    const rpcDuring = [...rpcCalls].map(([who, calls]) => {
      const byMethod = [...calls].map(([method, n]) => [method, (n - (rpcAtStart.get(who)?.get(method) ?? 0)) / rpcSeconds] as const).filter(([, r]) => r > 0);
      byMethod.sort((a, b) => b[1] - a[1]);
      return { who, total: byMethod.reduce((sum, [, r]) => sum + r, 0), byMethod };
    });
    const benchCpu = process.cpuUsage(benchCpuStart);
    await pollBlocks();
    clearInterval(blockWatch);
    blockWatch = undefined;

    // --- stop the servers, then the chain's blocks -------------------------------------------------------
    log("stopping the oracles and gateways (SIGTERM)…");
    for (const lane of lanes) {
      const exit = await lane.oracle!.stop();
      if (exit.code !== 0) failures.push(`oracle ${lane.name} exited with ${JSON.stringify(exit)}:\n${lane.oracle!.output()}`);
    }
    for (const lane of lanes) {
      const exit = await lane.gateway!.stop();
      if (exit.code !== 0) failures.push(`gateway ${lane.name} exited with ${JSON.stringify(exit)}:\n${lane.gateway!.output()}`);
    }
    await sim.stop();
    await provider.request({ method: "evm_setIntervalMining", params: [0] });
    if (CPU_PROF) {
      log(`CPU profile of the ${lanes[0].name} lane's gateway (warm-up included):`);
      printCpuProfile(path.join(lanes[0].dir, "cpu-profile"));
    }

    // --- blocks: how regular the interval mining was --------------------------------------------------
    const measuredBlocks = [...seenAtMs.keys()].filter((b) => seenAtMs.get(b)! >= loadStartMs).sort((a, b) => a - b);
    const blockTimestamp = new Map<number, number>();
    for (const b of measuredBlocks) blockTimestamp.set(b, Number((await client.getBlock({ blockNumber: BigInt(b) })).timestamp));
    const gaps = measuredBlocks.slice(1).map((b, i) => seenAtMs.get(b)! - seenAtMs.get(measuredBlocks[i])!);
    const blockGaps = stats(gaps);
    // The chain's clock against the wall clock: a block's timestamp minus the wall-clock second it was seen in.
    const clockSkew = (b: number) => blockTimestamp.get(b)! - Math.floor(seenAtMs.get(b)! / 1000);
    const skews = measuredBlocks.map(clockSkew);
    const skewAt = (bs: number[]) => `${Math.min(...bs.map(clockSkew))}..${Math.max(...bs.map(clockSkew))}`;

    // --- per lane: verify, then measure ----------------------------------------------------------------
    const rows: Array<{ lane: Lane; m: LaneMeasures }> = [];
    for (const [index, lane] of lanes.entries()) {
      const m = await measureLane(lane, client, tollgate, seenAtMs, { loadStartMs: lane.result!.startedAtMs, loadEndMs: loadEndByLane[index], drainedAtMs, cpuFromMs: loadStartMs }, failures);
      rows.push({ lane, m });
      lane.db!.close();
    }

    // --- the table ------------------------------------------------------------------------------------
    const target = (lane: Lane) => (lane.intervalMs + 2 * BLOCK_MS) / 1000;
    const col = (f: (lane: Lane, m: LaneMeasures) => string) => rows.map(({ lane, m }) => f(lane, m)).join(" | ");
    const lagCells = (s: Stats, scale: number, digits: number) => `${fmt(s.p50 / scale, digits)} / ${fmt(s.p90 / scale, digits)} / ${fmt(s.p99 / scale, digits)} / ${fmt(s.max / scale, digits)}`;
    const verdict = (lane: Lane, s: Stats, scale: number) => {
      const t = target(lane);
      const met = (v: number) => (v / scale <= t ? "met" : "missed");
      return `p99 ${met(s.p99)}, max ${met(s.max)}`;
    };
    const ours =
      (benchCpu.user + benchCpu.system) / 1e6 +
      simCpu +
      lanes.reduce((sum, lane) => sum + (lane.cpuAtEnd!.gateway! - lane.cpuAtStart!.gateway!) + (lane.cpuAtEnd!.oracle! - lane.cpuAtStart!.oracle!), 0);
    const others = machineStart && machineEnd ? (100 * ((machineEnd.busy - machineStart.busy) / 100 - ours)) / ((machineEnd.total - machineStart.total) / 100) : NaN;
    const busy = machineStart && machineEnd ? (100 * (machineEnd.busy - machineStart.busy)) / (machineEnd.total - machineStart.total) : NaN;
    const steal = machineStart && machineEnd ? (100 * (machineEnd.steal - machineStart.steal)) / (machineEnd.total - machineStart.total) : NaN;
    const lines = [
      `Settlement under load (Hardhat network, interval mining: a block every ${BLOCK_MS} ms; oracle pollMs ${POLL_MS}, maxRecords ${MAX_RECORDS}, confirmations 1; ` +
        `${RATE} calls/s per lane for ${DURATION_S} s, all lanes at once; ${BUYERS} buyers, ${CREDIT_BUYERS} paying with credits; small-model and large-model, max_tokens 32)`,
      "",
      `| batch interval (oracle.batch.maxAgeMs) | ${col((lane) => `${lane.intervalMs} ms`)} |`,
      `|:---|${rows.map(() => "---:").join("|")}|`,
      `| measured load: 2xx answers / records / settled | ${col((_, m) => `${m.answers} / ${m.records} / ${m.settled}`)} |`,
      `| calls served per s (during load) | ${col((_, m) => fmt(m.servedPerS))} |`,
      `| records settled per s, sustained during load | ${col((_, m) => fmt(m.settledPerSDuringLoad))} |`,
      `| records settled per s, load + drain | ${col((_, m) => fmt(m.settledPerSOverall))} |`,
      `| drain: last answer → last batch mined (s) | ${col((_, m) => fmt(m.drainS))} |`,
      `| batches (by age / by size) | ${col((lane, m) => `${m.batches} (${lane.reasons.get("age") ?? 0} / ${lane.reasons.get("size") ?? 0})`)} |`,
      `| records per batch: mean (min–max) | ${col((_, m) => `${fmt(m.recordsPerBatch.mean)} (${m.recordsPerBatch.min}–${m.recordsPerBatch.max})`)} |`,
      `| blocks between the lane's batches: mean (min) | ${col((_, m) => `${fmt(m.blocksBetweenBatches.mean, 2)} (${m.blocksBetweenBatches.min})`)} |`,
      `| gas per batch (mean) | ${col((_, m) => fmt(m.gasPerBatch, 0))} |`,
      `| **gas per record** (Σ gasUsed / records) | ${col((_, m) => `**${fmt(m.gasPerRecord, 0)}**`)} |`,
      `| **lag, store: settled_at − served_at (s)**, p50 / p90 / p99 / max | ${col((_, m) => `**${lagCells(m.storeLag, 1, 0)}**`)} |`,
      `| lag, wall clock: answer → settling block seen (s), p50 / p90 / p99 / max | ${col((_, m) => lagCells(m.wallLag, 1000, 2))} |`,
      `| target: batch interval + 2 blocks (s) | ${col((lane) => fmt(target(lane)))} |`,
      `| target, store lag (±1 s) | ${col((lane, m) => verdict(lane, m.storeLag, 1))} |`,
      `| target, wall-clock lag | ${col((lane, m) => verdict(lane, m.wallLag, 1000))} |`,
      `| wall-clock lag, mean per record (s): answer → batch broadcast + broadcast → block | ${col((_, m) => `${fmt(m.toBroadcastS, 2)} + ${fmt(m.toBlockS, 2)}`)} |`,
      `| per batch, mean (s): due (oldest servedAt + interval) → broadcast, of which waiting for the previous settlement / block → marked settled | ${col((_, m) => `${fmt(m.dueToBroadcastS, 2)}, ${fmt(m.blockedByPreviousS, 2)} / ${fmt(m.blockToMarkedS, 2)}`)} |`,
      `| oracle with a settlement in flight (broadcast → marked), % of the time | ${col((_, m) => `${fmt(m.inFlightShare, 0)} %`)} |`,
      `| batches the chain refused for now and retried (served after the latest block) | ${col((lane) => String(lane.notYet))} |`,
      `| CPU: gateway per call (µs; idle: % of a core) / oracle per record (µs; % of a core) | ${col((lane, m) => `${fmt(m.gatewayCpuUs, 0)} (${fmt(lane.gatewayIdleShare ?? NaN, 0)} %) / ${fmt(m.oracleCpuUs, 0)} (${fmt(m.oracleCpuShare, 0)} %)`)} |`,
      "",
      `Blocks: ${measuredBlocks.length} mined at an interval of ${fmt(blockGaps.mean / 1000, 3)} s mean (p99 ${fmt(blockGaps.p99 / 1000, 3)} s, max ${fmt(blockGaps.max / 1000, 3)} s) as seen by the bench; ` +
        `block timestamp − wall-clock second it was seen in: ${skewAt(measuredBlocks.slice(0, 10))} s over the first 10 blocks, ${skewAt(measuredBlocks.slice(-10))} s over the last 10 ` +
        `(${skews.filter((v) => v > 0).length} of ${skews.length} blocks dated ahead of the wall clock). servedAt and block timestamps are whole seconds: a store lag of n s is a true lag in (n − 1, n + 1).`,
      `Machine over the load and drain (${fmt((drainedAtMs - loadStartMs) / 1000, 1)} s, ${os.cpus().length} cores): ${fmt(busy, 0)} % busy, of which ${fmt(Math.max(0, others), 0)} points by processes outside this bench; ${fmt(steal, 0)} % stolen by the hypervisor. ` +
        `CPU seconds: bench process (chain, JSON-RPC, load workers) ${fmt((benchCpu.user + benchCpu.system) / 1e6, 1)}, simulated upstream ${fmt(simCpu, 1)}.`,
      `JSON-RPC requests per second over the load and drain: ` +
        rpcDuring.map(({ who, total, byMethod }) => `${who} ${fmt(total, 1)} (${byMethod.map(([method, r]) => `${method} ${fmt(r, 1)}`).join(", ")})`).join("; ") +
        ".",
      `Checks: ${rows.map(({ lane, m }) => `${lane.name}: ${m.checks}`).join("; ")}.`,
    ];
    console.log(`\n${lines.join("\n")}\n`);
    for (const lane of lanes) if (lane.warnings.length > 0) log(`oracle ${lane.name} warned ${lane.warnings.length} time(s), first: ${lane.warnings[0]}`);

    if (failures.length > 0) {
      console.error(`[bench] FAILED:\n  ${failures.join("\n  ")}`);
      process.exitCode = 1;
    }
    log(`finished in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
  } finally {
    if (progress) clearInterval(progress);
    if (blockWatch) clearInterval(blockWatch);
    await provider.request({ method: "evm_setIntervalMining", params: [0] }).catch(() => undefined);
    await killAllProcesses();
    await rpc.close();
    for (const server of oracleRpc.values()) await server.close();
    for (const lane of lanes) if (lane.db?.open) lane.db.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Puts the chain's clock on the wall clock. Hardhat dates a block at its clock's current second, or one second
 * after the previous block when that is later, and then keeps the difference: a setup that mines a few blocks
 * within a second leaves the chain ahead of the wall clock for good, and the gateway then dates its receipts
 * on the chain's clock. A block mined with an explicit timestamp resets that difference. So: wait until the
 * wall clock has passed the latest block, mine one block dated at the current wall-clock second, and check
 * that the next block is dated in the wall-clock second it is mined in.
 */
async function alignChainClock(client: PublicClient): Promise<void> {
  const latest = async () => Number((await client.getBlock({ blockTag: "latest" })).timestamp);
  const ahead = (await latest()) - Math.floor(Date.now() / 1000);
  if (ahead >= 0) {
    log(`the setup blocks put the chain's clock ${ahead + 1} s ahead of the wall clock; waiting that long to reset it`);
    while ((await latest()) >= Math.floor(Date.now() / 1000)) await sleep(100);
  }
  await ethers.provider.send("evm_mine", [Math.floor(Date.now() / 1000)]);
  // One more block, at least a second later, must carry the wall-clock second it is mined in.
  await sleep(1_100);
  const before = Math.floor(Date.now() / 1000);
  await ethers.provider.send("evm_mine", []);
  const after = Math.floor(Date.now() / 1000);
  const stamp = await latest();
  if (stamp < before || stamp > after) log(`warning: the chain's clock is ${stamp - before} s off the wall clock after the reset; the store's lag is off by as much`);
}

/** Sends the transactions with automine off and mines them into one block; each must succeed. */
async function inOneBlock(sends: Array<() => Promise<{ hash: string }>>): Promise<void> {
  await ethers.provider.send("evm_setAutomine", [false]);
  try {
    const hashes: string[] = [];
    for (const send of sends) hashes.push((await send()).hash);
    await ethers.provider.send("evm_mine", []);
    for (const hash of hashes) {
      const receipt = await ethers.provider.getTransactionReceipt(hash);
      if (receipt?.status !== 1) throw new Error(`setup transaction ${hash} failed or was not mined`);
    }
  } finally {
    await ethers.provider.send("evm_setAutomine", [true]);
  }
}

interface LaneMeasures {
  answers: number;
  records: number;
  settled: number;
  batches: number;
  servedPerS: number;
  settledPerSDuringLoad: number;
  settledPerSOverall: number;
  drainS: number;
  recordsPerBatch: { mean: number; min: number; max: number };
  blocksBetweenBatches: { mean: number; min: number };
  gasPerBatch: number;
  gasPerRecord: number;
  storeLag: Stats;
  wallLag: Stats;
  /** Mean per record: answer → its batch broadcast, and broadcast → settling block seen (s). */
  toBroadcastS: number;
  toBlockS: number;
  /** Mean per batch: due (oldest servedAt + interval) → broadcast, and block seen → marked settled by the oracle (s). */
  dueToBroadcastS: number;
  blockToMarkedS: number;
  /** Mean per batch: how long it was due while the previous settlement was still in flight (s). */
  blockedByPreviousS: number;
  /** Share of the load and drain during which the oracle had a settlement in flight (broadcast → marked), %. */
  inFlightShare: number;
  gatewayCpuUs: number;
  oracleCpuUs: number;
  /** The oracle process's CPU over the load and drain, % of one core. */
  oracleCpuShare: number;
  checks: string;
}

/** Checks the lane's books (answers, store, chain, receipts) and measures its throughput, gas and lag over the measured load. */
async function measureLane(
  lane: Lane,
  client: PublicClient,
  tollgate: Address,
  seenAtMs: Map<number, number>,
  window: { loadStartMs: number; loadEndMs: number; drainedAtMs: number; cpuFromMs: number },
  failures: string[],
): Promise<LaneMeasures> {
  const { loadStartMs, loadEndMs, drainedAtMs, cpuFromMs } = window;
  const fail = (message: string) => failures.push(`lane ${lane.name}: ${message}`);
  const result = lane.result!;
  const allRows = lane.db!.prepare("SELECT sequence, served_at, settled_at, settled_tx FROM usage_records ORDER BY sequence").all() as StoreRow[];
  const first = Number(lane.firstSequence);

  // One record per 2xx answer (warm-up and load): the answers' receipt sequences are exactly the store's, each once.
  const answers = lane.warmup!.ok + result.ok;
  const answered = [...lane.warmup!.sequences!, ...result.sequences!].sort((a, b) => a - b);
  const repeats = answered.filter((s, i) => i > 0 && s === answered[i - 1]).length;
  const contiguous = allRows.every((row, i) => row.sequence === first + i);
  const sameSet = answered.length === allRows.length && answered.every((s, i) => s === allRows[i].sequence);
  if (answers !== allRows.length || repeats > 0 || !contiguous || !sameSet) {
    fail(`${answers} 2xx answers (${answered.length} receipts, ${repeats} repeated sequences) but ${allRows.length} records (contiguous from ${first}: ${contiguous})`);
  }
  const unsettled = allRows.filter((row) => row.settled_tx === null).length;
  if (unsettled > 0) fail(`${unsettled} records not settled`);
  const onChain = (await new MarketplaceReader(client, tollgate).signerStatus(lane.signer)).nextSequence;
  if (onChain !== lane.firstSequence + BigInt(allRows.length)) fail(`the chain's next sequence is ${onChain}, the store's ${lane.firstSequence + BigInt(allRows.length)}`);
  const rows = allRows.filter((row) => row.sequence >= lane.measureFrom);
  if (rows.length !== result.ok) fail(`${rows.length} records from the measured load for ${result.ok} 2xx answers`);

  // Batches: one receipt per settlement transaction; its BatchSettled count must match the records marked with it.
  const byTx = new Map<string, StoreRow[]>();
  for (const row of allRows) if (row.settled_tx) byTx.set(row.settled_tx, [...(byTx.get(row.settled_tx) ?? []), row]);
  const measuredTxs = new Set(rows.map((row) => row.settled_tx));
  const batches: Array<{ receipt: TransactionReceipt; rows: StoreRow[]; seenAt: number }> = [];
  for (const [hash, batchRows] of byTx) {
    const receipt = await client.getTransactionReceipt({ hash: hash as Hex });
    if (receipt.status !== "success") fail(`settlement ${hash} reverted`);
    let counted: bigint | undefined;
    for (const entry of receipt.logs) {
      try {
        const event = decodeEventLog({ abi: tollgateAbi, data: entry.data, topics: entry.topics, strict: true });
        if (event.eventName === "BatchSettled" && getAddress(event.args.signer) === lane.signer) counted = event.args.recordCount;
      } catch {
        // another event
      }
    }
    if (counted !== BigInt(batchRows.length)) fail(`transaction ${hash}: BatchSettled counts ${counted} records, the store marks ${batchRows.length}`);
    if (!measuredTxs.has(hash)) continue;
    if (batchRows.some((row) => row.sequence < lane.measureFrom)) fail(`transaction ${hash} settles warm-up and measured records together`);
    const seenAt = seenAtMs.get(Number(receipt.blockNumber));
    if (seenAt === undefined) fail(`block ${receipt.blockNumber} of ${hash} was not seen by the block watch`);
    batches.push({ receipt, rows: batchRows, seenAt: seenAt ?? NaN });
  }
  batches.sort((a, b) => (a.receipt.blockNumber < b.receipt.blockNumber ? -1 : 1));
  const blocksOfBatches = batches.map((b) => Number(b.receipt.blockNumber));
  if (new Set(blocksOfBatches).size !== blocksOfBatches.length) fail("two of the lane's batches in one block (the oracle sends one transaction at a time)");

  // Throughput.
  const duringLoad = batches.filter((b) => b.seenAt <= loadEndMs);
  const settledPerSDuringLoad =
    duringLoad.length >= 2 ? duringLoad.slice(1).reduce((n, b) => n + b.rows.length, 0) / ((duringLoad[duringLoad.length - 1].seenAt - duringLoad[0].seenAt) / 1000) : NaN;
  const lastSeen = Math.max(...batches.map((b) => b.seenAt));
  const gasUsed = batches.reduce((sum, b) => sum + b.receipt.gasUsed, 0n);
  const sizes = batches.map((b) => b.rows.length);
  const blockGaps = blocksOfBatches.slice(1).map((b, i) => b - blocksOfBatches[i]);

  // Lag: from the store (whole seconds), and on the wall clock (answer → block first seen).
  const storeLag = stats(rows.filter((row) => row.settled_at !== null).map((row) => row.settled_at! - row.served_at));
  const answeredAt = new Map<number, number>();
  result.sequences!.forEach((s, i) => answeredAt.set(s, result.answeredAtMs![i]));
  const wall: number[] = [];
  // Where the lag goes, from the oracle's own log times: per record, answer → broadcast of its batch and
  // broadcast → block; per batch, due (oldest servedAt + interval) → broadcast, and block → marked settled.
  const toBroadcast: number[] = [];
  const toBlock: number[] = [];
  const dueToBroadcast: number[] = [];
  const blockToMarked: number[] = [];
  const blockedByPrevious: number[] = [];
  let inFlightMs = 0;
  for (const [index, batch] of batches.entries()) {
    const hash = batch.receipt.transactionHash;
    const broadcastAt = lane.broadcastAt.get(hash) ?? NaN;
    const markedAt = lane.markedAt.get(hash) ?? NaN;
    for (const row of batch.rows) {
      const at = answeredAt.get(row.sequence);
      if (at === undefined) continue;
      wall.push(batch.seenAt - at);
      toBroadcast.push(broadcastAt - at);
      toBlock.push(batch.seenAt - broadcastAt);
    }
    const oldestServedAt = Math.min(...batch.rows.map((row) => row.served_at));
    const dueAt = oldestServedAt * 1000 + lane.intervalMs;
    dueToBroadcast.push(broadcastAt - dueAt);
    // How long the batch was due while the oracle still waited for its previous settlement (one transaction at a time).
    const previous = index > 0 ? batches[index - 1].receipt.transactionHash : undefined;
    const previousMarked = previous ? (lane.markedAt.get(previous) ?? NaN) : -Infinity;
    blockedByPrevious.push(Math.max(0, Math.min(previousMarked, broadcastAt) - dueAt));
    blockToMarked.push(markedAt - batch.seenAt);
    inFlightMs += markedAt - broadcastAt;
  }
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length / 1000;
  const cpuUs = (start: number | undefined, end: number | undefined, n: number) => (start === undefined || end === undefined ? NaN : ((end - start) * 1e6) / n);

  return {
    answers: result.ok,
    records: rows.length,
    settled: rows.filter((row) => row.settled_tx !== null).length,
    batches: batches.length,
    servedPerS: result.ok / result.elapsedS,
    settledPerSDuringLoad,
    settledPerSOverall: rows.filter((row) => row.settled_tx !== null).length / ((lastSeen - loadStartMs) / 1000),
    drainS: (lastSeen - loadEndMs) / 1000,
    recordsPerBatch: { mean: rows.length / batches.length, min: Math.min(...sizes), max: Math.max(...sizes) },
    blocksBetweenBatches: { mean: blockGaps.length ? blockGaps.reduce((a, b) => a + b, 0) / blockGaps.length : NaN, min: blockGaps.length ? Math.min(...blockGaps) : NaN },
    gasPerBatch: Number(gasUsed) / batches.length,
    gasPerRecord: Number(gasUsed) / rows.length,
    storeLag,
    wallLag: stats(wall),
    toBroadcastS: mean(toBroadcast),
    toBlockS: mean(toBlock),
    dueToBroadcastS: mean(dueToBroadcast),
    blockToMarkedS: mean(blockToMarked),
    blockedByPreviousS: mean(blockedByPrevious),
    inFlightShare: (100 * inFlightMs) / (drainedAtMs - loadStartMs),
    gatewayCpuUs: cpuUs(lane.cpuAtStart?.gateway, lane.cpuAtEnd?.gateway, result.ok),
    oracleCpuUs: cpuUs(lane.cpuAtStart?.oracle, lane.cpuAtEnd?.oracle, rows.length),
    oracleCpuShare:
      lane.cpuAtStart?.oracle === undefined || lane.cpuAtEnd?.oracle === undefined ? NaN : (100 * (lane.cpuAtEnd.oracle - lane.cpuAtStart.oracle)) / ((drainedAtMs - cpuFromMs) / 1000),
    checks:
      answers === allRows.length && repeats === 0 && sameSet && unsettled === 0 && onChain === lane.firstSequence + BigInt(allRows.length) && rows.length === result.ok
        ? `${allRows.length} records for ${answers} 2xx (${lane.warmup!.ok} of them warm-up), each sequence once, all settled, chain at ${onChain}`
        : "MISMATCH (see FAILED)",
  };
}

main().catch(async (error: unknown) => {
  console.error(error);
  await killAllProcesses();
  process.exitCode = 1;
});
