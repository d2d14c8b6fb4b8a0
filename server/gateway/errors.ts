/**
 * Every failure the gateway returns, in OpenAI's error JSON, so OpenAI clients raise their typed
 * errors: `{ "error": { "message", "type", "param", "code" } }`. One class, one express error handler
 * that also turns body-parser failures into the same shape. Nothing else ever reaches the client: no
 * HTML page, no stack trace.
 */
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

export function sendGatewayError(res: Parameters<RequestHandler>[1], error: GatewayError): void {
  if (res.headersSent) return;
  res.status(error.status);
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  // Billing refusals and bad requests will fail the same way again: tell OpenAI clients not to retry.
  if (!("x-should-retry" in error.headers) && error.status >= 400 && error.status < 500 && error.status !== 429 && error.status !== 409) {
    res.setHeader("x-should-retry", "false");
  }
  res.json(error.toJSON());
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/** Maps body-parser errors and anything unexpected to OpenAI error JSON. */
export function errorHandler(onUnexpected: (error: unknown, req: Parameters<RequestHandler>[0]) => void): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (error instanceof GatewayError) return sendGatewayError(res, error);
    if (error instanceof TokenizerInputTooLarge) {
      return sendGatewayError(res, new GatewayError(413, "invalid_request_error", `The prompt is too large to meter: ${error.message}`, "prompt_too_large", "messages"));
    }
    if (error instanceof TokenizerBusy) {
      return sendGatewayError(res, new GatewayError(503, "server_error", "The gateway is busy counting tokens for other calls. Retry shortly.", "tokenizer_busy", null, { "retry-after": "1" }));
    }
    const parserError = error as BodyParserError;
    switch (parserError?.type) {
      case "entity.parse.failed":
        return sendGatewayError(res, invalidRequest(`We could not parse the JSON body of your request: ${parserError.message}`, null, "invalid_json"));
      case "entity.too.large":
        return sendGatewayError(
          res,
          new GatewayError(413, "invalid_request_error", `The request body is larger than the gateway's limit of ${parserError.limit} bytes.`, "request_too_large"),
        );
      case "encoding.unsupported":
      case "charset.unsupported":
        return sendGatewayError(res, new GatewayError(415, "invalid_request_error", "The request body must be UTF-8 JSON.", "unsupported_encoding"));
      case "request.aborted":
        return; // the client left; nothing to answer
      default: {
        // Other client errors raised while reading the request (a body that does not decompress, a
        // path with broken percent-encoding): the request's fault, so a 4xx, not "unexpected".
        const status = (error as { status?: unknown } | null)?.status;
        if (typeof status === "number" && status >= 400 && status < 500) {
          const detail = error instanceof Error ? `: ${error.message}` : ".";
          return sendGatewayError(res, new GatewayError(status === 415 ? 415 : 400, "invalid_request_error", `The request could not be read${detail}`, "invalid_request"));
        }
        onUnexpected(error, req);
        return sendGatewayError(res, new GatewayError(500, "server_error", "The gateway hit an unexpected error. Nothing was charged; retry the request.", "internal_error"));
      }
    }
  };
}
