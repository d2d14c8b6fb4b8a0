/**
 * What the gateway needs from an upstream model server, whatever it is (OpenAI, vLLM, llama.cpp
 * server, Ollama, OpenRouter, or the built-in simulated upstream). Everything speaks the OpenAI
 * HTTP protocol; the adapter only hides transport, auth and model-name mapping.
 */

/** The OpenAI endpoints the gateway forwards. */
export type UpstreamEndpoint = "/chat/completions" | "/embeddings";

export interface UpstreamRequest {
  endpoint: UpstreamEndpoint;
  /** The body to send, already rewritten by the gateway (model name mapped, stream options set). */
  body: Record<string, unknown>;
  /** Aborted when the client goes away or the gateway shuts down: the adapter must cancel the upstream call. */
  signal: AbortSignal;
  /** Forwarded as `x-request-id` so logs on both sides can be joined. */
  requestId: string;
}

/** A non-streaming answer: the parsed JSON body as the upstream sent it. */
export interface UpstreamJsonResponse {
  kind: "json";
  status: number;
  body: Record<string, unknown>;
}

/**
 * A streaming answer: the `data:` payloads of the server-sent events, in order, as raw strings
 * (JSON chunks, then the literal `[DONE]`). Iteration ends when the upstream closes the stream.
 * Throws `UpstreamError` if the connection breaks mid-stream.
 */
export interface UpstreamStreamResponse {
  kind: "stream";
  status: number;
  events: AsyncIterable<string>;
}

export type UpstreamResponse = UpstreamJsonResponse | UpstreamStreamResponse;

export interface UpstreamAdapter {
  /** A short name for logs and metrics, e.g. "simulated" or "openai". */
  readonly name: string;
  /**
   * Sends one request. Resolves once the upstream answered 2xx (for a stream: once headers arrived).
   * Rejects with `UpstreamError` on connection failure, timeout, or a non-2xx answer.
   */
  send(request: UpstreamRequest): Promise<UpstreamResponse>;
  /** Closes pooled connections. */
  close(): Promise<void>;
}

/** Why an upstream call failed, in terms the gateway can map to an HTTP status (always 502 or 504 to the buyer). */
export class UpstreamError extends Error {
  override name = "UpstreamError";
  constructor(
    message: string,
    /** The upstream's HTTP status, or undefined when no answer came (refused, reset, timed out). */
    readonly status: number | undefined,
    /** "unreachable" | "timeout" | "bad_status" | "bad_response" | "aborted" */
    readonly reason: "unreachable" | "timeout" | "bad_status" | "bad_response" | "aborted",
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
