/** What the buyer sees when the model server fails; shared by every route that forwards a call upstream. */
import { UpstreamError } from "../../upstream/types";
import type { GatewayContext } from "../context";
import { GatewayError } from "../errors";

/**
 * Maps an upstream failure to what the buyer sees. A 4xx from the upstream is about the request
 * (e.g. context too long) and passes through with its status; anything else is 502, or 504 on timeout.
 */
export function upstreamFailure(ctx: GatewayContext, upstream: string, error: unknown, count = true): GatewayError {
  const reason = error instanceof UpstreamError ? error.reason : "unknown";
  if (count) ctx.metrics.upstreamErrors.inc({ upstream, reason });
  if (error instanceof UpstreamError && error.reason === "bad_status" && error.status !== undefined && error.status >= 400 && error.status < 500 && error.status !== 429) {
    return new GatewayError(error.status, "invalid_request_error", `The model server rejected the request: ${error.message}`, "upstream_rejected");
  }
  if (error instanceof UpstreamError && error.reason === "timeout") {
    return new GatewayError(504, "upstream_error", "The model server did not answer in time. Nothing was charged; retry later.", "upstream_timeout", null, { "retry-after": "5" });
  }
  if (!(error instanceof UpstreamError)) ctx.logger.error({ err: error }, "unexpected failure calling the upstream");
  return new GatewayError(502, "upstream_error", "The model server failed to answer. Nothing was charged; retry later.", "upstream_unavailable", null, { "retry-after": "2" });
}
