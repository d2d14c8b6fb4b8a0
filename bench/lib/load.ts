/**
 * Load generation for the benches, on a worker thread, so neither the chain (the bench's Hardhat network)
 * nor the servers share the generator's event loop. Two generators:
 *   - autocannon (optionally `overallRate`), a fixed `amount` of requests;
 *   - paced open loop: one request every 1/rate s on a keep-alive undici pool, whatever the answers do.
 * Every request is answered (or fails) before the run ends, so no call is cut off.
 * The paced generator can also read streamed (SSE) answers chunk by chunk, timing the first token and the end.
 *
 * The worker is plain JavaScript (it is eval'd); latencies are in ms from `performance.now()`.
 */
import { Worker } from "node:worker_threads";

export interface LoadJob {
  kind: "autocannon" | "paced";
  origin: string;
  requests: Array<{ method: "POST"; path: string; headers: Record<string, string>; body: string }>;
  /** Total requests: every one is answered before the run ends. */
  amount: number;
  connections: number;
  /** autocannon: overallRate; paced: requests per second. Omit for as fast as possible. */
  rate?: number;
  /**
   * Paced only: requests sent first at the same rate and on the same pool, answered but not timed, so the
   * timed `amount` starts in steady state (connections open, the servers' caches warm) rather than measuring
   * a cold start of each target in turn. Their 2xx count is `leadInOk`, their slowest answer `leadInMaxMs`.
   * The timed requests start only once every lead-in request is answered (and `runLoad`'s `betweenPhases` has
   * run): a cold start's backlog would otherwise spill into the timed window and be measured as its tail.
   */
  leadIn?: number;
  /**
   * Paced only: read each 2xx answer's `x-tollgate-receipt` header and return its sequence number and the
   * wall-clock time (epoch ms) the answer arrived.
   */
  receipts?: boolean;
  /**
   * Paced only: the answers are server-sent event streams (`stream: true` requests). The body is read chunk by
   * chunk as it arrives; `latencies` is then the time to the last token (the `[DONE]` line) and `firstToken` the
   * time to the first event whose `choices[0].delta.content` is a non-empty string. A 2xx stream with no token or
   * no `[DONE]` (an error event mid-stream) is counted in `badStreams` and `errors`, not in `ok`.
   */
  stream?: boolean;
  modules: { autocannon: string; undici: string };
}

export interface LoadResult {
  latencies: Float64Array;
  ok: number;
  non2xx: number;
  errors: number;
  elapsedS: number;
  /** Paced with `leadIn`: 2xx answers to the lead-in requests (not in `ok`), and the slowest of them. */
  leadInOk?: number;
  leadInMaxMs?: number;
  /** Paced only: connections the generator opened (one more each time every open one was busy). */
  connects?: number;
  /** When the first request was sent (epoch ms): after the worker thread has started and loaded its modules. */
  startedAtMs: number;
  /** With `receipts`: the receipt sequence of each 2xx answer, in the order the answers arrived. */
  sequences?: Float64Array;
  /** With `receipts`: when each of those answers arrived (epoch ms), index for index with `sequences`. */
  answeredAtMs?: Float64Array;
  /** With `receipts`: 2xx answers without a readable receipt header. */
  missingReceipts?: number;
  /** With `stream`: time to the first token (ms) of each 2xx answer, index for index with `latencies`. */
  firstToken?: Float64Array;
  /** With `stream`: 2xx answers whose stream had no token or did not end with `[DONE]`. */
  badStreams?: number;
}

/** The modules the worker loads, resolved from the bench's own `node_modules`. */
export function loadModules(): LoadJob["modules"] {
  return { autocannon: require.resolve("autocannon"), undici: require.resolve("undici") };
}

