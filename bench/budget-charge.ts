/**
 * What budgets cost the record's commit: the same groups of records appended to two usage stores side by side,
 * one with no budgets and one where every record counts against three (its two tags, one of them per month and
 * per week: one SELECT and one UPSERT each, inside the record's savepoint). No trace: the attribution's retry
 * lookup would dominate both sides and is not what is measured here. Rounds alternate between the stores so both see the same
 * machine load; prints records per second of each and their ratio.
 *
 *   npx ts-node --transpile-only bench/budget-charge.ts [rounds=20] [groupSize=64]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { getAddress, keccak256, toHex, type Hex } from "viem";
import { UsageStore, type PendingAppend } from "../server/store/usage-store";

const rounds = Number(process.argv[2] ?? 20);
const groupSize = Number(process.argv[3] ?? 64);
const BUYER = getAddress("0xa11ce00000000000000000000000000000000a11");
const SERVED_AT = Math.floor(Date.now() / 1000);
let counter = 0;

function entry(): PendingAppend {
  counter++;
  const hash = (what: string) => keccak256(toHex(`${what}-${counter}`));
  return {
    input: {
      requestId: `req-${counter}`, buyer: BUYER, keyId: "key-1", tags: ["team:support", "workflow:triage"], endpoint: "chat.completions",
      modelId: 1, modelName: "small-model", priceEpoch: 0, inputTokens: 120, cachedInputTokens: 0, outputTokens: 45, reasoningTokens: 0,
      gatewayInputTokens: 120, gatewayOutputTokens: 45, countSource: "upstream", servedAt: SERVED_AT, inputPrice: 150_000n,
      cachedInputPrice: 75_000n, outputPrice: 600_000n, cost: 45n, contentHash: hash("c"), contentSalt: hash("s"), requestHash: hash("r"),
      responseHash: hash("p"), streamed: false, completed: true,
    },
    sign: (sequence) => {
      const receiptHash = keccak256(toHex(sequence));
      return { receiptHash, signature: `${receiptHash}${"1b".padStart(66, "0")}` as Hex };
    },
  };
}

function openStore(dir: string, budgets: boolean): UsageStore {
  const store = UsageStore.open({ path: path.join(dir, "usage.sqlite"), signer: getAddress("0x1111111111111111111111111111111111111111"), firstSequence: 0n });
  store.insertApiKey({ id: "key-1", buyer: BUYER, keyHash: keccak256(toHex(dir)), label: "", spendCap: null, models: null, tags: ["team:support", "workflow:triage"], expiresAt: null, createdAt: SERVED_AT });
  if (budgets) {
    const base = { buyer: BUYER, limit: 10n ** 30n, thresholdsBps: [8000, 10000], webhookUrl: null, webhookSecret: null, degrade: null, label: "", createdAt: SERVED_AT, deletedAt: null };
    store.createBudget({ ...base, id: "bud_a", scope: "tag", target: "team:support", period: "month" }, SERVED_AT);
    store.createBudget({ ...base, id: "bud_b", scope: "tag", target: "workflow:triage", period: "day" }, SERVED_AT);
    store.createBudget({ ...base, id: "bud_c", scope: "tag", target: "team:support", period: "week" }, SERVED_AT);
  }
  return store;
}

const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), "budget-bench-")));
const stores = { none: openStore(dirs[0], false), three: openStore(dirs[1], true) };
const seconds = { none: 0, three: 0 };
try {
  for (let round = 0; round < rounds; round++) {
    for (const name of (round % 2 === 0 ? ["none", "three"] : ["three", "none"]) as (keyof typeof stores)[]) {
      const group = Array.from({ length: groupSize }, entry);
      const started = performance.now();
      stores[name].appendRecords(group);
      seconds[name] += (performance.now() - started) / 1000;
    }
    if ((round + 1) % 5 === 0) process.stderr.write(`round ${round + 1}/${rounds}\n`);
  }
  const perSecond = (name: keyof typeof stores) => Math.round((rounds * groupSize) / seconds[name]);
  console.log(`records appended per second, ${rounds} groups of ${groupSize} each:`);
  console.log(`  no budgets:              ${perSecond("none")}`);
  console.log(`  three budgets per record: ${perSecond("three")}`);
  console.log(`  ratio (three / none):     ${(perSecond("three") / perSecond("none")).toFixed(2)}`);
} finally {
  for (const store of Object.values(stores)) store.close();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
}
