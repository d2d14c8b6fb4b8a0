/**
 * An upstream adapter for any server that speaks the OpenAI HTTP protocol: OpenAI itself, vLLM,
 * llama.cpp server, Ollama (`/v1`), OpenRouter, and the built-in simulated upstream.
 *
 * Transport is one undici `Pool` per adapter (so per origin): keep-alive connections, no pipelining,
 * requests queue once `connections` are busy. Everything that can be computed once (paths, the
 * constant headers) is computed at construction, so a call costs one JSON.stringify, one header
 * array and undici's own work.
 */
import { Pool } from "undici";
import type { Dispatcher } from "undici";
import { SseLimitError, SseParser } from "./sse";
import {
  UpstreamError,
  type UpstreamAdapter,
  type UpstreamEndpoint,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./types";

export interface OpenAICompatibleUpstreamOptions {
  /** A short name for logs and metrics. */
  name: string;
  /** The API base, path included: `http://127.0.0.1:8080/v1`, `https://api.openai.com/v1`. A query string is kept. */
  baseUrl: string;
  /** Sent as `authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** How long to wait for the response headers, in ms (default 300 000: a long non-streamed generation). */
  timeoutMs?: number;
  /** Most concurrent connections to the upstream (default 128); more requests wait in the pool's queue. */
  connections?: number;
  /** Added to every request (e.g. OpenRouter's `HTTP-Referer`, `X-Title`); may override the defaults. */
  extraHeaders?: Record<string, string>;
}

/** The most of an error body read to find the upstream's message. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** After `[DONE]`, the most bytes read to let the connection be reused; beyond it the connection is dropped. */
const MAX_DRAIN_BYTES = 64 * 1024;
/** Parsed but unconsumed events before the upstream body is paused (backpressure). */
const EVENT_HIGH_WATER = 256;
const DEFAULT_HEADERS_TIMEOUT_MS = 300_000;
const DEFAULT_CONNECTIONS = 128;

type ResponseBody = Dispatcher.ResponseData["body"];

export function createOpenAICompatibleUpstream(options: OpenAICompatibleUpstreamOptions): UpstreamAdapter {
  const name = options.name;
  const url = new URL(options.baseUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`upstream "${name}": baseUrl must be http(s), got ${options.baseUrl}`);
  }
  const prefix = url.pathname.replace(/\/+$/, "");
  const search = url.search;
  const paths: Record<UpstreamEndpoint, string> = {
    "/chat/completions": `${prefix}/chat/completions${search}`,
    "/embeddings": `${prefix}/embeddings${search}`,
  };

  const headerMap = new Map<string, string>([
    ["content-type", "application/json"],
    // No compression: the body is relayed and counted, and undici's request() does not decompress.
    ["accept-encoding", "identity"],
    ["user-agent", "tollgate-gateway"],
  ]);
  if (options.apiKey) headerMap.set("authorization", `Bearer ${options.apiKey}`);
  for (const [k, v] of Object.entries(options.extraHeaders ?? {})) headerMap.set(k.toLowerCase(), v);
  headerMap.delete("x-request-id");
  headerMap.delete("content-length");
  const baseHeaders: string[] = [];
  for (const [k, v] of headerMap) baseHeaders.push(k, v);

  const pool = new Pool(url.origin, {
    connections: options.connections ?? DEFAULT_CONNECTIONS,
    pipelining: 1,
    headersTimeout: options.timeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
  });
  let closing: Promise<void> | null = null;

  async function send(request: UpstreamRequest): Promise<UpstreamResponse> {
    const signal = request.signal;
    if (signal?.aborted) throw aborted(name, signal.reason);
    const path = paths[request.endpoint] ?? `${prefix}${request.endpoint}${search}`;
    const headers = baseHeaders.concat("x-request-id", request.requestId);
    const payload = JSON.stringify(request.body);
    if (request.body.stream !== true) return sendForJson(pool, name, path, headers, payload, signal);

    let res: Dispatcher.ResponseData;
    try {
      res = await pool.request({ method: "POST", path, headers, body: payload, signal });
    } catch (err) {
      throw transportError(err, name, signal);
    }
    const status = res.statusCode;
    const body = res.body;

    if (status < 200 || status > 299) throw await statusError(name, status, body, signal);

    if (request.body.stream === true && !isJson(res.headers["content-type"])) {
      return { kind: "stream", status, events: new SseEventStream(body, name, signal) };
    }

    let text: string;
    try {
      text = await body.text();
    } catch (err) {
      throw transportError(err, name, signal);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new UpstreamError(`upstream "${name}" sent a body that is not JSON`, status, "bad_response", { cause: err });
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new UpstreamError(`upstream "${name}" sent JSON that is not an object`, status, "bad_response");
    }
    return { kind: "json", status, body: parsed as Record<string, unknown> };
  }

  return {
    name,
    send,
    close(): Promise<void> {
      closing ??= pool.close().catch(() => undefined);
      return closing;
    },
  };
}