const WORKER_SOURCE = `
const { parentPort, workerData: job } = require("node:worker_threads");
const { performance } = require("node:perf_hooks");
const latencies = new Float64Array(job.amount);
const sequences = job.receipts ? new Float64Array(job.amount) : undefined;
const answeredAtMs = job.receipts ? new Float64Array(job.amount) : undefined;
const firstToken = job.stream ? new Float64Array(job.amount) : undefined;
let recorded = 0, ok = 0, non2xx = 0, errors = 0, started = 0, lastAt = 0, withReceipt = 0, missingReceipts = 0, badStreams = 0, connects = 0;
let leadInOk = 0, leadInMaxMs = 0;
const leadIn = job.kind === "paced" ? job.leadIn ?? 0 : 0;
const finish = () => {
  const result = { latencies: latencies.slice(0, recorded), ok, non2xx, errors, elapsedS: (lastAt - started) / 1000, startedAtMs: performance.timeOrigin + started, connects, leadInOk, leadInMaxMs };
  if (job.receipts) Object.assign(result, { sequences: sequences.slice(0, withReceipt), answeredAtMs: answeredAtMs.slice(0, withReceipt), missingReceipts });
  if (job.stream) Object.assign(result, { firstToken: firstToken.slice(0, recorded), badStreams });
  parentPort.postMessage(result);
};
const onAnswer = (status, ms, receiptHeader, firstTokenMs, isLeadIn) => {
  if (isLeadIn) {
    if (status >= 200 && status < 300) leadInOk++;
    else non2xx++;
    leadInMaxMs = Math.max(leadInMaxMs, ms);
    return;
  }
  lastAt = performance.now();
  if (status >= 200 && status < 300) {
    ok++;
    if (job.stream) firstToken[recorded] = firstTokenMs;
    latencies[recorded++] = ms;
    if (job.receipts) {
      try {
        const envelope = JSON.parse(Buffer.from(String(receiptHeader), "base64url").toString("utf8"));
        sequences[withReceipt] = Number(envelope.receipt.sequence);
        answeredAtMs[withReceipt++] = performance.timeOrigin + lastAt;
      } catch {
        missingReceipts++;
      }
    }
  } else non2xx++;
};

if (job.kind === "autocannon") {
  const autocannon = require(job.modules.autocannon);
  const options = { url: job.origin, connections: job.connections, amount: job.amount, requests: job.requests, timeout: 30 };
  if (job.rate) options.overallRate = job.rate;
  const tracker = autocannon(options, (error, result) => {
    if (error) throw error;
    errors = result.errors + result.timeouts;
    finish();
  });
  started = performance.now();
  tracker.on("response", (_client, status, _bytes, ms) => onAnswer(status, ms));
} else {
  const { Pool } = require(job.modules.undici);
  const pool = new Pool(job.origin, { connections: job.connections, pipelining: 1 });
  pool.on("connect", () => connects++);
  let sent = 0, done = 0;
  // Reads an SSE body as it arrives. The JSON of an event is parsed only until the first token is seen;
  // after that only the [DONE] line is looked for, so the generator's own cost stays small.
  const readStream = async (answer, t0) => {
    const decoder = new TextDecoder();
    let pending = "", firstMs = NaN, doneMs = NaN;
    for await (const chunk of answer.body) {
      const now = performance.now();
      if (!Number.isNaN(doneMs)) continue; // [DONE] seen: drain the rest
      pending += decoder.decode(chunk, { stream: true });
      if (pending.includes("\\r")) pending = pending.replace(/\\r\\n?/g, "\\n");
      let end;
      while (Number.isNaN(doneMs) && (end = pending.indexOf("\\n\\n")) !== -1) {
        const event = pending.slice(0, end);
        pending = pending.slice(end + 2);
        for (const line of event.split("\\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(line[5] === " " ? 6 : 5);
          if (data === "[DONE]") { doneMs = now - t0; break; }
          if (!Number.isNaN(firstMs)) continue;
          try {
            const content = JSON.parse(data).choices?.[0]?.delta?.content;
            if (typeof content === "string" && content.length > 0) firstMs = now - t0;
          } catch {}
        }
      }
    }
    return { firstMs, doneMs };
  };
  let leadInDone = 0;
  const fire = (i) => {
    const r = job.requests[i % job.requests.length];
    const isLeadIn = i < leadIn;
    const t0 = performance.now();
    pool
      .request({ method: r.method, path: r.path, headers: r.headers, body: r.body })
      .then(async (answer) => {
        if (!job.stream || answer.statusCode < 200 || answer.statusCode >= 300) {
          await answer.body.text();
          return onAnswer(answer.statusCode, performance.now() - t0, answer.headers["x-tollgate-receipt"], undefined, isLeadIn);
        }
        const { firstMs, doneMs } = await readStream(answer, t0);
        if (!Number.isNaN(firstMs) && !Number.isNaN(doneMs)) return onAnswer(answer.statusCode, doneMs, undefined, firstMs, isLeadIn);
        badStreams++; errors++; lastAt = performance.now();
      })
      // A refused connection, or a body that broke while being read.
      .catch(() => { errors++; lastAt = performance.now(); })
      .finally(() => {
        if (isLeadIn && ++leadInDone === leadIn) parentPort.postMessage({ leadInDone: true });
        if (++done === total) pool.close().then(finish);
      });
  };
  const total = leadIn + job.amount;
  // Sends requests [from, to) at the job's rate, counting from when the phase starts.
  const phase = (from, to) => {
    const phaseStart = performance.now();
    const tick = () => {
      const due = Math.min(to, from + Math.floor(((performance.now() - phaseStart) * job.rate) / 1000) + 1);
      while (sent < due) fire(sent++);
      if (sent < to) setTimeout(tick, 1);
    };
    tick();
  };
  const timed = () => {
    started = performance.now();
    phase(leadIn, total);
  };
  if (leadIn > 0) {
    // The parent answers "go" once the lead-in is all answered and it has read the servers' counters.
    parentPort.on("message", (message) => { if (message === "go") timed(); });
    started = performance.now();
    phase(0, leadIn);
  } else timed();
}
`;

/**
 * Runs one load job on a fresh worker thread; resolves once every request has been answered. With a paced
 * `leadIn`, `betweenPhases` runs after the last lead-in answer and before the first timed request (the gateway
 * bench reads the gateway's counters there, so they cover the timed window only).
 */
export function runLoad(job: LoadJob, betweenPhases?: () => Promise<void>): Promise<LoadResult> {
  if (job.receipts && job.kind !== "paced") return Promise.reject(new Error("receipts are read by the paced generator only"));
  if (job.stream && job.kind !== "paced") return Promise.reject(new Error("streams are read by the paced generator only"));
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: job });
    worker.on("message", (message: LoadResult | { leadInDone: true }) => {
      if ("leadInDone" in message) {
        (betweenPhases ?? (async () => undefined))().then(
          () => worker.postMessage("go"),
          (error: unknown) => {
            reject(error as Error);
            void worker.terminate();
          },
        );
        return;
      }
      resolve(message);
      void worker.terminate();
    });
    worker.once("error", reject);
    worker.once("exit", (code) => code !== 0 && reject(new Error(`load worker exited with ${code}`)));
  });
}
