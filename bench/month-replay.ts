/**
 * A synthetic month of a small company's AI traffic, replayed through the metered gateway, settled on-chain,
 * and reported three ways that must agree to the unit (issue 13):
 *   - the receipts the company's clients received (what it can prove),
 *   - the gateway's usage summary (`GET /v1/usage/summary`: by team, workflow, model, day; the retry tail;
 *     cost per outcome),
 *   - what the chain settled, rebuilt from chain data alone (`auditDeployment`).
 *
 * The company is one wallet with three teams (support, sales, engineering) and five workflows, one API key
 * each, tagged `team:*` and `workflow:*`. Every simulated day each workflow runs BENCH_RUNS_PER_DAY times; a run
 * is a trace of two or three steps (`x-tollgate-trace-id`, `x-tollgate-step`), each step retried (same bytes,
 * same step) with probability BENCH_RETRY_RATE, and ends with an outcome posted to `POST /v1/outcomes`
 * (success with the workflow's own probability). Between days the chain's clock moves one day ahead (the
 * gateway dates records by the chain's clock when it runs ahead), and the oracle settles the day's records.
 * Randomness is a seeded generator, so a run is reproducible.
 *
 *   npm run bench:month    (BENCH_MONTH_DAYS=30, BENCH_RUNS_PER_DAY=2, BENCH_RETRY_RATE=0.15, BENCH_SEED=13)
 *
 * Exits non-zero if any figure disagrees.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre from "hardhat";
import OpenAI from "openai";
import { formatUnits, parseUnits, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import {
  auditDeployment,
  createApiKey,
  depositWithPermit,
  getPaymentToken,
  listModel,
  mintTestTokens,
  registerProvider,
  setSignerAuthorization,
  type TollgateClient,
} from "../client";
import { parseReceiptHeader, usageReceiptFromEnvelope } from "../server/chain/receipt-envelope";
import { Closers, deployLocal, localTollgateClient, readOnlyClient, startLocalChain, startProviderServices } from "../scripts/lib/local-marketplace";

const DAYS = Number(process.env.BENCH_MONTH_DAYS ?? 30);
const RUNS_PER_DAY = Number(process.env.BENCH_RUNS_PER_DAY ?? 2);
const RETRY_RATE = Number(process.env.BENCH_RETRY_RATE ?? 0.15);
const SEED = Number(process.env.BENCH_SEED ?? 13);
const DAY = 86_400;

const log = (line: string) => console.log(`[month] ${line}`);

const MODELS = [
  { name: "small-model", upstreamModel: "sim-chat-mini", maxOutputTokens: 1024, prices: { input: "0.15", cachedInput: "0.075", output: "0.60" } },
  { name: "large-model", upstreamModel: "sim-chat", maxOutputTokens: 2048, prices: { input: "2.50", cachedInput: "1.25", output: "10" } },
] as const;

interface Workflow {
  team: string;
  name: string;
  steps: ReadonlyArray<{ step: string; model: string; maxTokens: number }>;
  /** Probability that a run's outcome is a success. */
  success: number;
  outcome: string;
}

const WORKFLOWS: readonly Workflow[] = [
  { team: "support", name: "triage", outcome: "ticket_triaged", success: 0.95, steps: [{ step: "classify", model: "small-model", maxTokens: 16 }, { step: "summarise", model: "small-model", maxTokens: 48 }] },
  { team: "support", name: "reply", outcome: "ticket_resolved", success: 0.8, steps: [{ step: "draft", model: "large-model", maxTokens: 64 }, { step: "polish", model: "small-model", maxTokens: 48 }] },
  { team: "sales", name: "outreach", outcome: "meeting_booked", success: 0.6, steps: [{ step: "research", model: "small-model", maxTokens: 48 }, { step: "draft", model: "large-model", maxTokens: 64 }] },
  { team: "engineering", name: "codegen", outcome: "pr_merged", success: 0.65, steps: [{ step: "plan", model: "large-model", maxTokens: 32 }, { step: "code", model: "large-model", maxTokens: 96 }, { step: "test", model: "small-model", maxTokens: 32 }] },
  { team: "engineering", name: "review", outcome: "review_done", success: 0.9, steps: [{ step: "review", model: "small-model", maxTokens: 64 }] },
];

