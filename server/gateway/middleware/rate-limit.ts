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

/** The buckets, shared by the express middleware and the data plane so a key has one budget of calls whichever path serves it. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly requestsPerMinute: number,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.perMs = requestsPerMinute / 60_000;
  }

  get enabled(): boolean {
    return this.requestsPerMinute !== 0;
  }

  /** Takes one call from the key's bucket; the 429 to answer with when it is empty (nothing taken then). */
  take(keyId: string): GatewayError | undefined {
    const { requestsPerMinute, perMs } = this;
    if (requestsPerMinute === 0) return undefined;
    const now = this.nowMs();
    let bucket = this.buckets.get(keyId);
    if (!bucket) this.buckets.set(keyId, (bucket = { tokens: requestsPerMinute, updatedMs: now }));
    bucket.tokens = Math.min(requestsPerMinute, bucket.tokens + (now - bucket.updatedMs) * perMs);
    bucket.updatedMs = now;
    if (bucket.tokens < 1) {
      const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
      return new GatewayError(429, "rate_limit_error", `Rate limit reached for API key ${keyId}: ${requestsPerMinute} requests per minute. Retry in ${retryAfter}s.`, "rate_limit_exceeded", null, {
        "retry-after": String(retryAfter),
      });
    }
    bucket.tokens -= 1;
    return undefined;
  }
}

export function rateLimit(limiter: RateLimiter | number, nowMs: () => number = Date.now): RequestHandler {
  const buckets = typeof limiter === "number" ? new RateLimiter(limiter, nowMs) : limiter;
  return (req, _res, next) => {
    if (!req.apiKey) return next();
    next(buckets.take(req.apiKey.id));
  };
}
