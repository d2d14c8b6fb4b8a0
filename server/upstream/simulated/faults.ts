/**
 * Failure injection: the header `x-simulate-failure` (500 | 503 | 429 | reset | midstream | stall),
 * `x-simulate-latency-ms`, and the seeded `failureRate` draws, so the gateway's error paths can be
 * exercised deterministically.
 */
import type http from "node:http";
import type { Ctx } from "./http";
import type { ErrorBody } from "./request-error";

/** The most latency one request may ask for, in ms. */
const MAX_REQUESTED_LATENCY_MS = 600_000;

export const SIMULATED_FAILURES: Record<string, ErrorBody> = {
  "500": {
    status: 500,
    message: "The server had an error while processing your request. Sorry about that! (simulated)",
    type: "server_error",
  },
  "503": {
    status: 503,
    message: "The engine is currently overloaded, please try again later. (simulated)",
    type: "server_error",
    headers: { "retry-after": "1" },
  },
  "429": {
    status: 429,
    message: "Rate limit reached for requests. (simulated)",
    type: "requests",
    code: "rate_limit_exceeded",
    headers: { "retry-after": "1" },
  },
};
export const FAILURE_MODES = new Set(["500", "503", "429", "reset", "midstream", "stall"]);

/** The failure mode a request asks for, lower-cased, or undefined. */
export function requestedFailure(req: http.IncomingMessage): string | undefined {
  const header = req.headers["x-simulate-failure"];
  return typeof header === "string" ? header.trim().toLowerCase() : undefined;
}

export function unknownFailure(failure: string): ErrorBody {
  return {
    status: 400,
    message: `Unknown x-simulate-failure '${failure}'; use one of ${[...FAILURE_MODES].join(", ")}.`,
    type: "invalid_request_error",
  };
}

/** The configured latency plus what the request asks for (capped), in ms. */
export function requestLatencyMs(req: http.IncomingMessage, baseLatencyMs: number): number {
  const asked = Number(req.headers["x-simulate-latency-ms"] ?? 0);
  return baseLatencyMs + (Number.isFinite(asked) ? Math.min(Math.max(asked, 0), MAX_REQUESTED_LATENCY_MS) : 0);
}

/** Drops the connection on purpose (counted as a fault, not as a client abort). */
export function resetConnection(ctx: Ctx): void {
  ctx.killed = true;
  ctx.req.socket.destroy();
}

/** Writes `part` of an answer, then drops the connection: a `midstream` failure. */
export function writeThenReset(ctx: Ctx, part: string | Buffer): void {
  ctx.res.write(part, () => resetConnection(ctx));
}
