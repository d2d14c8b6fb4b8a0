/**
 * Routing: what `auto` saves on a mixed workload, and what choosing a model costs a call.
 * `npx hardhat run bench/routing.ts`.
 *
 * One in-process marketplace (the gateway test harness: Hardhat's chain, the simulated upstream, the real
 * gateway on loopback) with the policy "auto = small-model unless the prompt is long, tools are offered or
 * reasoning_effort is high". Then, in one run:
 *   (1) savings: BENCH_ROUTING_CALLS calls through `auto`, a mix of short questions, tool calls, long prompts and
 *       high-effort requests; prints which model served how many, what they cost, what the dearest candidate
 *       would have cost for the same counts, and the saving, from `store.routingSavings`, after checking it
 *       against each record recomputed at the large model's prices (they must agree to the unit);
 *   (2) overhead: the same short prompt, `auto` and `small-model` named, interleaved call by call (so drift in
 *       the machine's load hits both alike) over BENCH_ROUTING_ROUNDS rounds of BENCH_ROUTING_PAIRS pairs;
 *       prints p50/p90/p99 of each and the ratio auto / named per round.
 */
import { getAddress } from "viem";
import { LARGE_PRICES, USD } from "../scripts/lib/marketplace-fixtures";
import { recordCost } from "../server/chain/pricing";
import { startGatewayHarness } from "../test/helpers/gateway-harness";
import { stats } from "./lib/stats";

const CALLS = Number(process.env.BENCH_ROUTING_CALLS ?? 200);
const PAIRS = Number(process.env.BENCH_ROUTING_PAIRS ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUTING_ROUNDS ?? 2);

const weatherTool = { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } };
const LONG = "Summarise the quarterly figures for the support team, region by region. ".repeat(40);

/** The mix: of every 10 calls, 6 short questions, 2 with tools, 1 long prompt, 1 asking for high reasoning effort. */
function mixedBody(i: number): Record<string, unknown> {
  const slot = i % 10;
  const base = { model: "auto", max_tokens: 32 };
  if (slot < 6) return { ...base, messages: [{ role: "user", content: `Where is my order number ${i}?` }] };
  if (slot < 8) return { ...base, messages: [{ role: "user", content: `Weather in city ${i}?` }], tools: [weatherTool] };
  if (slot < 9) return { ...base, messages: [{ role: "user", content: LONG + i }] };
  return { ...base, messages: [{ role: "user", content: `Plan a migration, case ${i}.` }], reasoning_effort: "high" };
}

async function main(): Promise<void> {
  const h = await startGatewayHarness({
    config: {
      routing: {
        levels: ["small", "large"],
        tiers: { "small-model": "small", "large-model": "large" },
        policies: {
          auto: { candidates: ["small-model", "large-model"], rules: { promptTokens: [{ atLeast: 400, tier: "large" }], tools: "large", reasoningEffort: { high: "large" } } },
        },
      },
    },
  });
  try {
    const buyer = getAddress(h.market.buyers[0].address);
    await h.deposit(h.market.buyers[0], USD(500));
    const { key } = await h.createKey(h.market.buyers[0]);
    const post = async (body: Record<string, unknown>): Promise<number> => {
      const started = performance.now();
      const response = await fetch(`${h.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
      });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`call failed: ${response.status}`);
      return performance.now() - started;
    };

    // (1) savings
    process.stdout.write(`(1) ${CALLS} calls through auto `);
    for (let i = 0; i < CALLS; i++) {
      await post(mixedBody(i));
      if (i % 20 === 19) process.stdout.write(".");
    }
    process.stdout.write("\n");
    const routed = h.gateway.ctx.store.recordsOf(buyer).filter((record) => record.routing);
    const savings = h.gateway.ctx.store.routingSavings(buyer);
    let recomputed = 0n;
    for (const record of routed) recomputed += recordCost(record, LARGE_PRICES);
    if (recomputed !== savings.dearestCost) throw new Error(`dearest cost ${savings.dearestCost} disagrees with the records recomputed: ${recomputed}`);
    const byModel = new Map<string, { calls: number; cost: bigint }>();
    for (const record of routed) {
      const entry = byModel.get(record.modelName) ?? { calls: 0, cost: 0n };
      entry.calls++;
      entry.cost += record.cost;
      byModel.set(record.modelName, entry);
    }
    const fmt = (value: bigint) => `${h.gateway.ctx.state.formatAmount(value)} tUSD`;
    console.log("\n| served by | calls | cost |\n|---|---:|---:|");
    for (const [model, { calls, cost }] of byModel) console.log(`| ${model} | ${calls} | ${fmt(cost)} |`);
    const percent = Number((savings.saved * 10_000n) / savings.dearestCost) / 100;
    console.log(`\nrouted ${savings.routedCalls} calls: cost ${fmt(savings.cost)}, all at the dearest candidate ${fmt(savings.dearestCost)}, saved ${fmt(savings.saved)} (${percent}%); recomputed per record: agrees to the unit`);

    // (2) overhead
    const short = { messages: [{ role: "user", content: "Where is my order?" }], max_tokens: 16 };
    console.log("\n(2) the same short prompt, auto vs small-model named, interleaved\n\n| round | auto p50 / p90 / p99 ms | named p50 / p90 / p99 ms | auto/named p50 | p99 |\n|---|---|---|---:|---:|");
    for (let i = 0; i < 50; i++) await post({ ...short, model: i % 2 ? "auto" : "small-model" }); // warm both paths
    for (let round = 1; round <= ROUNDS; round++) {
      const auto: number[] = [];
      const named: number[] = [];
      for (let i = 0; i < PAIRS; i++) {
        // Alternate which goes first, so neither always follows the other's commit.
        if (i % 2) {
          auto.push(await post({ ...short, model: "auto" }));
          named.push(await post({ ...short, model: "small-model" }));
        } else {
          named.push(await post({ ...short, model: "small-model" }));
          auto.push(await post({ ...short, model: "auto" }));
        }
      }
      const a = stats(auto);
      const n = stats(named);
      const ms = (s: ReturnType<typeof stats>) => `${s.p50.toFixed(2)} / ${s.p90.toFixed(2)} / ${s.p99.toFixed(2)}`;
      console.log(`| ${round} | ${ms(a)} | ${ms(n)} | ${(a.p50 / n.p50).toFixed(3)} | ${(a.p99 / n.p99).toFixed(3)} |`);
    }
  } finally {
    await h.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
