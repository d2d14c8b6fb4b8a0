/**
 * Gives every request an id (the client's `x-request-id` if it is sane and unused, else a new one: request-ids.ts), echoes it in
 * the response, and records one metric sample and one log line when the response ends.
 */
import type { Request, RequestHandler } from "express";
import type { Logger } from "pino";
import type { RequestIds } from "../http/request-ids";
import type { GatewayMetrics } from "../metrics";


declare module "express-serve-static-core" {
  interface Request {
    id: string;
    /** The raw body bytes, kept for the request hash in the receipt. */
    rawBody?: Buffer;
    /** Route label for metrics and logs (the matched pattern, never the raw path). */
    routeLabel?: string;
  }
}

/** One metric sample and one log line for a finished (or abandoned) request; shared with the data plane. */
export type RequestObserver = (id: string, method: string | undefined, route: string, status: number, started: bigint, aborted: boolean) => void;

export function requestObserver(logger: Logger, metrics: GatewayMetrics): RequestObserver {
  return (id, method, route, status, started, aborted) => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.requests.inc({ route, status: String(status) });
    metrics.duration.observe({ route }, seconds);
    if (logger.isLevelEnabled("info")) {
      logger.info({ requestId: id, method, route, status, ms: Math.round(seconds * 1e4) / 10, aborted }, "request");
    }
  };
}

export function requestContext(logger: Logger, metrics: GatewayMetrics, ids: RequestIds): RequestHandler {
  const observe = requestObserver(logger, metrics);
  return (req, res, next) => {
    req.id = ids.take(req.headers["x-request-id"]);
    res.setHeader("x-request-id", req.id);
    const started = process.hrtime.bigint();
    res.on("finish", () => done(req, res.statusCode, started, false));
    res.on("close", () => {
      if (!res.writableFinished) done(req, res.statusCode, started, true);
    });
    next();
  };

  function done(req: Request, status: number, started: bigint, aborted: boolean): void {
    ids.release(req.id);
    observe(req.id, req.method, req.routeLabel ?? "unmatched", status, started, aborted);
  }
}

/** Labels a route for metrics; put it first in each route's handler chain. */
export const routeLabel = (label: string): RequestHandler => (req, _res, next) => {
  req.routeLabel = label;
  next();
};
