/**
 * Where a gateway's CPU time went, from V8's .cpuprofile (`node --cpu-prof --cpu-prof-dir=…`): self time per
 * package and per function, and the inclusive time of the steps of one metered call. Samples taken while
 * modules load (start-up: ts-node compiling the sources) and idle samples are left out, so shares are of the
 * time spent serving.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const log = (line: string) => console.log(`[bench] ${line}`);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

function packageOf(url: string): string {
  if (!url) return "(native / V8)";
  if (url.startsWith("node:")) return "node core";
  const nm = url.lastIndexOf("node_modules/");
  if (nm !== -1) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const server = url.indexOf("/server/");
  if (server !== -1) return url.slice(server + 1);
  return url.replace(/^file:\/\//, "");
}

/** [label, function name, end of its script URL ("" for native frames)] */
const PROFILE_STEPS: Array<[string, string, string]> = [
  ["meter.record (synchronous part: counts, content commitment, queueing the record)", "record", "server/gateway/metering/meter.ts"],
  ["  content commitment (3 × keccak256 + salt)", "commitContent", "server/gateway/metering/content-hash.ts"],
  ["group commit: one SQLite transaction per group of records (signatures included)", "flush", "server/gateway/metering/group-commit.ts"],
  ["  one record's savepoint, insert and key spend", "writeRecord", "server/store/usage-records.ts"],
  ["    receipt signature (2 × keccak256 + secp256k1)", "sign", "server/gateway/metering/receipt-signer.ts"],
  ["keccak256, all callers (the keccak package, native)", "keccak256Bytes", "server/chain/keccak.ts"],
  ["secp256k1 ecdsaSign (native)", "ecdsaSign", "secp256k1/lib/index.js"],
  ["express app (routing, middleware; synchronous part)", "app", "express/lib/express.js"],
  ["prompt token count (inline)", "countChatPromptSync", "server/gateway/metering/tokenizer.ts"],
  ["upstream send (request dispatch)", "send", "server/upstream/openai-compatible.ts"],
  ["socket writes (writev)", "writev", ""],
  ["chain reads (buyer snapshots)", "buyerSnapshot", "server/chain/marketplace-reader.ts"],
];

export function printCpuProfile(profileDir: string): void {
  const files = fs.existsSync(profileDir) ? fs.readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile")) : [];
  if (files.length === 0) {
    log("no CPU profile was written (the gateway must exit normally for --cpu-prof to write one)");
    return;
  }
  // The main thread's profile is the largest; worker threads (the tokenizer) write their own.
  const file = files.map((f) => path.join(profileDir, f)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
  const kept = path.join(os.tmpdir(), `tollgate-gateway-${Date.now()}.cpuprofile`);
  fs.copyFileSync(file, kept);
  log(`gateway CPU profile kept at ${kept} (open it in Chrome DevTools → Performance, or VS Code)`);
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const matches = (frame: ProfileNode["callFrame"], fn: string, file: string) =>
    frame.functionName === fn && (file === "" ? frame.url === "" : frame.url.endsWith(file));

  let total = 0;
  let idle = 0;
  let startup = 0;
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const steps = PROFILE_STEPS.map(() => 0);
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    const leaf = byId.get(id)!.callFrame;
    if (leaf.functionName === "(idle)") {
      idle += us;
      return;
    }
    const stack: ProfileNode["callFrame"][] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) stack.push(byId.get(n)!.callFrame);
    if (stack.some((frame) => frame.functionName === "Module._load")) {
      startup += us;
      return;
    }
    const pkg = leaf.functionName.startsWith("(") ? leaf.functionName : packageOf(leaf.url);
    const fn = `${leaf.functionName || "(anonymous)"}  ${packageOf(leaf.url)}${leaf.url ? `:${leaf.lineNumber + 1}` : ""}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    PROFILE_STEPS.forEach(([, name, script], k) => {
      if (stack.some((frame) => matches(frame, name, script))) steps[k] += us;
    });
  });
  const serving = total - idle - startup;
  const row = (label: string, us: number) => `| ${label} | ${(us / 1000).toFixed(0)} | ${((100 * us) / serving).toFixed(1)}% |`;
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => row(k, us));
  console.log(
    `Gateway CPU profile: ${(total / 1e6).toFixed(1)} s sampled: ${(serving / 1e6).toFixed(1)} s serving, ${(startup / 1e6).toFixed(1)} s start-up (module loading), ` +
      `${(idle / 1e6).toFixed(1)} s idle. Shares are of the serving time.\n`,
  );
  console.log(["| package / category (self time) | ms | share |", "|:---|---:|---:|", ...top(byPackage, 20)].join("\n"));
  console.log("");
  console.log(["| function (self time) | ms | share |", "|:---|---:|---:|", ...top(byFunction, 25)].join("\n"));
  console.log("");
  // Async steps count only their synchronous part; the upstream round trip shows up as undici and node core above.
  console.log(["| step of a metered call (inclusive time) | ms | share |", "|:---|---:|---:|", ...PROFILE_STEPS.map(([label], k) => row(label, steps[k]))].join("\n"));
  console.log("");
}

