/**
 * Gives every request an id (the client's `x-request-id` if it is sane, else a new one), echoes it in
 * the response, and records one metric sample and one log line when the response ends.
 */
import { randomUUID } from "node:crypto";
import type { Request, RequestHandler } from "express";
import type { Logger } from "pino";
import type { GatewayMetrics } from "../metrics";

const CLIENT_ID = /^[\w.:-]{1,128}$/;

declare module "express-serve-static-core" {
  interface Request {
    id: string;
    /** The raw body bytes, kept for the request hash in the receipt. */
    rawBody?: Buffer;
    /** Route label for metrics and logs (the matched pattern, never the raw path). */
    routeLabel?: string;
  }
}

export function requestContext(logger: Logger, metrics: GatewayMetrics): RequestHandler {
  return (req, res, next) => {
    const offered = req.headers["x-request-id"];
    req.id = typeof offered === "string" && CLIENT_ID.test(offered) ? offered : randomUUID();
    res.setHeader("x-request-id", req.id);
    const started = process.hrtime.bigint();
    res.on("finish", () => done(req, res.statusCode, started, false));
    res.on("close", () => {
      if (!res.writableFinished) done(req, res.statusCode, started, true);
    });
    next();
  };

  function done(req: Request, status: number, started: bigint, aborted: boolean): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const route = req.routeLabel ?? "unmatched";
    metrics.requests.inc({ route, status: String(status) });
    metrics.duration.observe({ route }, seconds);
    if (logger.isLevelEnabled("info")) {
      logger.info({ requestId: req.id, method: req.method, route, status, ms: Math.round(seconds * 1e4) / 10, aborted }, "request");
    }
  }
}

/** Labels a route for metrics; put it first in each route's handler chain. */
export const routeLabel = (label: string): RequestHandler => (req, _res, next) => {
  req.routeLabel = label;
  next();
};