function isJson(contentType: string | string[] | undefined): boolean {
  const ct = Array.isArray(contentType) ? contentType[0] : contentType;
  return ct !== undefined && ct.includes("json");
}

function aborted(name: string, cause: unknown): UpstreamError {
  return new UpstreamError(`request to upstream "${name}" was aborted`, undefined, "aborted", { cause });
}

/** Maps what undici or the socket threw to an `UpstreamError`. */
function transportError(err: unknown, name: string, signal: AbortSignal | undefined): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (signal?.aborted) return aborted(name, err);
  const code = (err as { code?: unknown } | null)?.code;
  const detail = err instanceof Error ? err.message : String(err);
  if (code === "UND_ERR_HEADERS_TIMEOUT") {
    return new UpstreamError(`upstream "${name}" sent no response headers in time`, undefined, "timeout", { cause: err });
  }
  if (code === "UND_ERR_BODY_TIMEOUT") {
    return new UpstreamError(`upstream "${name}" stopped sending the body`, undefined, "timeout", { cause: err });
  }
  if (
    typeof code === "string" &&
    (code.startsWith("HPE_") ||
      code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH" ||
      code === "UND_ERR_RES_EXCEEDED_MAX_SIZE" ||
      code === "UND_ERR_INFO")
  ) {
    return new UpstreamError(`upstream "${name}" sent a malformed HTTP response: ${detail}`, undefined, "bad_response", {
      cause: err,
    });
  }
  // Refused, reset, DNS failure, connect timeout, closed pool, anything else on the wire.
  return new UpstreamError(`upstream "${name}" unreachable: ${detail}`, undefined, "unreachable", { cause: err });
}

/** A non-streamed answer's body as one Buffer, or the error it ends with (undici's, mapped by the caller). */
interface CollectedAnswer {
  status: number;
  body: Buffer;
}

/**
 * An undici dispatch handler that collects a non-streamed answer into one Buffer: no response stream, no header
 * object, no async resource per call, as `pool.request()` + `body.text()` would make (issue 12: the upstream call
 * with as little per-call setup as undici allows). A non-2xx body is kept up to `MAX_ERROR_BODY_BYTES`, then the
 * connection is dropped, as the streamed path does. The signal aborts the call whatever stage it is at.
 */
class AnswerCollector implements Dispatcher.DispatchHandler {
  private status = 0;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private abortCall: ((reason: Error) => void) | undefined;
  /** Set when the error body reached its cap and the call was aborted on purpose. */
  private capped = false;
  private settled = false;

  constructor(
    private readonly resolve: (answer: CollectedAnswer) => void,
    private readonly reject: (error: unknown) => void,
    private readonly signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener("abort", this.onAbortSignal);
  }

  private readonly onAbortSignal = (): void => {
    this.abortCall?.(this.signal!.reason instanceof Error ? this.signal!.reason : new Error("aborted"));
  };

  onConnect(abort: (reason?: Error) => void): void {
    if (this.signal?.aborted) return abort(this.signal.reason instanceof Error ? this.signal.reason : new Error("aborted"));
    this.abortCall = abort;
  }

