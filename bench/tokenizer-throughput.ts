/**
 * Tokenizer throughput: `npm run bench:tokenizer` (~60 s; ~2-4 min with BENCH_TOKENIZER_CAP_S=60).
 *
 * Part 1, our counter: for each corpus and encoding, counts the whole corpus inline (on this thread,
 * steady state after one warm-up pass, so gpt-tokenizer's merge cache is warm as in a running gateway)
 * and on a worker thread (one job per pass; includes copying the text to the worker and back).
 * MB/s are UTF-8 megabytes (10^6 bytes) per second. Corpora:
 *   - english: the repository's Markdown (README, design notes), ~prose;
 *   - code: the repository's TypeScript sources;
 *   - korean: a Korean paragraph with varied numbers, repeated (cache-friendly);
 *   - hostile: 200,000 random lowercase letters without a space (one BPE piece: the case a
 *     plain JS BPE takes minutes on; here the O(n log n) merge, no merge cache).
 * Also prints the inline latency of a typical ~1 KB chat prompt, and the worker pool's own cost:
 * small jobs one at a time and in a burst (within the default queue bound).
 *
 * Part 2 (issue 12), ours vs tiktoken (WASM) vs gpt-tokenizer's public countTokens, side by side:
 * MB/s and exactness against tiktoken on the same corpora and on the tokenizer tests' texts, the
 * hostile worst case at 4,096 / 10,000 / 50,000 / 200,000 characters, load time and memory, ~1 KB
 * latency (bench/lib/tokenizer-comparison.ts). The quadratic libraries take ~20 s per 200,000-letter
 * count, so a count is capped: BENCH_TOKENIZER_CAP_S (default 10) seconds, stopped beyond it, and not
 * started when its n² extrapolation from the previous length passes the cap. BENCH_TOKENIZER_COMPARE=0
 * skips part 2. Progress goes to stderr, the tables to stdout.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  ENCODING_NAMES,
  Tokenizer,
  countTextTokens,
  DEFAULT_MAX_PIECE_CHARS,
  type EncodingName,
} from "../server/gateway/metering/tokenizer";
import { machineTicks } from "./lib/machine";
import { compareTokenizers } from "./lib/tokenizer-comparison";
import { hostileText } from "./lib/tokenizer-probe";

const ROOT = path.join(__dirname, "..");
const TARGET_CHARS = 400_000;
const SMALL_JOB_CHARS = 5_000;
const BURST_JOBS = 256;
const HOSTILE_CHARS = 200_000;
const HOSTILE_LENGTHS = [4_096, 10_000, 50_000, HOSTILE_CHARS];
const CAP_S = Number(process.env.BENCH_TOKENIZER_CAP_S ?? 10);

const progress = (line: string): void => void process.stderr.write(`[tokenizer bench] ${line}\n`);

function readAll(dir: string, ext: string, limit: number): string {
  const out: string[] = [];
  let size = 0;
  const walk = (current: string): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      if (size >= limit) return;
      if (["node_modules", "artifacts", "cache", "coverage", "typechain-types", ".git", "dist"].includes(entry.name)) continue;
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(ext)) {
        const text = fs.readFileSync(full, "utf8");
        out.push(text);
        size += text.length;
      }
    }
  };
  walk(dir);
  return out.join("\n\n");
}

function fill(text: string, chars: number): string {
  if (text.length === 0) throw new Error("empty corpus");
  let out = text;
  while (out.length < chars) out += "\n\n" + text;
  return out.slice(0, chars);
}

function korean(chars: number): string {
  const sentences = [
    "게이트웨이는 하나 이상의 업스트림 모델 서버 앞에 있습니다.",
    "구매자를 인증하고, 지불 능력을 확인하고, 호출을 전달합니다.",
    "토큰을 세고, 사용 기록을 남긴 뒤 서명된 영수증을 돌려줍니다.",
    "정산은 블록체인에서 이루어지며, 누구나 청구서를 검증할 수 있습니다.",
    "오늘 서울의 기온은 섭씨 21도이고, 내일은 비가 올 예정입니다.",
    "이 문서는 한국어 토큰화 성능을 측정하기 위한 예시 문장들로 이루어져 있습니다.",
  ];
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < chars; i++) {
    const sentence = `${sentences[i % sentences.length]} (${i * 7919}번째 문장) `;
    parts.push(sentence);
    size += sentence.length;
  }
  return parts.join("").slice(0, chars);
}

interface Row {
  corpus: string;
  encoding: EncodingName;
  mode: "inline" | "worker";
  tokens: number;
  mb: number;
  tokensPerSecond: number;
  mbPerSecond: number;
}

/** Runs `fn` at least `minPasses` times and until `minMs` elapsed; returns ms per pass. */
async function timePasses(fn: () => unknown | Promise<unknown>, minMs: number, minPasses: number): Promise<number> {
  let passes = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (passes < minPasses || elapsedMs < minMs) {
    await fn();
    passes++;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return elapsedMs / passes;
}

async function main(): Promise<void> {
  if (!(CAP_S > 0)) throw new Error(`BENCH_TOKENIZER_CAP_S must be a positive number of seconds, got ${process.env.BENCH_TOKENIZER_CAP_S}`);
  const startedAt = Date.now();
  const ticksAtStart = machineTicks();
  progress("part 1: our counter, inline and on a worker…");
  const corpora: Record<string, string> = {
    english: fill(readAll(ROOT, ".md", TARGET_CHARS), TARGET_CHARS),
    code: fill(readAll(path.join(ROOT, "server"), ".ts", TARGET_CHARS) + readAll(path.join(ROOT, "test"), ".ts", TARGET_CHARS), TARGET_CHARS),
    korean: korean(TARGET_CHARS / 2),
    hostile: hostileText(HOSTILE_CHARS),
  };
  const inlineTokenizer = new Tokenizer({ inlineLimitChars: TARGET_CHARS });
  const workerTokenizer = new Tokenizer({ inlineLimitChars: 0, workers: 1, maxChars: TARGET_CHARS });
  const rows: Row[] = [];
  for (const encoding of ENCODING_NAMES) {
    for (const [corpus, text] of Object.entries(corpora)) {
      const bytes = Buffer.byteLength(text, "utf8");
      const tokens = inlineTokenizer.countSync(encoding, text); // warm-up pass (loads the vocabulary, fills the cache)
      const workerTokens = await workerTokenizer.count(encoding, text); // warm-up: worker start, vocabulary load
      if (workerTokens !== tokens) throw new Error(`inline ${tokens} != worker ${workerTokens} for ${corpus}`);
      const inlineMs = await timePasses(() => inlineTokenizer.countSync(encoding, text), 700, 2);
      const workerMs = await timePasses(() => workerTokenizer.count(encoding, text), 700, 2);
      for (const [mode, ms] of [["inline", inlineMs], ["worker", workerMs]] as const) {
        rows.push({
          corpus,
          encoding,
          mode,
          tokens,
          mb: bytes / 1e6,
          tokensPerSecond: tokens / (ms / 1000),
          mbPerSecond: bytes / 1e6 / (ms / 1000),
        });
      }
    }
  }

  const promptParts = [
    "You are a concise assistant for a metered AI gateway. Answer in English.",
    fs.readFileSync(path.join(ROOT, "README.md"), "utf8").slice(0, 1000),
  ];
  const prompt = JSON.parse(
    JSON.stringify([
      { role: "system", content: promptParts[0] },
      { role: "user", content: promptParts[1] },
    ]),
  ) as unknown[];
  const promptLatency: Record<string, number> = {};
  for (const encoding of ENCODING_NAMES) {
    inlineTokenizer.countChatPromptSync(encoding, prompt);
    const calls = 20_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) inlineTokenizer.countChatPromptSync(encoding, prompt);
    promptLatency[encoding] = Number(process.hrtime.bigint() - start) / 1e3 / calls;
  }
  const hostileSmall = hostileText(4096);
  const hostileInlineMs: Record<string, number> = {};
  for (const encoding of ENCODING_NAMES) {
    hostileInlineMs[encoding] = await timePasses(() => countTextTokens(encoding, hostileSmall, DEFAULT_MAX_PIECE_CHARS), 300, 3);
  }
  // Pool overhead: small jobs, where hand-off and wake-up dominate the counting itself.
  const smallJob = corpora.english.slice(0, SMALL_JOB_CHARS);
  const roundTripUs = (await timePasses(() => workerTokenizer.count("o200k_base", smallJob), 500, 50)) * 1000;
  const burstMs = await timePasses(
    () => Promise.all(Array.from({ length: BURST_JOBS }, () => workerTokenizer.count("o200k_base", smallJob))),
    500,
    3,
  );
  await Promise.all([inlineTokenizer.close(), workerTokenizer.close()]);

  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  console.log(`Machine: ${os.cpus().length} × ${cpu}, Node ${process.version}, ${new Date().toISOString().slice(0, 16)}Z\n`);
  console.log(`Tokenizer throughput (Node ${process.version}, ${path.basename(__filename)}; MB = 10^6 UTF-8 bytes)\n`);
  console.log("| corpus | encoding | size MB | tokens | inline tokens/s | inline MB/s | worker tokens/s | worker MB/s |");
  console.log("|:---|:---|---:|---:|---:|---:|---:|---:|");
  for (let i = 0; i < rows.length; i += 2) {
    const inline = rows[i];
    const worker = rows[i + 1];
    console.log(
      `| ${inline.corpus} | ${inline.encoding} | ${inline.mb.toFixed(2)} | ${inline.tokens} | ` +
        `${Math.round(inline.tokensPerSecond).toLocaleString("en-US")} | ${inline.mbPerSecond.toFixed(2)} | ` +
        `${Math.round(worker.tokensPerSecond).toLocaleString("en-US")} | ${worker.mbPerSecond.toFixed(2)} |`,
    );
  }
  console.log("");
  for (const encoding of ENCODING_NAMES) {
    console.log(
      `${encoding}: ~1 KB two-message chat prompt, inline: ${promptLatency[encoding].toFixed(1)} µs per countChatPromptSync; ` +
        `worst-case inline text at the default 4096-char limit (one hostile piece): ${hostileInlineMs[encoding].toFixed(1)} ms`,
    );
  }
  console.log(
    `worker pool, ${SMALL_JOB_CHARS}-char jobs on 1 worker: ${roundTripUs.toFixed(0)} µs per job one at a time; ` +
      `${Math.round((BURST_JOBS / burstMs) * 1000).toLocaleString("en-US")} jobs/s for a burst of ${BURST_JOBS}`,
  );

  if (process.env.BENCH_TOKENIZER_COMPARE !== "0") {
    progress("part 2: ours vs tiktoken vs gpt-tokenizer's public API…");
    const lines = await compareTokenizers({
      corpora: { english: corpora.english, code: corpora.code, korean: corpora.korean },
      hostileLengths: HOSTILE_LENGTHS,
      capMs: CAP_S * 1000,
      promptText: promptParts.join("\n"),
      progress,
    });
    console.log(`\n${lines.join("\n")}`);
  }
  const ticksAtEnd = machineTicks();
  const steal =
    ticksAtStart && ticksAtEnd && ticksAtEnd.total > ticksAtStart.total
      ? `, hypervisor steal ${(((ticksAtEnd.steal - ticksAtStart.steal) / (ticksAtEnd.total - ticksAtStart.total)) * 100).toFixed(1)} % of the machine's CPU time`
      : "";
  console.log(`\nfinished in ${((Date.now() - startedAt) / 1000).toFixed(1)} s${steal}, load average ${os.loadavg()[0].toFixed(2)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
