/** The simulated upstream's HTTP server: routes requests, applies latency and faults, answers. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { chatCompletionJson, KNOWN_CHAT_PARAMS, planChat } from "./chat";
import { chatStreamFrames, writeFramesPaced } from "./chat-stream";
import { embeddingsJson, KNOWN_EMBEDDING_PARAMS } from "./embeddings";
import {
  FAILURE_MODES,
  requestedFailure,
  requestLatencyMs,
  resetConnection,
  SIMULATED_FAILURES,
  unknownFailure,
  writeThenReset,
} from "./faults";
import { type Ctx, extraParams, parseJsonObject, readBody, sendError, sendJson, wait } from "./http";
import { modelJson, SIMULATED_MODELS } from "./models";
import { PrefixCache } from "./prefix-cache";
import { prng } from "./random";
import { invalid, RequestError } from "./request-error";

export interface SimulatedUpstreamOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Delay before the first byte of every POST answer, in ms. */
  latencyMs?: number;
  /** Pause between streamed chunks, in ms (default 0: the whole stream is written at once). */
  interTokenDelayMs?: number;
  /** Share of POST requests answered with a 500/503, drawn from a sequence seeded by `seed`. */
  failureRate?: number;
  seed?: number;
  /** Requests whose text is longer get a 400 `context_length_exceeded` before any tokenizing (default 200 000). */
  maxContextChars?: number;
}

export interface SimulatedUpstreamStats {
  /** HTTP requests received (any route). */
  requests: number;
  /** Requests whose client went away before the answer was complete. */
  aborted: number;
  /** Requests in progress (including stalled ones). */
  active: number;
}

export interface SimulatedUpstream {
  /** Base URL, ending in `/v1`. */
  url: string;
  port: number;
  close(): Promise<void>;
  stats(): SimulatedUpstreamStats;
}

export async function startSimulatedUpstream(options: SimulatedUpstreamOptions = {}): Promise<SimulatedUpstream> {
  const host = options.host ?? "127.0.0.1";
  const baseLatency = Math.max(0, options.latencyMs ?? 0);
  const interTokenDelay = Math.max(0, options.interTokenDelayMs ?? 0);
  const failureRate = Math.min(1, Math.max(0, options.failureRate ?? 0));
  const failureRng = prng(options.seed ?? 1);
  const maxContextChars = options.maxContextChars ?? 200_000;
  // JSON escaping can inflate text up to 6x; anything beyond this cannot fit the context.
  const maxBodyBytes = maxContextChars * 6 + 1024 * 1024;
  const prefixCache = new PrefixCache();
  const stats: SimulatedUpstreamStats = { requests: 0, aborted: 0, active: 0 };
  let seq = 0;

  async function handlePost(ctx: Ctx, path: string): Promise<void> {
    const read = await readBody(ctx, maxBodyBytes);
    if (read.kind === "closed" || ctx.closed) return;

    const failure = requestedFailure(ctx.req);
    // Drawn for every POST, even one refused below, so the seeded sequence depends on request order only.
    const drawn = failureRng() < failureRate;
    if (failure !== undefined && !FAILURE_MODES.has(failure)) return sendError(ctx, unknownFailure(failure));
    const latency = requestLatencyMs(ctx.req, baseLatency);
    if (latency > 0 && !(await wait(ctx, latency))) return;

    if (failure === "stall") return; // never answer; the client's timeout or abort ends it
    if (failure === "reset") return resetConnection(ctx);
    if (failure !== undefined && SIMULATED_FAILURES[failure]) return sendError(ctx, SIMULATED_FAILURES[failure]);
    if (drawn) return sendError(ctx, SIMULATED_FAILURES["500"]);

    if (read.kind === "too_large") {
      ctx.res.setHeader("connection", "close");
      throw invalid(
        `Request body larger than ${maxBodyBytes} bytes: over the simulated context of ${maxContextChars} characters.`,
        "messages",
        "context_length_exceeded",
      );
    }
    const body = parseJsonObject(read.body);
    const midstream = failure === "midstream";

    if (path === "/v1/embeddings") {
      const extra = extraParams(body, KNOWN_EMBEDDING_PARAMS);
      return sendBody(ctx, embeddingsJson(body, maxContextChars), extra, midstream);
    }

    const extra = extraParams(body, KNOWN_CHAT_PARAMS);
    const plan = planChat(body, maxContextChars, prefixCache, ++seq);
    if (body.stream !== true) return sendBody(ctx, chatCompletionJson(plan), extra, midstream);

    const streamOptions = body.stream_options as { include_usage?: unknown } | null | undefined;
    const frames = chatStreamFrames(plan, streamOptions?.include_usage === true);
    ctx.res.writeHead(200, {
      ...ctx.headers,
      ...extra,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    });
    if (midstream) return writeThenReset(ctx, frames.slice(0, Math.max(2, Math.floor(frames.length / 2))).join(""));
    if (interTokenDelay === 0) {
      ctx.res.end(frames.join(""));
      return;
    }
    await writeFramesPaced(ctx, frames, interTokenDelay);
  }

  function sendBody(ctx: Ctx, value: unknown, extra: Record<string, string> | undefined, midstream: boolean): void {
    if (!midstream) return sendJson(ctx, 200, value, extra);
    const payload = Buffer.from(JSON.stringify(value));
    ctx.res.writeHead(200, {
      ...ctx.headers,
      ...extra,
      "content-type": "application/json",
      "content-length": payload.length,
    });
    writeThenReset(ctx, payload.subarray(0, payload.length >> 1));
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    stats.requests++;
    stats.active++;
    const incomingId = req.headers["x-request-id"];
    const ctx: Ctx = {
      req,
      res,
      closed: false,
      killed: false,
      onClose: null,
      headers: { "x-request-id": typeof incomingId === "string" ? incomingId : `sim-req-${stats.requests}` },
    };
    res.on("close", () => {
      stats.active--;
      if (!res.writableFinished && !ctx.killed) stats.aborted++;
      ctx.closed = true;
      const cb = ctx.onClose;
      ctx.onClose = null;
      cb?.();
    });
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    try {
      if (req.method === "POST" && (path === "/v1/chat/completions" || path === "/v1/embeddings")) {
        await handlePost(ctx, path);
        return;
      }
      req.resume();
      if (req.method === "GET" && path === "/v1/models") {
        return sendJson(ctx, 200, { object: "list", data: SIMULATED_MODELS.map(modelJson) });
      }
      if (req.method === "GET" && path.startsWith("/v1/models/") && path.length > "/v1/models/".length) {
        return sendJson(ctx, 200, modelJson(decodeURIComponent(path.slice("/v1/models/".length))));
      }
      sendError(ctx, {
        status: 404,
        message: `Invalid URL (${req.method} ${path})`,
        type: "invalid_request_error",
      });
    } catch (err) {
      if (err instanceof RequestError) sendError(ctx, err.body);
      else if (!res.headersSent) {
        sendError(ctx, { status: 500, message: `simulated upstream bug: ${String(err)}`, type: "server_error" });
      } else res.destroy();
    }
  }

  const server = http.createServer({ noDelay: true, keepAliveTimeout: 5_000 }, (req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | null = null;

  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    stats: () => ({ ...stats }),
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
