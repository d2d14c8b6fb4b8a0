/**
 * The data plane: `POST /v1/chat/completions` and `POST /v1/embeddings`, by their exact paths, served from the
 * plain `node:http` listener before express sees them (issue 12). These two routes carry nearly all the traffic,
 * and on them express's per-request work (its request/response prototypes, the router, body-parser's stream
 * plumbing and media-type checks, a closure per middleware) cost more CPU than the proxying itself.
 *
 * It does, in the same order and with the same answers, what the express chain of those routes does (app.ts):
 * the drain check (503), the media type (415), the body read into one Buffer under the size limit (413, after
 * reading off the rest, as body-parser does) and parsed as JSON (400), the API key (401), the rate limit (429),
 * then the route's handler; errors are OpenAI's error JSON through the same `sendGatewayError`. It takes only the
 * common shape of request: `Content-Type: application/json` (optionally `; charset=utf-8`), no
 * `Content-Encoding`, a body. Anything else (another spelling of the media type, a compressed body, no body) is
 * left to express, whose answer (a 415, or the call served) stays what it was.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { GatewayError, gatewayErrorOf, invalidJson, requestTooLarge, sendGatewayError, shuttingDown } from "../errors";
import { apiKeyOf, type ApiKeyCache } from "../middleware/authenticate";
import type { ApiKeyRecord } from "../../store/usage-store";
import type { RateLimiter } from "../middleware/rate-limit";
import type { RequestObserver } from "../middleware/request-context";
import type { RequestIds } from "./request-ids";
import type { MeteredHandler, MeteredRequest } from "./metered-request";

export interface MeteredRoute {
  /** The metrics and log label (`tollgate_http_request_duration_seconds{route=…}`), as express's routes name it. */
  label: string;
  handler: MeteredHandler;
}

export interface DataPlaneOptions {
  maxBodyBytes: number;
  isDraining?: () => boolean;
  keys: ApiKeyCache;
  /** The same buckets the express routes use. */
  limiter: RateLimiter;
  observe: RequestObserver;
  /** A failure that is no client's fault (a 500 follows). */
  onUnexpected: (error: unknown, requestId: string) => void;
  /** By exact path: `/v1/chat/completions`, `/v1/embeddings`. */
  routes: Readonly<Record<string, MeteredRoute>>;
  /** Shared with express's routes: an offered `x-request-id` is used only once (request-ids.ts). */
  ids: RequestIds;
}

/** Takes a request (true) or leaves it to express (false), before reading any of it. */
export type DataPlane = (req: IncomingMessage, res: ServerResponse) => boolean;

const UTF8_BOM_0 = 0xef;

/** The plain JSON requests the plane reads itself; body-parser would accept them and read them the same. */
function plainJsonRequest(headers: IncomingHttpHeaders): boolean {
  const type = headers["content-type"];
  if (type !== "application/json" && type !== "application/json; charset=utf-8") return false;
  if (headers["content-encoding"] !== undefined) return false;
  return headers["transfer-encoding"] !== undefined || headers["content-length"] !== undefined;
}

export function createDataPlane(options: DataPlaneOptions): DataPlane {
  const { maxBodyBytes, isDraining, keys, limiter, observe, onUnexpected, routes, ids } = options;

  return (req, res) => {
    if (req.method !== "POST") return false;
    const route = routes[req.url as string];
    if (route === undefined) return false;
    const headers = req.headers;
    const draining = isDraining?.() === true;
    // express answers a draining gateway first, whatever the request; otherwise the uncommon shapes are its.
    if (!draining && !plainJsonRequest(headers)) return false;

    const started = process.hrtime.bigint();
    const id = ids.take(headers["x-request-id"]);
    // An offered id stays taken until the connection is done with this answer, whatever ends it.
    if (id === headers["x-request-id"]) res.once("close", () => ids.release(id));
    const responseHeaders = ["x-request-id", id];
    const label = route.label;

    const fail = (error: unknown): void => {
      const answer = gatewayErrorOf(error, (unexpected) => onUnexpected(unexpected, id));
      if (answer) sendGatewayError(res, answer, responseHeaders);
      finished();
    };
    let observed = false;
    const finished = (): void => {
      if (observed) return;
      observed = true;
      ids.release(id);
      observe(id, "POST", label, res.statusCode, started, !res.writableEnded);
    };

    if (draining) {
      fail(shuttingDown());
      return true;
    }

    // The body, into one Buffer: preallocated from Content-Length, or the one chunk it usually arrives in.
    const declared = headers["transfer-encoding"] === undefined ? Number(headers["content-length"]) : NaN;
    let tooLarge = declared > maxBodyBytes;
    let body: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let received = 0;
    let ended = false;
    req.on("data", (chunk: Buffer) => {
      if (tooLarge) return; // read off and dropped, so the 413 goes out on a connection that stays usable
      received += chunk.length;
      if (received > maxBodyBytes) {
        tooLarge = true;
        body = chunks = undefined;
        return;
      }
      if (body === undefined && chunks === undefined) body = chunk;
      else {
        chunks ??= [body!];
        body = undefined;
        chunks.push(chunk);
      }
    });
    req.on("error", () => {
      // The client left while sending: nothing to answer, nothing was reserved.
      if (!ended) finished();
    });
    req.on("end", () => {
      ended = true;
      if (tooLarge) return fail(requestTooLarge(maxBodyBytes));
      const raw = chunks ? Buffer.concat(chunks, received) : (body ?? Buffer.alloc(0));
      // body-parser decodes UTF-8 without its byte-order mark; the receipt still hashes the bytes as sent.
      const text = raw.length >= 3 && raw[0] === UTF8_BOM_0 && raw[1] === 0xbb && raw[2] === 0xbf ? raw.toString("utf8", 3) : raw.toString("utf8");
      let parsed: unknown;
      if (text.length === 0) parsed = {};
      else {
        try {
          parsed = JSON.parse(text);
        } catch (error) {
          return fail(invalidJson((error as Error).message));
        }
      }
      const serve = (apiKey: ApiKeyRecord | GatewayError) => {
        if (apiKey instanceof GatewayError) return fail(apiKey);
        const limited = limiter.take(apiKey.id);
        if (limited) return fail(limited);
        const call: MeteredRequest = { id, headers, body: parsed, rawBody: raw, apiKey, responseHeaders };
        route.handler(call, res).then(finished, fail);
      };
      // A promise only in fleet mode, for a key this instance has not seen yet (looked up in the fleet's store).
      const apiKey = apiKeyOf(keys, headers.authorization);
      if (apiKey instanceof Promise) apiKey.then(serve, fail);
      else serve(apiKey);
    });
    return true;
  };
}
