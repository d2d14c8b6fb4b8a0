/**
 * A JSON-RPC proxy that behaves like a hosted provider, for the audit loader's tests: it refuses log ranges
 * wider than N blocks in a provider's words, answers 429s and 503s, drops connections, stalls, drops chosen
 * logs, adds `blockTimestamp` to logs, and counts every request it receives.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import hre from "hardhat";
import type { Hex } from "viem";

export const STALL_MS = 800;

export type Fault = "429" | "503" | "reset" | "stall";

export interface ProxyRules {
  /** Refuse eth_getLogs over more blocks than this, as a hosted provider does. */
  maxLogRange?: bigint;
  /** How the refusal is worded. */
  refusal?: "alchemy" | "infura" | "quicknode" | "ankr" | "http413";
  /** Faults to answer the next requests with, one each, in order. */
  faults?: Fault[];
  /** Only requests of this method get the faults; default any. */
  faultsOn?: string;
  /** After this many eth_getLogs answers, answer every further one with a fatal error (a provider gone bad, a killed run). */
  failAfterLogRequests?: number;
  /** Logs removed from every eth_getLogs answer. */
  dropLog?: (log: { topics: Hex[] }) => boolean;
  /** Rewrites logs in every eth_getLogs answer (a faulty contract's logs, without deploying one). */
  editLog?: (log: { topics: Hex[]; data: Hex }) => void;
  /** Add each log's `blockTimestamp`, as newer nodes (geth 1.14+, reth) do. */
  blockTimestamps?: boolean;
}

export interface Proxy {
  url: string;
  rules: ProxyRules;
  /** Forwarded and refused requests alike, by method. */
  requests: Record<string, number>;
  /** The block spans of the eth_getLogs requests that were answered with logs. */
  servedLogRanges: [bigint, bigint][];
  reset(rules?: ProxyRules): void;
  close(): Promise<void>;
}

export const ALCHEMY_TOO_LARGE = (from: bigint, limit: bigint) =>
  `Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters, this block range should work: [0x${from.toString(16)}, 0x${(from + limit - 1n).toString(16)}]`;

/** A JSON-RPC proxy in front of `upstream` that behaves like a hosted provider, per `rules`. */
export async function startProxy(upstream: string): Promise<Proxy> {
  let logAnswers = 0;
  /** Bumped by reset(): a request still in flight from before (a stalled one) must not count after it. */
  let generation = 0;
  const state = {
    rules: {} as ProxyRules,
    requests: {} as Record<string, number>,
    servedLogRanges: [] as [bigint, bigint][],
  };

  type Call = { id: number; method: string; params: unknown[] };
  type Answer = { jsonrpc: "2.0"; id: number; result?: unknown; error?: { code: number; message: string } };
  /** What the provider does at the HTTP level: one outcome for the whole request, batch or not. */
  type HttpOutcome = { status: number; body?: string } | "reset";

  /** A call answered at the JSON-RPC level: refused, failed, or forwarded and edited per the rules. */
  async function answer(call: Call, born: number): Promise<Answer | HttpOutcome> {
    const fail = (code: number, message: string): Answer => ({ jsonrpc: "2.0", id: call.id, error: { code, message } });
    if (call.method === "eth_getLogs") {
      if (state.rules.failAfterLogRequests !== undefined && logAnswers >= state.rules.failAfterLogRequests) {
        return fail(-32000, "execution aborted (the test killed this provider)");
      }
      const filter = call.params[0] as { fromBlock: Hex; toBlock: Hex };
      const [from, to] = [BigInt(filter.fromBlock), BigInt(filter.toBlock)];
      const limit = state.rules.maxLogRange;
      if (limit !== undefined && to - from + 1n > limit) {
        switch (state.rules.refusal ?? "alchemy") {
          case "alchemy":
            return fail(-32602, ALCHEMY_TOO_LARGE(from, limit));
          case "infura":
            return fail(-32005, "query returned more than 10000 results");
          case "quicknode":
            return fail(-32614, `eth_getLogs is limited to a ${limit} range`);
          case "ankr":
            return fail(-32600, "block range is too wide");
          case "http413":
            return { status: 413, body: "Request Entity Too Large" };
        }
      }
    }
    const forwarded = await fetch(upstream, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(call) });
    const payload = (await forwarded.json()) as Answer;
    if (call.method === "eth_getLogs" && Array.isArray(payload.result) && born === generation) {
      const filter = call.params[0] as { fromBlock: Hex; toBlock: Hex };
      state.servedLogRanges.push([BigInt(filter.fromBlock), BigInt(filter.toBlock)]);
      logAnswers++;
      if (state.rules.dropLog) payload.result = (payload.result as { topics: Hex[] }[]).filter((log) => !state.rules.dropLog!(log));
      if (state.rules.editLog) for (const log of payload.result as { topics: Hex[]; data: Hex }[]) state.rules.editLog(log);
      if (state.rules.blockTimestamps) {
        for (const log of payload.result as { blockNumber: Hex; blockTimestamp?: Hex }[]) {
          const block = (await hre.network.provider.send("eth_getBlockByNumber", [log.blockNumber, false])) as { timestamp: Hex };
          log.blockTimestamp = block.timestamp;
        }
      }
    }
    return payload;
  }

  const server = http.createServer(async (req, res) => {
    const born = generation;
    let body = "";
    for await (const chunk of req) body += chunk;
    const parsed = JSON.parse(body) as Call | Call[];
    // JSON-RPC batching (viem's http transport with `batch`) sends an array: each call counts.
    const calls = Array.isArray(parsed) ? parsed : [parsed];
    for (const call of calls) state.requests[call.method] = (state.requests[call.method] ?? 0) + 1;
    const send = (outcome: HttpOutcome | Answer | Answer[]) => {
      if (outcome === "reset") return req.socket.destroy();
      if ("status" in outcome) {
        // Gateways in front of providers answer these with plain text or HTML, not JSON-RPC.
        res.writeHead(outcome.status, { "content-type": outcome.body?.startsWith("{") ? "application/json" : "text/plain" });
        return res.end(outcome.body ?? "");
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(outcome));
    };
    const faulted = !state.rules.faultsOn || calls.some((call) => call.method === state.rules.faultsOn);
    const fault = faulted ? state.rules.faults?.shift() : undefined;
    if (fault === "reset") return send("reset");
    // Answers after the client has given up: a provider choking on a query.
    if (fault === "stall") await new Promise((resolve) => setTimeout(resolve, STALL_MS));
    if (born !== generation) return send("reset");
    if (fault === "429") return send({ status: 429, body: JSON.stringify({ error: { code: 429, message: "Too Many Requests: your app has exceeded its compute units per second capacity" } }) });
    if (fault === "503") return send({ status: 503, body: "Service Unavailable" });
    const answers = await Promise.all(calls.map((call) => answer(call, born)));
    const httpLevel = answers.find((a): a is HttpOutcome => a === "reset" || "status" in a);
    if (httpLevel) return send(httpLevel);
    send(Array.isArray(parsed) ? (answers as Answer[]) : (answers[0] as Answer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get rules() {
      return state.rules;
    },
    get requests() {
      return state.requests;
    },
    get servedLogRanges() {
      return state.servedLogRanges;
    },
    reset(rules = {}) {
      state.rules = rules;
      state.requests = {};
      state.servedLogRanges = [];
      logAnswers = 0;
      generation++;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
