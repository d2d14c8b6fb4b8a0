/**
 * Issue 12's tokenizer question, measured side by side in one run: our counter against tiktoken (WASM,
 * OpenAI's reference) and gpt-tokenizer's public countTokens, for both encodings:
 *   - throughput on the bench's corpora (in this process, steady state after a warm-up count, the
 *     candidates timed in interleaved rounds, the median round per cell);
 *   - exactness against tiktoken on those corpora and on test/gateway/tokenizer.test.ts's texts;
 *   - the hostile worst case (one run of lowercase letters, no space) at growing lengths, each candidate
 *     in a process of its own (bench/lib/tokenizer-probe.ts) killed when a count passes the cap;
 *   - load + first count time and memory (in that fresh process), and a ~1 KB text's count latency.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { tokenizerTestTexts } from "../../test/helpers/tokenizer-corpora";
import { ENCODING_NAMES, type EncodingName } from "../../server/gateway/metering/tokenizer";
import { CANDIDATE_LABELS, CANDIDATE_NAMES, type CandidateName, type Counter, openCounter } from "./tokenizer-candidates";
import type { ProbeEvent } from "./tokenizer-probe";

export interface ComparisonOptions {
  /** Normal-text corpora, counted in this process. */
  corpora: Record<string, string>;
  /** Hostile lengths (characters), ascending; the last one is the hostile corpus's row in the throughput table. */
  hostileLengths: number[];
  /** A count running longer than this is stopped (its process killed) and printed as "> cap". */
  capMs: number;
  /** A ~1 KB text, counted alone: the latency a typical chat prompt adds. */
  promptText: string;
  progress(line: string): void;
}

type HostileResult =
  | { status: "done"; ms: number; tokens: number }
  | { status: "killed" }
  | { status: "skipped"; estimateMs: number }
  | { status: "not run" };

interface ProbeResult {
  load?: { ms: number; rssMB: number; heapMB: number };
  hostile: Map<number, HostileResult>;
  failure?: string;
}

const PROBE = path.join(__dirname, "tokenizer-probe.ts");

function runProbe(candidate: CandidateName, encoding: EncodingName, lengths: number[], capMs: number): Promise<ProbeResult> {
  const result: ProbeResult = { hostile: new Map(lengths.map((length) => [length, { status: "not run" }])) };
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "-r", require.resolve("ts-node/register/transpile-only"), PROBE, candidate, encoding, String(capMs), ...lengths.map(String)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let timer: NodeJS.Timeout | undefined;
    let running: number | undefined;
    let buffered = "";
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const event = JSON.parse(buffered.slice(0, newline)) as ProbeEvent;
        buffered = buffered.slice(newline + 1);
        clearTimeout(timer);
        if (event.kind === "load") result.load = event;
        else if (event.kind === "skipped") result.hostile.set(event.length, { status: "skipped", estimateMs: event.estimateMs });
        else if (event.kind === "done") result.hostile.set(event.length, { status: "done", ms: event.ms, tokens: event.tokens });
        else {
          running = event.length;
          timer = setTimeout(() => {
            result.hostile.set(event.length, { status: "killed" });
            child.kill("SIGKILL");
          }, capMs);
        }
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const stoppedByUs = running !== undefined && result.hostile.get(running)?.status === "killed";
      if (!stoppedByUs && (code !== 0 || signal !== null)) {
        result.failure = `probe ${candidate} ${encoding} exited with ${signal ?? code}: ${stderr.trim().split("\n").slice(-3).join(" ")}`;
      }
      resolve(result);
    });
  });
}

