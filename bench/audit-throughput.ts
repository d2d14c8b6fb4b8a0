/**
 * The chain audit's throughput on 100,000 settled records, and what it costs a provider in JSON-RPC
 * requests: 100 batches of 1,000 records over 100 buyers (every tenth batch relayed through a contract, so
 * its data comes from BatchDataPublished), settled on Hardhat's network and served over JSON-RPC, then
 * `loadChainHistory` and `auditChain` timed separately and together, side by side in one run.
 *
 *   npm run bench:audit            (AUDIT_BENCH_BATCHES=10 for a quick run)
 */
import os from "node:os";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { createPublicClient, http, keccak256, toHex, type Address, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { buyCredits, defineCreditPlan, mintTestTokens } from "../client";
import { auditChain } from "../client/audit/chain-audit";
import type { ChainStateReader } from "../client/audit/chain-history";
import { loadChainHistory, memoryCheckpointStore } from "../client/audit/load-chain-history";
import { countingTransport } from "../client/audit/rpc/counting-transport";
import { rpcStateReader } from "../client/audit/rpc-state-reader";
import { deployMarketplace, USD } from "../scripts/lib/marketplace-fixtures";
import { startRpcServer } from "../scripts/lib/rpc-server";
import { signedUsageBatch } from "../server/chain/sign-batch";
import type { UsageRecord } from "../server/chain/usage-batch";

const BATCHES = Number(process.env.AUDIT_BENCH_BATCHES ?? 100);
const RECORDS_PER_BATCH = 1_000;
const BUYERS = 100;
const RELAY_EVERY = 10;
const RUNS = 3;
const TARGET_RECORDS_PER_SECOND = 20_000;
const TARGET_REQUESTS_PER_1000 = 5;

/** Deterministic, realistic-looking counts: prompts of 200-4,000 tokens, a third partly cached. */
function countsFor(i: number) {
  const inputTokens = 200 + ((i * 7919) % 3_800);
  const cachedInputTokens = i % 3 === 0 ? Math.floor(inputTokens / 2) : 0;
  const outputTokens = 50 + ((i * 104_729) % 950);
  return { inputTokens, cachedInputTokens, outputTokens };
}

/** Transactions sent while automine is off land in one block: setup in a handful of blocks, as a busy chain packs them. */
async function inOneBlock(send: () => Promise<unknown>): Promise<void> {
  await hre.network.provider.send("evm_setAutomine", [false]);
  try {
    await send();
    await hre.network.provider.send("evm_mine", []);
  } finally {
    await hre.network.provider.send("evm_setAutomine", [true]);
  }
}

async function settle(): Promise<{ tollgate: Address; deployBlock: bigint; records: number }> {
  const market = await deployMarketplace();
  const { tollgate, token, provider, gateway, providerId } = market;
  const tollgateAddress = (await tollgate.getAddress()) as Address;
  const deployBlock = BigInt((await tollgate.deploymentTransaction()!.wait())!.blockNumber);
  const [funder] = await ethers.getSigners();
  const funderClient = market.clientOf(funder.address as Address);
  await mintTestTokens(funderClient, { amount: USD(10_000_000) });
  await token.connect(funder).approve(tollgateAddress, ethers.MaxUint256);
  const buyers = Array.from({ length: BUYERS }, () => privateKeyToAccount(generatePrivateKey()).address);
  process.stderr.write(`funding ${BUYERS} buyers...\n`);
  await inOneBlock(async () => {
    for (const buyer of buyers) await tollgate.connect(funder).deposit(buyer, USD(1_000));
  });
  // A tenth of the buyers hold credits of a plan on both models: the replay's credits-first path runs too.
  const { planId } = await defineCreditPlan(market.clientOf(provider.address as Address), {
    providerId: Number(providerId),
    pricePerCredit: 9_000n,
    valuePerCredit: 10_000n,
    modelIds: [Number(market.smallModel), Number(market.largeModel)],
  });
  const creditHolders = buyers.filter((_, i) => i % 10 === 0);
  for (const buyer of creditHolders) await buyCredits(funderClient, { planId, count: 1_000n, payFrom: "wallet", recipient: buyer });
  await time.increase(3_600);

  const relay = await (await ethers.getContractFactory("BatchRelay")).deploy();
  const plans = new Map<Address, number>(creditHolders.map((buyer) => [buyer, Number(planId)]));
  process.stderr.write(`settling ${BATCHES} batches of ${RECORDS_PER_BATCH} records`);
  let sequence = 0n;
  for (let b = 0; b < BATCHES; b++) {
    const latest = (await ethers.provider.getBlock("latest"))!.timestamp;
    const records: UsageRecord[] = Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({
      sequence: sequence + BigInt(i),
      buyer: buyers[(b * 7 + i) % BUYERS],
      modelId: i % 2 === 0 ? Number(market.smallModel) : Number(market.largeModel),
      priceEpoch: 0,
      ...countsFor(b * RECORDS_PER_BATCH + i),
      servedAt: latest - 600 + Math.floor((i * 600) / RECORDS_PER_BATCH),
      receiptHash: keccak256(toHex(`receipt ${sequence + BigInt(i)}`)),
    }));
    const { batch, signature } = await signedUsageBatch(gateway, { chainId: market.chainId, address: tollgateAddress }, records, plans);
    const sent =
      b % RELAY_EVERY === RELAY_EVERY - 1
        ? relay.connect(provider).relay(tollgateAddress, [tollgate.interface.encodeFunctionData("settleBatch", [batch, signature])])
        : tollgate.connect(provider).settleBatch(batch, signature);
    await (await sent).wait();
    sequence += BigInt(RECORDS_PER_BATCH);
    if (b % 10 === 9) process.stderr.write(".");
  }
  process.stderr.write("\n");
  return { tollgate: tollgateAddress, deployBlock, records: Number(sequence) };
}

