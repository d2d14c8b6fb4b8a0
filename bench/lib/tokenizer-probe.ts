/**
 * One tokenizer candidate in a process of its own (bench/tokenizer-throughput.ts starts one per candidate
 * and encoding): what loading it costs, then the hostile worst case at growing lengths.
 *
 *   node --expose-gc -r ts-node/register/transpile-only bench/lib/tokenizer-probe.ts \
 *     <candidate> <encoding> <capMs> <length>...
 *
 * A process of its own because load time and memory are only meaningful in a fresh process, and because
 * a quadratic merge cannot be interrupted from inside: the parent kills this process when one count runs
 * past the cap. A length whose time, extrapolated as n² from the previous length, would pass the cap is
 * not run (reported with the estimate), so the bench stays short when the cap is.
 *
 * Output: one JSON line per event on stdout (ProbeEvent).
 */
import type { EncodingName } from "../../server/gateway/metering/tokenizer";
import { isEncodingName } from "../../server/gateway/metering/tokenizer";
import { isCandidateName, openCounter } from "./tokenizer-candidates";

export type ProbeEvent =
  | { kind: "load"; ms: number; rssMB: number; heapMB: number }
  | { kind: "start"; length: number }
  | { kind: "done"; length: number; ms: number; tokens: number }
  | { kind: "skipped"; length: number; estimateMs: number };

/** `chars` pseudo-random lowercase letters without a space: one BPE piece, a JS BPE's worst case. */
export function hostileText(chars: number, seed = 12345): string {
  const out: string[] = [];
  for (let i = 0; i < chars; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out.push(String.fromCharCode(97 + ((seed >>> 16) % 26)));
  }
  return out.join("");
}

/**
 * Short counts are repeated for this long (the median is reported), so a 2 ms count is not one noisy
 * sample; each repetition counts a different run (another seed), as an attacker would send, so no
 * merge cache helps.
 */
const REPEAT_MS = 300;
const MAX_REPEATS = 64;
/**
 * Before timing, each candidate counts runs of its own for this long: our merge needs ~20 counts of
 * 4,096 letters before V8 has optimised it (~70 ms, then ~5 ms), as it has in a gateway under attack.
 */
const WARM_UP_CHARS = 4_096;
const WARM_UP_MS = 500;

function emit(event: ProbeEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function settledMemory(): NodeJS.MemoryUsage {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
}

function probe(candidate: string, encoding: string, capMs: number, lengths: number[]): void {
  if (!isCandidateName(candidate)) throw new Error(`unknown candidate ${candidate}`);
  if (!isEncodingName(encoding)) throw new Error(`unknown encoding ${encoding}`);
  const before = settledMemory();
  const loadStart = process.hrtime.bigint();
  const counter = openCounter(candidate, encoding as EncodingName);
  counter.count("Hello, world!"); // ours and gpt-tokenizer load the vocabulary on first use
  const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;
  const after = settledMemory();
  emit({ kind: "load", ms: loadMs, rssMB: (after.rss - before.rss) / 2 ** 20, heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20 });

  const warmUpStart = Date.now();
  for (let seed = 1; seed <= 3 || Date.now() - warmUpStart < WARM_UP_MS; seed++) counter.count(hostileText(WARM_UP_CHARS, seed));
  let previous: { length: number; ms: number } | undefined;
  for (const length of lengths) {
    const estimateMs = previous ? previous.ms * (length / previous.length) ** 2 : 0;
    if (estimateMs > capMs) {
      emit({ kind: "skipped", length, estimateMs });
      previous = { length, ms: estimateMs };
      continue;
    }
    const texts = [hostileText(length)]; // the first is the same text for every candidate: its count is compared
    emit({ kind: "start", length });
    let tokens = 0;
    let elapsedMs = 0;
    const times: number[] = [];
    while (times.length === 0 || (elapsedMs < REPEAT_MS && times.length < MAX_REPEATS)) {
      const text = (texts[times.length] ??= hostileText(length, 12345 + times.length)); // made outside the timed span
      const start = process.hrtime.bigint();
      const count = counter.count(text);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (times.length === 0) tokens = count;
      times.push(ms);
      elapsedMs += ms;
    }
    const ms = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]; // the median: a neighbour's spike is not ours
    emit({ kind: "done", length, ms, tokens });
    previous = { length, ms };
  }
  counter.free();
}

if (require.main === module) {
  const [candidate, encoding, cap, ...lengths] = process.argv.slice(2);
  probe(candidate, encoding, Number(cap), lengths.map(Number));
}
