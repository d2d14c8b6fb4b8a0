/**
 * Every failure the gateway returns, in OpenAI's error JSON, so OpenAI clients raise their typed
 * errors: `{ "error": { "message", "type", "param", "code" } }`. One class, one express error handler
 * that also turns body-parser failures into the same shape. Nothing else ever reaches the client: no
 * HTML page, no stack trace.
 */
import type { ServerResponse } from "node:http";
import type { ErrorRequestHandler, RequestHandler } from "express";
import { TokenizerBusy, TokenizerInputTooLarge } from "./metering/tokenizer";

export type OpenAIErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "insufficient_funds"
  | "not_found_error"
  | "rate_limit_error"
  | "upstream_error"
  | "server_error";

export class GatewayError extends Error {
  override name = "GatewayError";
  constructor(
    readonly status: number,
    readonly type: OpenAIErrorType,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new GatewayError(400, "invalid_request_error", message, code, param);

/** The same answer whether the key is malformed, unknown, revoked or expired: nothing to probe. */
export const invalidApiKey = () =>
  new GatewayError(
    401,
    "authentication_error",
    "Incorrect API key provided. Create a key with your wallet (POST /v1/keys) and send it as `Authorization: Bearer <key>`.",
    "invalid_api_key",
  );

export const modelNotFound = (model: string) =>
  new GatewayError(404, "not_found_error", `The model \`${model}\` does not exist or is not on sale here. GET /v1/models lists the models on sale.`, "model_not_found", "model");

/**
 * Writes an error answer with one `writeHead` + `end`, on any `ServerResponse` (express's or the data plane's).
 * `headers` (name, value, …) are the call's headers decided before the failure, e.g. its routing headers; headers
 * an express middleware set with `setHeader` (`x-request-id`) stay first, as `writeHead` merges them. The header
 * names and their order are what express's `res.json` wrote, so an error reads the same on either path.
 */
export function sendGatewayError(res: ServerResponse, error: GatewayError, headers: readonly string[] = []): void {
  if (res.headersSent) return;
  const out = headers.slice();
  for (const name in error.headers) out.push(name, error.headers[name]);
  // Billing refusals and bad requests will fail the same way again: tell OpenAI clients not to retry.
  if (!("x-should-retry" in error.headers) && error.status >= 400 && error.status < 500 && error.status !== 429 && error.status !== 409) {
    out.push("x-should-retry", "false");
  }
  const body = JSON.stringify(error.toJSON());
  out.push("Content-Type", "application/json; charset=utf-8", "Content-Length", String(Buffer.byteLength(body)));
  res.writeHead(error.status, out);
  res.end(body);
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/**
 * What a thrown value answers as: a `GatewayError` as it is, tokenizer and body-parser failures mapped to theirs,
 * anything else a 500 (after `onUnexpected`); undefined when there is nobody to answer (the client left).
 */
export function gatewayErrorOf(error: unknown, onUnexpected: (error: unknown) => void): GatewayError | undefined {
  if (error instanceof GatewayError) return error;
  if (error instanceof TokenizerInputTooLarge) {
    return new GatewayError(413, "invalid_request_error", `The prompt is too large to meter: ${error.message}`, "prompt_too_large", "messages");
  }
  if (error instanceof TokenizerBusy) {
    return new GatewayError(503, "server_error", "The gateway is busy counting tokens for other calls. Retry shortly.", "tokenizer_busy", null, { "retry-after": "1" });
  }
  const parserError = error as BodyParserError;
  switch (parserError?.type) {
    case "entity.parse.failed":
      return invalidJson(parserError.message);
    case "entity.too.large":
      return requestTooLarge(parserError.limit ?? 0);
    case "encoding.unsupported":
    case "charset.unsupported":
      return new GatewayError(415, "invalid_request_error", "The request body must be UTF-8 JSON.", "unsupported_encoding");
    case "request.aborted":
      return undefined; // the client left; nothing to answer
    default: {
      // Other client errors raised while reading the request (a body that does not decompress, a
      // path with broken percent-encoding): the request's fault, so a 4xx, not "unexpected".
      const status = (error as { status?: unknown } | null)?.status;
      if (typeof status === "number" && status >= 400 && status < 500) {
        const detail = error instanceof Error ? `: ${error.message}` : ".";
        return new GatewayError(status === 415 ? 415 : 400, "invalid_request_error", `The request could not be read${detail}`, "invalid_request");
      }
      onUnexpected(error);
      return new GatewayError(500, "server_error", "The gateway hit an unexpected error. Nothing was charged; retry the request.", "internal_error");
    }
  }
}

export const invalidJson = (detail: string) => invalidRequest(`We could not parse the JSON body of your request: ${detail}`, null, "invalid_json");

export const requestTooLarge = (limit: number) =>
  new GatewayError(413, "invalid_request_error", `The request body is larger than the gateway's limit of ${limit} bytes.`, "request_too_large");

export const unsupportedMediaType = () =>
  new GatewayError(415, "invalid_request_error", "Send the request body as JSON with `Content-Type: application/json`.", "unsupported_media_type");

export const shuttingDown = () => new GatewayError(503, "server_error", "The gateway is shutting down. Retry shortly.", "shutting_down", null, { "retry-after": "1" });

/** Maps body-parser errors and anything unexpected to OpenAI error JSON. */
export function errorHandler(onUnexpected: (error: unknown, req: Parameters<RequestHandler>[0]) => void): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const answer = gatewayErrorOf(error, (unexpected) => onUnexpected(unexpected, req));
    if (answer) sendGatewayError(res, answer);
  };
}
