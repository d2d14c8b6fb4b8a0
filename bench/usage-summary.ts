/**
 * The usage summary's cost against reading the same records whole (what `/v1/usage` does before it answers):
 *
 *   node -r ts-node/register/transpile-only bench/usage-summary.ts      (BENCH_SUMMARY_RECORDS, default 50,000)
 *
 * Builds a store in a temp directory with one buyer's month of records on three keys (18-decimal costs, so the
 * total passes int64 within a few records), a third of them in traces with retries, and outcomes for half the
 * traces; then times, alternating rounds so a neighbour's load hits every variant alike: the total alone, grouped
 * by tag and day, the workflow report, and `recordsOf` + a bigint sum. Prints medians and ratios to the full read,
 * and what SQLite's SUM(cost) would have said (a REAL: why the summary never lets SQL add costs).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { getAddress, keccak256, toHex, type Hex } from "viem";
import { UsageStore, type PendingAppend, type UsageRecordInput } from "../server/store/usage-store";
import { stats } from "./lib/stats";

const RECORDS = Number(process.env.BENCH_SUMMARY_RECORDS ?? 50_000);
const ROUNDS = 5;
const BUYER = getAddress("0xa11ce00000000000000000000000000000000a11");
const SIGNER = getAddress("0x1111111111111111111111111111111111111111");
const MONTH_START = 1_764_547_200; // 2025-12-01T00:00:00Z
const KEYS = [
  { id: "key-support", tags: ["team:support", "workflow:triage"] },
  { id: "key-search", tags: ["team:search", "workflow:nightly"] },
  { id: "key-ads", tags: ["team:ads"] },
];

const progress = (line: string): void => void process.stderr.write(`[usage-summary bench] ${line}\n`);

function record(i: number): UsageRecordInput {
  const key = KEYS[i % KEYS.length];
  const hash = keccak256(toHex(`r${i}`));
  return {
    requestId: `req-${i}`,
    buyer: BUYER,
    keyId: key.id,
    tags: key.tags,
    endpoint: "chat.completions",
    modelId: 1 + (i % 2),
    modelName: i % 2 === 0 ? "small-model" : "large-model",
    priceEpoch: 0,
    inputTokens: 200 + (i % 500),
    cachedInputTokens: i % 100,
    outputTokens: 50 + (i % 300),
    reasoningTokens: 0,
    gatewayInputTokens: 200 + (i % 500),
    gatewayOutputTokens: 50 + (i % 300),
    countSource: "upstream",
    servedAt: MONTH_START + Math.floor((i / RECORDS) * 30 * 86_400),
    inputPrice: 3n * 10n ** 18n,
    cachedInputPrice: 3n * 10n ** 17n,
    outputPrice: 15n * 10n ** 18n,
    // 18-decimal token: a call costs ~10^15..10^16 base units, so ~1,000 calls pass int64.
    cost: 10n ** 15n + BigInt(i) * 7_919n + BigInt((i * i) % 1_000_003),
    contentHash: hash,
    contentSalt: hash,
    requestHash: keccak256(toHex(`q${i}`)),
    responseHash: hash,
    streamed: false,
    completed: true,
  };
}

function fill(store: UsageStore): void {
  const sign = (sequence: bigint) => {
    const receiptHash = keccak256(toHex(sequence));
    return { receiptHash, signature: `${receiptHash}${"1b".padStart(66, "0")}` as Hex };
  };
  for (let start = 0; start < RECORDS; start += 2_000) {
    const batch: PendingAppend[] = [];
    for (let i = start; i < Math.min(RECORDS, start + 2_000); i++) {
      // A third of the calls in runs of three steps; in every fourth run the third call repeats the second's step (a retry).
      const run = Math.floor(i / 9);
      const attribution = i % 3 === 0 ? { traceId: `run-${run}`, step: run % 4 === 0 && i % 9 === 6 ? "step-1" : `step-${(i % 9) / 3}` } : undefined;
      batch.push({ input: record(i), sign, attribution });
    }
    for (const outcome of store.appendRecords(batch)) if ("error" in outcome) throw outcome.error;
    if (start % 10_000 === 0) progress(`${start.toLocaleString()} / ${RECORDS.toLocaleString()} records written`);
  }
  for (let run = 0; run < RECORDS / 9; run += 2) {
    store.recordOutcome({ buyer: BUYER, traceId: `run-${run}`, type: "ticket_resolved", success: run % 3 !== 0, value: null, keyId: "key-support", recordedAt: MONTH_START + run });
  }
}

function time(fn: () => unknown): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function main(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "usage-summary-bench-"));
  try {
    const store = UsageStore.open({ path: path.join(dir, "usage.sqlite"), signer: SIGNER, firstSequence: 0n });
    for (const key of KEYS) store.insertApiKey({ id: key.id, buyer: BUYER, keyHash: keccak256(toHex(key.id)), label: key.id, spendCap: null, models: null, tags: key.tags, expiresAt: null, createdAt: MONTH_START });
    const fillMs = time(() => fill(store));
    progress(`store filled in ${(fillMs / 1000).toFixed(1)} s`);

    let exact = 0n;
    const variants: [string, () => unknown][] = [
      ["summary: total only", () => store.usageSummary(BUYER, [])],
      ["summary: by tag, day", () => store.usageSummary(BUYER, ["tag", "day"])],
      ["workflow report", () => store.workflowCosts(BUYER)],
      ["recordsOf + bigint sum (full rows)", () => (exact = store.recordsOf(BUYER).reduce((sum, r) => sum + r.cost, 0n))],
    ];
    const samples = variants.map(() => [] as number[]);
    for (let round = 0; round <= ROUNDS; round++) {
      progress(round === 0 ? "warm-up round" : `round ${round} / ${ROUNDS}`);
      variants.forEach(([, fn], i) => {
        const ms = time(fn);
        if (round > 0) samples[i].push(ms);
      });
    }
    const baseline = stats(samples[variants.length - 1]).p50;
    console.log(`\n${RECORDS.toLocaleString()} records of one buyer, ${ROUNDS} alternating rounds (median ms, ratio to the full-row read):`);
    variants.forEach(([name], i) => {
      const p50 = stats(samples[i]).p50;
      console.log(`  ${name.padEnd(36)} ${p50.toFixed(1).padStart(9)} ms   ${(p50 / baseline).toFixed(2)}x`);
    });

    const summaryTotal = store.usageSummary(BUYER, []).total.cost;
    const db = new Database(path.join(dir, "usage.sqlite"), { readonly: true });
    let sumSays: string;
    try {
      sumSays = String((db.prepare("SELECT SUM(cost) AS s FROM usage_records WHERE buyer = ?").get(BUYER) as { s: unknown }).s);
    } catch (error) {
      sumSays = `fails: ${(error as Error).message}`;
    }
    const sqlTotal = (db.prepare("SELECT TOTAL(cost) AS s FROM usage_records WHERE buyer = ?").get(BUYER) as { s: number }).s;
    db.close();
    console.log(`\nexact total (bigint):      ${summaryTotal}  (${summaryTotal === exact ? "equals" : "DIFFERS FROM"} the full-row sum)`);
    console.log(`SQLite SUM(cost):          ${sumSays}`);
    console.log(`SQLite TOTAL(cost) (REAL): ${sqlTotal.toPrecision(17)}  off by ${(BigInt(sqlTotal) - summaryTotal).toString()} base units`);
    store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