/** A state reader that answers from what `inner` answered before: auditChain's own cost, without the RPC round trips. */
function memoized(inner: ChainStateReader): ChainStateReader {
  const cache = new Map<string, Promise<unknown>>();
  const wrap =
    <A extends unknown[], R>(name: string, read: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      const key = `${name}(${args.map(String).join(",")})`;
      if (!cache.has(key)) cache.set(key, read(...args));
      return cache.get(key) as Promise<R>;
    };
  return {
    blockNumber: inner.blockNumber,
    account: wrap("account", inner.account),
    earnings: wrap("earnings", inner.earnings),
    protocolFees: wrap("protocolFees", inner.protocolFees),
    credits: wrap("credits", inner.credits),
    creditChange: wrap("creditChange", inner.creditChange),
    spendingLimit: wrap("spendingLimit", inner.spendingLimit),
    vaultTokens: wrap("vaultTokens", inner.vaultTokens),
    signerNextSequence: wrap("signerNextSequence", inner.signerNextSequence),
    bond: inner.bond && wrap("bond", inner.bond),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  const { tollgate, deployBlock, records } = await settle();
  const rpc = await startRpcServer(hre.network.provider);
  try {
    let httpRequests = 0;
    const counted = countingTransport(
      http(rpc.url, { batch: { batchSize: 100, wait: 0 }, retryCount: 0, timeout: 120_000, onFetchRequest: () => void httpRequests++ }),
    );
    const client = createPublicClient({ transport: counted.transport }) as PublicClient;

    const loadMs: number[] = [];
    const auditMs: number[] = [];
    const togetherMs: number[] = [];
    const replayMs: number[] = [];
    let cachedState: ChainStateReader | undefined;
    let calls = { load: 0, state: 0, blocks: 0, http: 0, byMethod: {} as Record<string, number> };
    let findings = -1;
    for (let run = 0; run <= RUNS; run++) {
      // Run 0 warms the JIT and the node's caches; runs 1..RUNS are measured.
      const before = { calls: counted.counter.total, http: httpRequests };
      const started = performance.now();
      const history = await loadChainHistory(client, { tollgate, deployBlock }, { maxRange: 100_000n });
      const loaded = performance.now();
      const state = rpcStateReader(client, history);
      const audit = await auditChain(history, run === 0 ? (cachedState = memoized(state)) : state);
      const finished = performance.now();
      if (run === 0) {
        findings = audit.findings.length;
        if (audit.counts.records !== records) throw new Error(`the audit saw ${audit.counts.records} records, ${records} were settled`);
        calls = {
          load: history.stats.requests,
          state: state.requests,
          blocks: history.stats.requestsByMethod.eth_getBlockByNumber ?? 0,
          http: httpRequests - before.http,
          byMethod: { ...history.stats.requestsByMethod, eth_call: (history.stats.requestsByMethod.eth_call ?? 0) + state.requests },
        };
        if (counted.counter.total - before.calls !== calls.load + calls.state) throw new Error("the loader's request count disagrees with the transport's");
        continue;
      }
      const replayStarted = performance.now();
      await auditChain(history, cachedState!);
      replayMs.push(performance.now() - replayStarted);
      loadMs.push(loaded - started);
      auditMs.push(finished - loaded);
      togetherMs.push(finished - started);
      process.stderr.write(`run ${run}: load ${(loaded - started).toFixed(0)} ms, audit ${(finished - loaded).toFixed(0)} ms, replay alone ${replayMs[replayMs.length - 1].toFixed(0)} ms\n`);
    }

    // An audit repeated from its checkpoint (as `tollgate audit` does by default): what a daily audit costs.
    const checkpoint = memoryCheckpointStore();
    await loadChainHistory(client, { tollgate, deployBlock }, { maxRange: 100_000n, checkpoint });
    const repeatStarted = performance.now();
    const repeated = await loadChainHistory(client, { tollgate, deployBlock }, { maxRange: 100_000n, checkpoint });
    const repeatMs = performance.now() - repeatStarted;
    const repeatCalls = repeated.stats.requests;

    const perSecond = (ms: number) => Math.round(records / (ms / 1000));
    const per1000 = (n: number) => (n / (records / 1000)).toFixed(2);
    const total = calls.load + calls.state;
    const rows = [
      ["loadChainHistory (JSON-RPC: logs, blocks, batch data)", median(loadMs), ""],
      ["auditChain (replay, checks, state reads at the audit block)", median(auditMs), ""],
      ["  of which auditChain with the state already read (replay and checks alone)", median(replayMs), ""],
      ["together", median(togetherMs), `≥ ${TARGET_RECORDS_PER_SECOND.toLocaleString("en-US")}`],
      ["loadChainHistory again from its checkpoint (no new blocks)", repeatMs, ""],
    ] as const;
    const out: string[] = [];
    out.push(`Chain audit throughput: ${records.toLocaleString("en-US")} settled records in ${BATCHES} batches (${BATCHES / RELAY_EVERY} relayed) over ${BUYERS} buyers, Hardhat's network over JSON-RPC on 127.0.0.1 (server in the same process); median of ${RUNS} runs after a warm-up`);
    const cpus = os.cpus();
    out.push(`machine: ${cpus.length} × ${cpus[0]?.model ?? "?"}, Node ${process.version}, shared with other work (times vary between runs; the ratios are the point)`);
    out.push("");
    out.push("| stage | time (ms) | records/s | target records/s |");
    out.push("|:---|---:|---:|---:|");
    for (const [stage, ms, target] of rows) out.push(`| ${stage} | ${ms.toFixed(0)} | ${perSecond(ms).toLocaleString("en-US")} | ${target} |`);
    out.push("");
    out.push("| JSON-RPC requests | count | per 1,000 records | target per 1,000 |");
    out.push("|:---|---:|---:|---:|");
    out.push(`| all calls (load + state) | ${total} | ${per1000(total)} | |`);
    out.push(`| once blocks are fetched (all calls but eth_getBlockByNumber) | ${total - calls.blocks} | ${per1000(total - calls.blocks)} | ≤ ${TARGET_REQUESTS_PER_1000} |`);
    out.push(`| eth_getBlockByNumber (one per block holding a batch or a log) | ${calls.blocks} | ${per1000(calls.blocks)} | |`);
    out.push(`| HTTP requests (JSON-RPC batching on) | ${calls.http} | ${per1000(calls.http)} | |`);
    out.push(`| loadChainHistory again from its checkpoint (all calls) | ${repeatCalls} | ${per1000(repeatCalls)} | |`);
    out.push("");
    out.push(`calls by method: ${Object.entries(calls.byMethod).map(([method, n]) => `${method} ${n}`).join(", ")}`);
    out.push(`findings: ${findings} (a clean chain audits clean)`);
    const together = perSecond(median(togetherMs));
    out.push(
      `targets: ${together >= TARGET_RECORDS_PER_SECOND ? "met" : "NOT met"} (${together.toLocaleString("en-US")} records/s together); ` +
        `${Number(per1000(total - calls.blocks)) <= TARGET_REQUESTS_PER_1000 ? "met" : "NOT met"} (${per1000(total - calls.blocks)} requests per 1,000 records once blocks are fetched, ${per1000(total)} with them)`,
    );
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    await rpc.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
