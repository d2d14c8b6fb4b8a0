/**
 * A token bucket per API key: `requestsPerMinute` sustained, the same number as a burst. Over it, 429
 * with `retry-after` (seconds), which OpenAI clients honour.
 */
import type { RequestHandler } from "express";
import { GatewayError } from "../errors";

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export function rateLimit(requestsPerMinute: number, nowMs: () => number = Date.now): RequestHandler {
  const buckets = new Map<string, Bucket>();
  const perMs = requestsPerMinute / 60_000;
  return (req, _res, next) => {
    if (requestsPerMinute === 0 || !req.apiKey) return next();
    const now = nowMs();
    const id = req.apiKey.id;
    const bucket = buckets.get(id) ?? { tokens: requestsPerMinute, updatedMs: now };
    bucket.tokens = Math.min(requestsPerMinute, bucket.tokens + (now - bucket.updatedMs) * perMs);
    bucket.updatedMs = now;
    if (bucket.tokens < 1) {
      buckets.set(id, bucket);
      const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
      return next(
        new GatewayError(429, "rate_limit_error", `Rate limit reached for API key ${id}: ${requestsPerMinute} requests per minute. Retry in ${retryAfter}s.`, "rate_limit_exceeded", null, {
          "retry-after": String(retryAfter),
        }),
      );
    }
    bucket.tokens -= 1;
    buckets.set(id, bucket);
    next();
  };
}