  onHeaders(statusCode: number): boolean {
    if (statusCode >= 200) this.status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const ok = this.status >= 200 && this.status <= 299;
    if (!ok && this.size + chunk.length >= MAX_ERROR_BODY_BYTES) {
      this.chunks.push(chunk.subarray(0, MAX_ERROR_BODY_BYTES - this.size));
      this.size = MAX_ERROR_BODY_BYTES;
      this.capped = true;
      this.abortCall?.(new Error("error body read up to its limit"));
      return false;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    return true;
  }

  onComplete(): void {
    this.finish();
  }

  onError(error: Error): void {
    if (this.capped) return this.finish();
    if (this.settled) return;
    this.settled = true;
    this.signal?.removeEventListener("abort", this.onAbortSignal);
    this.reject(error);
  }

  private finish(): void {
    if (this.settled) return;
    this.settled = true;
    this.signal?.removeEventListener("abort", this.onAbortSignal);
    this.resolve({ status: this.status, body: this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size) });
  }
}

/** A call whose answer is JSON (`stream` not asked): dispatched with `AnswerCollector`, parsed once. */
async function sendForJson(pool: Pool, name: string, path: string, headers: string[], payload: string, signal: AbortSignal | undefined): Promise<UpstreamResponse> {
  let answer: CollectedAnswer;
  try {
    answer = await new Promise<CollectedAnswer>((resolve, reject) => {
      pool.dispatch({ method: "POST", path, headers, body: payload }, new AnswerCollector(resolve, reject, signal));
    });
  } catch (err) {
    throw transportError(err, name, signal);
  }
  const { status } = answer;
  if (status < 200 || status > 299) throw statusErrorOf(name, status, answer.body.toString("utf8"));
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body.toString("utf8"));
  } catch (err) {
    throw new UpstreamError(`upstream "${name}" sent a body that is not JSON`, status, "bad_response", { cause: err });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new UpstreamError(`upstream "${name}" sent JSON that is not an object`, status, "bad_response");
  }
  return { kind: "json", status, body: parsed as Record<string, unknown> };
}

/** Reads (a bounded part of) a non-2xx body and builds the error, with the upstream's own message when it gave one. */
async function statusError(
  name: string,
  status: number,
  body: ResponseBody,
  signal: AbortSignal | undefined,
): Promise<UpstreamError> {
  let text = "";
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const room = MAX_ERROR_BODY_BYTES - size;
      if (chunk.length >= room) {
        chunks.push(chunk.subarray(0, room));
        size += room;
        break; // leaving the loop destroys the rest of the body
      }
      chunks.push(chunk);
      size += chunk.length;
    }
    text = Buffer.concat(chunks, size).toString("utf8");
  } catch (err) {
    if (signal?.aborted) return aborted(name, err);
    // The status is what matters; a body we could not read only loses the message.
  }
  return statusErrorOf(name, status, text);
}

/** The error for a non-2xx answer whose body (or its first `MAX_ERROR_BODY_BYTES`) is `text`. */
function statusErrorOf(name: string, status: number, text: string): UpstreamError {
  let errorObject: unknown;
  let message: string | undefined;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown> | null;
    if (parsed && typeof parsed === "object") {
      const e = parsed.error;
      if (e && typeof e === "object" && typeof (e as Record<string, unknown>).message === "string") {
        errorObject = e; // OpenAI: {"error": {"message", "type", "param", "code"}}
        message = (e as Record<string, unknown>).message as string;
      } else if (typeof e === "string") {
        errorObject = parsed; // Ollama, llama.cpp, some proxies: {"error": "..."}
        message = e;
      } else if (typeof parsed.message === "string") {
        errorObject = parsed; // vLLM: {"object": "error", "message": ...}
        message = parsed.message;
      } else if (typeof parsed.detail === "string") {
        errorObject = parsed; // FastAPI-based servers
        message = parsed.detail;
      }
    }
  } catch {
    // not JSON
  }
  if (message === undefined) {
    const snippet = text.trim().slice(0, 200);
    message = `upstream "${name}" answered HTTP ${status}${snippet ? `: ${snippet}` : ""}`;
  }
  return new UpstreamError(message, status, "bad_status", { cause: errorObject });
}

