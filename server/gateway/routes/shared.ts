/** Small pieces the metered routes share. */
import type { Response } from "express";
import { UpstreamError } from "../../upstream/types";
import { GatewayError } from "../errors";
import type { ReceiptEnvelope } from "../metering/meter";
import type { GatewayContext } from "./context";

/** The receipt as one ASCII header value: base64url of its JSON. */
export function receiptHeaderValue(envelope: ReceiptEnvelope): string {
  return Buffer.from(JSON.stringify(envelope)).toString("base64url");
}

/** Sends a metered non-streaming answer: the exact bytes the receipt's response hash covers, and the receipt. */
export function sendMeteredJson(res: Response, envelope: ReceiptEnvelope, responseBytes: Buffer): void {
  res.status(200).setHeader("content-type", "application/json; charset=utf-8");
  res.setHeader("x-tollgate-receipt", receiptHeaderValue(envelope));
  res.end(responseBytes);
}

/** Reads the `x-tollgate-receipt` header back into the envelope. */
export function parseReceiptHeader(value: string): ReceiptEnvelope {
  return JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as ReceiptEnvelope;
}

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
