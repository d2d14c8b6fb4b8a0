/**
 * Two gateways' CPU per metered call, side by side in one run: this checkout's and another's (e.g. main's), on
 * the same chain, the same simulated upstream and the same load generator, measured in short alternating blocks
 * (A B, then B A, …), so a machine shared with other work weighs on both alike. Made for a 2-core box where other
 * processes come and go: the absolute µs drift from block to block, the ratio of neighbouring blocks much less.
 *
 *   BENCH_AB_BASE=/work/main npx hardhat run bench/gateway-ab.ts
 *
 * Each round sends, to each gateway: `BENCH_AB_PACED` calls paced at `BENCH_AB_RATE` req/s (one at a time: the
 * cost of a call when nothing queues) and `BENCH_AB_LOADED` calls from autocannon with `BENCH_AB_CONNECTIONS`
 * connections (the cost under load, where loop turns and group commits are shared). CPU is the gateway process's
 * (user + system, all threads, from /proc) over the block, divided by its 2xx answers. Non-streaming chat, the
 * bench's 128-byte prompt, max_tokens 16, 8 buyers. Knobs: BENCH_AB_ROUNDS (4), BENCH_AB_NODE_ARGS (Node flags for both gateways).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { getAddress, type Address } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { createApiKey, deposit, setSignerAuthorization } from "../client";
import { deployMarketplace, USD } from "../scripts/lib/marketplace-fixtures";
import { killAllProcesses, spawnTsProcess, startSimulatedUpstreamProcess, type ManagedProcess } from "../scripts/lib/processes";
import { startRpcServer } from "../scripts/lib/rpc-server";
import { writeBenchGatewaySite } from "./lib/gateway-site";
import { loadModules, runLoad, type LoadJob } from "./lib/load";
import { cpuSecondsOf } from "./lib/machine";

const BASE = process.env.BENCH_AB_BASE;
const ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 4);
const RATE = Number(process.env.BENCH_AB_RATE ?? 100);
const PACED = Number(process.env.BENCH_AB_PACED ?? 600);
const LOADED = Number(process.env.BENCH_AB_LOADED ?? 2000);
const CONNECTIONS = Number(process.env.BENCH_AB_CONNECTIONS ?? 32);
/** Extra Node flags for both gateways, e.g. `-r ./alloc-sampler.js` or `--cpu-prof`. */
const NODE_ARGS = (process.env.BENCH_AB_NODE_ARGS ?? "").split(" ").filter(Boolean);
const PROMPT = { model: "small-model", messages: [{ role: "user", content: "Write one sentence about a toll bridge at dawn." }], max_tokens: 16 };
const log = (line: string) => console.log(`[ab] ${line}`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

interface Side {
  name: string;
  process: ManagedProcess;
  requests: LoadJob["requests"];
  paced: number[];
  loaded: number[];
}

async function main(): Promise<void> {
  if (!BASE || !fs.existsSync(path.join(BASE, "server/gateway/main.ts"))) {
    throw new Error("set BENCH_AB_BASE to the other checkout (a folder with server/gateway/main.ts), e.g. BENCH_AB_BASE=/work/main");
  }
  log(`A = ${path.resolve(BASE)}, B = ${path.resolve(__dirname, "..")}; ${ROUNDS} rounds of ${PACED} calls paced at ${RATE}/s and ${LOADED} calls at ${CONNECTIONS} connections; load average ${os.loadavg()[0].toFixed(1)}`);
  const market = await deployMarketplace();
  const tollgate = getAddress(await market.tollgate.getAddress());
  const buyers = market.buyers.map((buyer) => getAddress(buyer.address)).slice(0, 8);
  for (const buyer of buyers) await deposit(market.clientOf(buyer), { amount: USD(500) });
  const rpc = await startRpcServer((await import("hardhat")).network.provider);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-ab-"));
  try {
    const sim = await startSimulatedUpstreamProcess({ args: ["--latency-ms", "0"] });
    const sides: Side[] = [];
    for (const [name, root] of [
      ["A", path.resolve(BASE)],
      ["B", path.resolve(__dirname, "..")],
    ] as const) {
      const signerKey = generatePrivateKey();
      await setSignerAuthorization(market.clientOf(market.provider.address as Address), { providerId: Number(market.providerId), signer: privateKeyToAddress(signerKey), authorized: true });
      const { configPath } = writeBenchGatewaySite({ folder: path.join(dir, name), chainId: Number(market.chainId), tollgate, providerId: Number(market.providerId), upstreamUrl: sim.url });
      const gateway = await spawnTsProcess({
        script: path.join(root, "server/gateway/main.ts"),
        name: `gateway ${name}`,
        nodeArgs: NODE_ARGS,
        env: { TOLLGATE_CONFIG: configPath, TOLLGATE_GATEWAY_SIGNER_KEY: signerKey, TOLLGATE_RPC_URL: rpc.url },
        isReady: (line) => line.event === "listening" && typeof line.url === "string",
      });
      const keys: string[] = [];
      for (const buyer of buyers) keys.push((await createApiKey(market.clientOf(buyer, { url: gateway.url }), { label: "ab" })).key);
      const requests = keys.map((key) => ({ method: "POST" as const, path: "/v1/chat/completions", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify(PROMPT) }));
      sides.push({ name, process: gateway, requests, paced: [], loaded: [] });
      log(`gateway ${name}: ${gateway.url} (pid ${gateway.pid})`);
    }
    const modules = loadModules();
    const block = async (side: Side, job: Omit<LoadJob, "origin" | "requests" | "modules">): Promise<number> => {
      // CPU is read from the first timed call on (after a paced lead-in's last answer).
      let before = cpuSecondsOf(side.process.pid!)!;
      const result = await runLoad({ ...job, origin: new URL(side.process.url!).origin, requests: side.requests, modules }, async () => {
        before = cpuSecondsOf(side.process.pid!)!;
      });
      const used = cpuSecondsOf(side.process.pid!)! - before;
      if (result.non2xx + result.errors > 0) throw new Error(`gateway ${side.name}: ${result.non2xx} non-2xx and ${result.errors} errors`);
      return (used * 1e6) / result.ok;
    };
    // Warm-up: JIT, pools, buyer snapshots.
    for (const side of sides) await block(side, { kind: "autocannon", amount: 2_000, connections: CONNECTIONS });
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) side.paced.push(await block(side, { kind: "paced", amount: PACED, rate: RATE, leadIn: Math.round(RATE / 2), connections: 16 }));
      for (const side of order) side.loaded.push(await block(side, { kind: "autocannon", amount: LOADED, connections: CONNECTIONS }));
      const [a, b] = sides;
      log(
        `round ${round + 1}: paced A ${a.paced[round].toFixed(0)} µs, B ${b.paced[round].toFixed(0)} µs (B/A ${(b.paced[round] / a.paced[round]).toFixed(2)}); ` +
          `loaded A ${a.loaded[round].toFixed(0)} µs, B ${b.loaded[round].toFixed(0)} µs (B/A ${(b.loaded[round] / a.loaded[round]).toFixed(2)}); load average ${os.loadavg()[0].toFixed(1)}`,
      );
    }
    const [a, b] = sides;
    const ratios = (x: number[], y: number[]) => x.map((value, i) => y[i] / value);
    const cells = (values: number[]) => `${median(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
    console.log(
      [
        "",
        `| gateway CPU µs per metered call, median (range) of ${ROUNDS} blocks | A: ${path.resolve(BASE)} | B: this checkout | B/A, median of rounds |`,
        "|:---|---:|---:|---:|",
        `| paced ${RATE} req/s, ${PACED} calls per block | ${cells(a.paced)} | ${cells(b.paced)} | ${median(ratios(a.paced, b.paced)).toFixed(2)} |`,
        `| autocannon, ${CONNECTIONS} connections, ${LOADED} calls per block | ${cells(a.loaded)} | ${cells(b.loaded)} | ${median(ratios(a.loaded, b.loaded)).toFixed(2)} |`,
      ].join("\n"),
    );
    for (const side of sides) await side.process.stop();
    await sim.stop();
  } finally {
    await killAllProcesses();
    await rpc.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (error: unknown) => {
  console.error(error);
  await killAllProcesses();
  process.exitCode = 1;
});