const DONE_RESULT: IteratorResult<string> = Object.freeze({ value: undefined, done: true });

/**
 * The `data:` payloads of an SSE body, as an async iterator. The body flows into the parser as it
 * arrives (paused when the consumer falls `EVENT_HIGH_WATER` events behind). Iteration ends after
 * `[DONE]` (the rest of the body is then drained so the connection can be reused) or when the body
 * ends; a broken body rejects `next()` with an `UpstreamError`. `return()` (a `break` out of
 * `for await`) destroys the body, which closes the connection, so the upstream stops generating.
 */
class SseEventStream implements AsyncIterableIterator<string> {
  private readonly parser = new SseParser();
  private queue: string[] = [];
  private head = 0;
  /** The body ended or failed. */
  private ended = false;
  /** The consumer saw the end: `[DONE]`, the body's end, an error, or it returned early. */
  private done = false;
  private error: UpstreamError | null = null;
  private paused = false;
  private drained = 0;
  private waiter: (() => void) | null = null;

  constructor(
    private readonly body: ResponseBody,
    private readonly name: string,
    private readonly signal: AbortSignal | undefined,
  ) {
    body.on("data", this.onData);
    body.on("end", this.onEnd);
    body.on("error", this.onError);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.done) {
      this.drained += chunk.length;
      if (this.drained > MAX_DRAIN_BYTES) this.body.destroy();
      return;
    }
    try {
      this.parser.push(chunk, this.queue);
    } catch (err) {
      this.fail(
        err instanceof SseLimitError
          ? new UpstreamError(`upstream "${this.name}": ${err.message}`, undefined, "bad_response", { cause: err })
          : transportError(err, this.name, this.signal),
      );
      this.body.destroy();
      return;
    }
    if (this.queue.length - this.head >= EVENT_HIGH_WATER && !this.paused) {
      this.paused = true;
      this.body.pause();
    }
    this.wake();
  };

  private readonly onEnd = (): void => {
    if (!this.done && !this.ended) {
      try {
        this.parser.end(this.queue);
      } catch (err) {
        this.fail(new UpstreamError(`upstream "${this.name}": ${String(err)}`, undefined, "bad_response", { cause: err }));
      }
    }
    this.ended = true;
    this.wake();
  };

  private readonly onError = (err: unknown): void => {
    if (!this.done && !this.ended) this.fail(transportError(err, this.name, this.signal));
    this.ended = true;
    this.wake();
  };

  private fail(error: UpstreamError): void {
    if (this.error === null) this.error = error;
    this.ended = true;
  }

  private wake(): void {
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w();
    }
  }

  next(): Promise<IteratorResult<string>> {
    if (this.done) return Promise.resolve(DONE_RESULT);
    if (this.head < this.queue.length) return Promise.resolve(this.take());
    if (this.error !== null) {
      this.done = true;
      return Promise.reject(this.error);
    }
    if (this.ended) {
      this.done = true;
      return Promise.resolve(DONE_RESULT);
    }
    if (this.paused) {
      this.paused = false;
      this.body.resume();
    }
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
    }).then(() => this.next());
  }

  private take(): IteratorResult<string> {
    const value = this.queue[this.head++];
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    if (value === "[DONE]") {
      this.done = true;
      this.queue.length = 0;
      this.head = 0;
      // Read what is left (normally only the end of the chunked body) so the connection stays reusable.
      if (!this.ended && this.paused) {
        this.paused = false;
        this.body.resume();
      }
    }
    return { value, done: false };
  }

  return(): Promise<IteratorResult<string>> {
    if (!this.done) {
      this.done = true;
      this.queue.length = 0;
      this.head = 0;
      if (!this.ended) this.body.destroy();
    }
    this.wake();
    return Promise.resolve(DONE_RESULT);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