/** mulberry32: small, seeded, good enough to pick retries and outcomes reproducibly. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** What the company's own clients saw: one entry per answered call, from its receipt. */
interface ReceivedCall {
  sequence: bigint;
  cost: bigint;
  team: string;
  workflow: string;
  model: string;
  trace: string;
  retry: boolean;
  day: string;
}

interface RunOutcome {
  trace: string;
  workflow: string;
  type: string;
  success: boolean;
}

function add(map: Map<string, bigint>, key: string, value: bigint): void {
  map.set(key, (map.get(key) ?? 0n) + value);
}

function utcDay(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

async function main(): Promise<void> {
  const started = Date.now();
  const closers = new Closers();
  const failures: string[] = [];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-month-"));
  try {
    log(`${DAYS} days × ${WORKFLOWS.length} workflows × ${RUNS_PER_DAY} runs a day, retry rate ${RETRY_RATE}, seed ${SEED}`);
    const local = await startLocalChain(hre, { log, closers });
    const deploymentFile = path.join(dataDir, "deployment.json");
    const { deployment } = await deployLocal(local, deploymentFile);
    const as = async (account: PrivateKeyAccount, key: Hex, gatewayUrl?: string): Promise<TollgateClient> => {
      await local.fundGas(account.address);
      return localTollgateClient(local, await readOnlyClient(local, deployment, gatewayUrl), key, (description) => description);
    };
    const token = await getPaymentToken(await readOnlyClient(local, deployment));
    const units = (value: string) => parseUnits(value, token.decimals);
    const amount = (value: bigint) => `${formatUnits(value, token.decimals)} ${token.symbol}`;

    // The provider: two models, a gateway key.
    const providerKey = generatePrivateKey();
    const provider = privateKeyToAccount(providerKey);
    const asProvider = await as(provider, providerKey);
    const { providerId } = await registerProvider(asProvider, { payout: provider.address, metadataUri: "https://provider.example/tollgate.json" });
    const modelIds = new Map<string, number>();
    for (const model of MODELS) {
      const prices = { input: units(model.prices.input), cachedInput: units(model.prices.cachedInput), output: units(model.prices.output) };
      modelIds.set(model.name, (await listModel(asProvider, { providerId, name: model.name, prices })).modelId);
    }
    const gatewayKey = generatePrivateKey();
    const gatewaySigner = privateKeyToAccount(gatewayKey).address;
    await setSignerAuthorization(asProvider, { providerId, signer: gatewaySigner, authorized: true });
    const oracleKey = generatePrivateKey();
    await local.fundGas(privateKeyToAccount(oracleKey).address);

    const services = await startProviderServices({
      local,
      deploymentFile,
      providerId,
      models: MODELS.map((model) => ({ name: model.name, modelId: modelIds.get(model.name)!, upstreamModel: model.upstreamModel, maxOutputTokens: model.maxOutputTokens })),
      gatewayKey,
      oracleKey,
      dataDir,
      gatewayPort: 0,
      batchMaxAgeMs: 60_000,
      logLevel: "warn",
      log,
      closers,
    });
    const { gateway, gatewayUrl } = services;

    // The company: one wallet, a deposit, one key per workflow.
    const companyKey = generatePrivateKey();
    const company = privateKeyToAccount(companyKey);
    const asCompany = await as(company, companyKey, gatewayUrl);
    await mintTestTokens(asCompany, { amount: units("100") });
    await depositWithPermit(asCompany, { amount: units("100") });
    const clients = new Map<string, OpenAI>();
    const apiKeys = new Map<string, string>();
    for (const workflow of WORKFLOWS) {
      const created = await createApiKey(asCompany, { label: `${workflow.team}/${workflow.name}`, tags: [`team:${workflow.team}`, `workflow:${workflow.name}`] });
      apiKeys.set(workflow.name, created.key);
      clients.set(workflow.name, new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: created.key, maxRetries: 0, timeout: 60_000 }));
    }
    log(`gateway ${gatewayUrl}; company ${company.address} deposited ${amount(units("100"))}; ${WORKFLOWS.length} keys`);

    const random = seeded(SEED);
    const received: ReceivedCall[] = [];
    const outcomes: RunOutcome[] = [];
    const firstDay = gateway.ctx.state.now();
    for (let day = 0; day < DAYS; day++) {
      if (day > 0) {
        // The next business day: the chain's clock (and with it the gateway's) moves a day ahead.
        await local.hre.network.provider.request({ method: "evm_increaseTime", params: [DAY] });
        await local.hre.network.provider.request({ method: "evm_mine", params: [] });
        await gateway.ctx.state.refresh();
      }
      let dayCalls = 0;
      let dayRetries = 0;
      for (let run = 0; run < RUNS_PER_DAY; run++) {
        for (const workflow of WORKFLOWS) {
          const trace = `${workflow.name}-d${day + 1}-r${run + 1}`;
          const client = clients.get(workflow.name)!;
          for (const step of workflow.steps) {
            const params = {
              model: step.model,
              max_tokens: step.maxTokens,
              messages: [{ role: "user" as const, content: `${workflow.name}/${step.step}: case ${trace}. Answer briefly.` }],
            };
            // A first try, then retries of the same request (a timeout, a bad answer) at the set rate, at most two.
            for (let attempt = 0; attempt < 3; attempt++) {
              if (attempt > 0 && random() >= RETRY_RATE) break;
              const raw = await client.chat.completions.create(params, { headers: { "x-tollgate-trace-id": trace, "x-tollgate-step": step.step } }).asResponse();
              await raw.arrayBuffer();
              const receipt = usageReceiptFromEnvelope(parseReceiptHeader(raw.headers.get("x-tollgate-receipt")!));
              received.push({ sequence: receipt.sequence, cost: receipt.cost, team: workflow.team, workflow: workflow.name, model: step.model, trace, retry: attempt > 0, day: utcDay(receipt.servedAt) });
              dayCalls++;
              if (attempt > 0) dayRetries++;
            }
          }
          const success = random() < workflow.success;
          const posted = await fetch(`${gatewayUrl}/v1/outcomes`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${apiKeys.get(workflow.name)}` },
            body: JSON.stringify({ trace_id: trace, type: workflow.outcome, success }),
          });
          if (posted.status !== 201) failures.push(`outcome of ${trace}: HTTP ${posted.status} ${await posted.text()}`);
          outcomes.push({ trace, workflow: workflow.name, type: workflow.outcome, success });
        }
      }
      await services.settle(120_000);
      const spent = received.reduce((sum, call) => sum + call.cost, 0n);
      log(`day ${String(day + 1).padStart(2)}/${DAYS} (${utcDay(gateway.ctx.state.now())}): ${dayCalls} calls, ${dayRetries} retries; month so far ${received.length} calls, ${amount(spent)}; all settled`);
    }
    const lastDay = gateway.ctx.state.now();

    // --- three views of the same month ---------------------------------------------------------------
    const receiptTotals = { all: 0n, byTeam: new Map<string, bigint>(), byWorkflow: new Map<string, bigint>(), byModel: new Map<string, bigint>(), byDay: new Map<string, bigint>() };
    for (const call of received) {
      receiptTotals.all += call.cost;
      add(receiptTotals.byTeam, `team:${call.team}`, call.cost);
      add(receiptTotals.byWorkflow, `workflow:${call.workflow}`, call.cost);
      add(receiptTotals.byModel, call.model, call.cost);
      add(receiptTotals.byDay, call.day, call.cost);
    }

    const audit = await auditDeployment(local.client, deployment, { signer: gatewaySigner });
    const chainTotals = { all: 0n, byModel: new Map<string, bigint>(), byDay: new Map<string, bigint>(), bySequence: new Map<bigint, bigint>() };
    const modelNames = new Map([...modelIds].map(([name, id]) => [id, name]));
    for (const batch of audit.batches) {
      for (const record of batch.records) {
        if (record.buyer.toLowerCase() !== company.address.toLowerCase()) continue;
        chainTotals.all += record.cost;
        add(chainTotals.byModel, modelNames.get(record.modelId) ?? `model #${record.modelId}`, record.cost);
        add(chainTotals.byDay, utcDay(record.servedAt), record.cost);
        chainTotals.bySequence.set(record.sequence, record.cost);
      }
    }
    const receiptMismatches = received.filter((call) => chainTotals.bySequence.get(call.sequence) !== call.cost).length;
    if (receiptMismatches > 0) failures.push(`${receiptMismatches} receipts differ from the chain's record of the same sequence`);

    const summary = await fetchSummary(gatewayUrl, apiKeys.get(WORKFLOWS[0].name)!, firstDay, lastDay + 1);
    const rows: string[][] = [];
    const compare = (what: string, fromReceipts: bigint | undefined, fromSummary: bigint | undefined, fromChain: bigint | undefined) => {
      const values = [fromReceipts, fromSummary, fromChain].filter((v): v is bigint => v !== undefined);
      const agree = values.length > 1 && values.every((v) => v === values[0]);
      if (!agree) failures.push(`${what}: receipts ${fromReceipts}, summary ${fromSummary}, chain ${fromChain}`);
      const cell = (v: bigint | undefined) => (v === undefined ? "—" : amount(v));
      rows.push([what, cell(fromReceipts), cell(fromSummary), cell(fromChain), agree ? "agree" : "**DIFFER**"]);
    };
    compare("whole month", receiptTotals.all, summary.total, chainTotals.all);
    for (const [team, cost] of receiptTotals.byTeam) compare(team, cost, summary.byTag.get(team), undefined);
    for (const [workflow, cost] of receiptTotals.byWorkflow) compare(workflow, cost, summary.byTag.get(workflow), undefined);
    for (const [model, cost] of receiptTotals.byModel) compare(model, cost, summary.byModel.get(model), chainTotals.byModel.get(model));
    const days = [...receiptTotals.byDay.keys()].sort();
    let daysAgreeing = 0;
    for (const day of days) {
      const values = [receiptTotals.byDay.get(day), summary.byDay.get(day), chainTotals.byDay.get(day)];
      if (values.every((v) => v === values[0])) daysAgreeing++;
      else failures.push(`${day}: receipts ${values[0]}, summary ${values[1]}, chain ${values[2]}`);
    }

    console.log("\n------------------------ markdown ------------------------\n");
    console.log(`A month of one company's traffic (${DAYS} days, ${received.length} calls, ${outcomes.length} runs), three ways\n`);
    console.log("| figure | the company's receipts | gateway summary | chain (settled) | |");
    console.log("|:---|---:|---:|---:|:---|");
    for (const row of rows) console.log(`| ${row.join(" | ")} |`);
    console.log(`| ${days.length} days, each | | | | ${daysAgreeing} of ${days.length} agree |`);
    console.log(`| each receipt against the chain's record of its sequence | | | | ${received.length - receiptMismatches} of ${received.length} agree |`);

    console.log("\nThe retry tail and cost per outcome, per workflow (gateway summary; expected from the generator)\n");
    console.log("| workflow | runs | retried calls (summary / generator) | retry share of cost | first-try success | cost per completed run | cost per successful outcome |");
    console.log("|:---|---:|---:|---:|---:|---:|---:|");
    for (const workflow of WORKFLOWS) {
      const calls = received.filter((call) => call.workflow === workflow.name);
      const retried = calls.filter((call) => call.retry);
      const runs = outcomes.filter((o) => o.workflow === workflow.name);
      const row = summary.workflows.get(`workflow:${workflow.name}`);
      const expectRetryCost = retried.reduce((sum, call) => sum + call.cost, 0n);
      if (row && row.retryCost !== expectRetryCost) failures.push(`workflow:${workflow.name} retry cost: summary ${row.retryCost}, generator ${expectRetryCost}`);
      if (row && row.retriedCalls !== retried.length) failures.push(`workflow:${workflow.name} retried calls: summary ${row.retriedCalls}, generator ${retried.length}`);
      console.log(
        `| ${workflow.team}/${workflow.name} | ${runs.length} | ${row?.retriedCalls ?? "—"} / ${retried.length} | ${row?.retryShare ?? "—"} | ${row?.firstTrySuccessRate ?? "—"} | ` +
          `${row?.costPerCompletedRun ?? "—"} | ${row?.costPerSuccessfulOutcome ?? "—"} |`,
      );
    }
    console.log("\n------------------------ end of markdown ------------------------\n");
    log(`finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (failures.length > 0) {
      for (const failure of failures) log(`DISAGREE: ${failure}`);
      process.exitCode = 1;
    } else log("every figure agrees to the unit");
  } finally {
    await closers.closeAll();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

interface WorkflowFigures {
  retriedCalls: number;
  retryCost: bigint;
  retryShare: string;
  firstTrySuccessRate: string;
  costPerCompletedRun: string;
  costPerSuccessfulOutcome: string;
}

interface SummaryFigures {
  total: bigint;
  byTag: Map<string, bigint>;
  byModel: Map<string, bigint>;
  byDay: Map<string, bigint>;
  workflows: Map<string, WorkflowFigures>;
}

/** The gateway's own summary of the month, read over HTTP (`GET /v1/usage/summary`) as a finance tool would. */
async function fetchSummary(gatewayUrl: string, apiKey: string, from: number, to: number): Promise<SummaryFigures> {
  type Group = Record<string, unknown> & { cost: string };
  type WorkflowRow = {
    workflow: string;
    retry_calls: number;
    retry_cost: string;
    retry_cost_share: string | null;
    first_try_success_rate: string | null;
    cost_per_completed_run_formatted: string | null;
    outcomes: { type: string; cost_per_successful_outcome_formatted: string | null }[];
  };
  type Summary = { total: { cost: string }; groups: Group[]; workflows: WorkflowRow[] };
  const read = async (groupBy: string): Promise<Summary> => {
    const response = await fetch(`${gatewayUrl}/v1/usage/summary?group_by=${groupBy}&from=${from}&to=${to}`, { headers: { authorization: `Bearer ${apiKey}` } });
    if (response.status !== 200) throw new Error(`GET /v1/usage/summary?group_by=${groupBy}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as Summary;
  };
  const byField = (summary: Summary, field: string) => new Map(summary.groups.map((group) => [String(group[field]), BigInt(group.cost)]));
  const [byTag, byModel, byDay] = await Promise.all([read("tag"), read("model"), read("day")]);
  const workflows = new Map<string, WorkflowFigures>();
  for (const row of byTag.workflows) {
    workflows.set(row.workflow.startsWith("workflow:") ? row.workflow : `workflow:${row.workflow}`, {
      retriedCalls: row.retry_calls,
      retryCost: BigInt(row.retry_cost),
      retryShare: row.retry_cost_share ?? "—",
      firstTrySuccessRate: row.first_try_success_rate ?? "—",
      costPerCompletedRun: row.cost_per_completed_run_formatted ?? "—",
      costPerSuccessfulOutcome: row.outcomes.map((o) => `${o.type} ${o.cost_per_successful_outcome_formatted ?? "—"}`).join(", ") || "—",
    });
  }
  return { total: BigInt(byTag.total.cost), byTag: byField(byTag, "tag"), byModel: byField(byModel, "model"), byDay: byField(byDay, "day"), workflows };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