/** Rounds of timing, interleaved over candidates and corpora; one round times each cell for >= ROUND_MS. */
const ROUNDS = 5;
const ROUND_MS = 100;
const PROMPT = "~1 KB text";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function msPerPass(fn: () => unknown, minMs: number, minPasses: number): number {
  let passes = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (passes < minPasses || elapsedMs < minMs) {
    fn();
    passes++;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return elapsedMs / passes;
}

const number = (value: number, digits = 0): string =>
  value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** MB/s with two decimals, three below 0.1 (the quadratic libraries on the hostile run). */
const rate = (mbPerSecond: number): string => number(mbPerSecond, mbPerSecond < 0.1 ? 3 : 2);

function seconds(ms: number): string {
  return ms >= 10_000 ? `${number(ms / 1000)} s` : `${number(ms / 1000, 1)} s`;
}

function hostileCell(result: HostileResult | undefined, capMs: number): string {
  switch (result?.status) {
    case "done":
      return result.ms >= 1000 ? seconds(result.ms) : `${number(result.ms, result.ms < 10 ? 1 : 0)} ms`;
    case "killed":
      return `> ${seconds(capMs)} (stopped)`;
    case "skipped":
      return `> ${seconds(capMs)} (not run: ~${seconds(result.estimateMs)} by n²)`;
    default:
      return "not run";
  }
}

function exactCell(count: number, reference: number): string {
  if (count === reference) return "yes";
  const diff = count - reference;
  return `**no** (${diff > 0 ? "+" : ""}${diff})`;
}

/** Exactness on the hostile run: at the longest length both the candidate and tiktoken finished. */
function hostileExact(mine: ProbeResult, reference: ProbeResult, lengths: number[]): string {
  const longest = lengths[lengths.length - 1];
  for (const length of [...lengths].reverse()) {
    const a = mine.hostile.get(length);
    const b = reference.hostile.get(length);
    if (a?.status !== "done" || b?.status !== "done") continue;
    const verdict = exactCell(a.tokens, b.tokens);
    return length === longest ? verdict : `${verdict} at ${number(length)} chars (longer not counted by both)`;
  }
  return "unknown (no length counted by both)";
}

export async function compareTokenizers(options: ComparisonOptions): Promise<string[]> {
  const { corpora, hostileLengths, capMs, promptText, progress } = options;
  const probes = new Map<string, ProbeResult>();
  for (const encoding of ENCODING_NAMES) {
    for (const candidate of CANDIDATE_NAMES) {
      progress(`${candidate} ${encoding}: load, then hostile ${hostileLengths.map((n) => number(n)).join(" / ")} chars (own process, cap ${seconds(capMs)})…`);
      const result = await runProbe(candidate, encoding, hostileLengths, capMs);
      if (result.failure) throw new Error(result.failure);
      probes.set(`${candidate} ${encoding}`, result);
    }
  }

  const throughput: string[] = [];
  const worstCase: string[] = [];
  const costs: string[] = [];
  const testTexts = tokenizerTestTexts();
  const longest = hostileLengths[hostileLengths.length - 1];
  for (const encoding of ENCODING_NAMES) {
    progress(`${encoding}: throughput and exactness of ${CANDIDATE_NAMES.join(", ")} on ${Object.keys(corpora).join(", ")}…`);
    const counters = new Map<CandidateName, Counter>(CANDIDATE_NAMES.map((name) => [name, openCounter(name, encoding)]));
    const reference = counters.get("tiktoken") as Counter;
    try {
      const references = Object.fromEntries(Object.entries(corpora).map(([name, text]) => [name, reference.count(text)]));
      const testReferences = testTexts.map(([, text]) => reference.count(text));
      // Interleaved rounds, the median per cell: a load spike from a neighbour hits every candidate alike.
      // The ~1 KB text is timed in the same rounds, as one more corpus.
      const timed = { ...corpora, [PROMPT]: promptText };
      const counts = new Map<string, number>();
      const samples = new Map<string, number[]>();
      for (const candidate of CANDIDATE_NAMES) {
        for (const [corpus, text] of Object.entries(timed)) {
          counts.set(`${candidate} ${corpus}`, (counters.get(candidate) as Counter).count(text)); // warm-up (JIT, merge cache) and exactness
        }
      }
      for (let round = 0; round < ROUNDS; round++) {
        for (const candidate of CANDIDATE_NAMES) {
          const counter = counters.get(candidate) as Counter;
          for (const [corpus, text] of Object.entries(timed)) {
            const key = `${candidate} ${corpus}`;
            samples.set(key, [...(samples.get(key) ?? []), msPerPass(() => counter.count(text), ROUND_MS, 1)]);
          }
        }
      }
      for (const candidate of CANDIDATE_NAMES) {
        const counter = counters.get(candidate) as Counter;
        const label = CANDIDATE_LABELS[candidate];
        for (const [corpus, text] of Object.entries(corpora)) {
          const ms = median(samples.get(`${candidate} ${corpus}`) as number[]);
          const mbPerSecond = Buffer.byteLength(text, "utf8") / 1e6 / (ms / 1000);
          const count = counts.get(`${candidate} ${corpus}`) as number;
          throughput.push(`| ${label} | ${encoding} | ${corpus} | ${rate(mbPerSecond)} | ${exactCell(count, references[corpus])} |`);
        }
        const probe = probes.get(`${candidate} ${encoding}`) as ProbeResult;
        const hostile = probe.hostile.get(longest);
        const hostileMBs = hostile?.status === "done" ? rate(longest / 1e6 / (hostile.ms / 1000)) : `< ${rate(longest / 1e6 / (capMs / 1000))}`;
        const hostileVerdict = hostileExact(probe, probes.get(`tiktoken ${encoding}`) as ProbeResult, hostileLengths);
        throughput.push(`| ${label} | ${encoding} | hostile (${number(longest)} letters) | ${hostileMBs} | ${hostileVerdict} |`);
        const misses = testTexts.filter(([, text], i) => counter.count(text) !== testReferences[i]).map(([name]) => name);
        throughput.push(
          `| ${label} | ${encoding} | test/gateway/tokenizer.test.ts texts (${testTexts.length}) | — | ` +
            `${misses.length === 0 ? "yes" : `**no** (${misses.join(", ")})`} |`,
        );

        worstCase.push(`| ${label} | ${encoding} | ${hostileLengths.map((n) => hostileCell(probe.hostile.get(n), capMs)).join(" | ")} |`);
        const promptUs = median(samples.get(`${candidate} ${PROMPT}`) as number[]) * 1000;
        const load = probe.load;
        costs.push(
          `| ${label} | ${encoding} | ${load ? number(load.ms) : "?"} | ${load ? number(load.rssMB, 1) : "?"} | ` +
            `${load ? number(load.heapMB, 1) : "?"} | ${number(promptUs, 1)} |`,
        );
      }
    } finally {
      for (const counter of counters.values()) counter.free();
    }
  }

  return [
    "Ours vs tiktoken vs gpt-tokenizer's public API (bench/lib/tokenizer-comparison.ts; MB = 10^6 UTF-8 bytes)",
    "",
    "| library | encoding | corpus | MB/s | exact vs tiktoken |",
    "|:---|:---|:---|---:|:---|",
    ...throughput,
    "",
    `Hostile worst case: time per count of one run of random lowercase letters (no space), each library in its own process; cap ${seconds(capMs)} per count (BENCH_TOKENIZER_CAP_S)`,
    "",
    `| library | encoding | ${hostileLengths.map((n) => `${number(n)} chars`).join(" | ")} |`,
    `|:---|:---|${hostileLengths.map(() => "---:").join("|")}|`,
    ...worstCase,
    "",
    "Cost: load + first count in a fresh process (vocabulary, WASM), the memory it adds (RSS, JS heap after GC), and one ~1 KB text counted (steady state)",
    "",
    "| library | encoding | load + init ms | RSS MB | JS heap MB | ~1 KB text µs |",
    "|:---|:---|---:|---:|---:|---:|",
    ...costs,
  ];
}
