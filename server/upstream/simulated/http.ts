/** Plain `node:http` plumbing of the simulated upstream: one request's state, waiting, reading and answering. */
import type http from "node:http";
import { type ErrorBody, invalid } from "./request-error";

export interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The response is over (finished, or the client went away). */
  closed: boolean;
  /** We destroyed the socket on purpose (reset, midstream): not a client abort. */
  killed: boolean;
  onClose: (() => void) | null;
  headers: Record<string, string>;
}

export function wait(ctx: Ctx, ms: number): Promise<boolean> {
  if (ctx.closed) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ctx.onClose = null;
      resolve(!ctx.closed);
    }, ms);
    ctx.onClose = () => {
      clearTimeout(timer);
      resolve(false);
    };
  });
}

export function sendJson(ctx: Ctx, status: number, value: unknown, extraHeaders?: Record<string, string>): void {
  const payload = JSON.stringify(value);
  ctx.res.writeHead(status, {
    ...ctx.headers,
    ...extraHeaders,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
  });
  ctx.res.end(payload);
}

export function sendError(ctx: Ctx, e: ErrorBody): void {
  if (ctx.res.headersSent || ctx.closed) return;
  sendJson(
    ctx,
    e.status,
    { error: { message: e.message, type: e.type, param: e.param ?? null, code: e.code ?? null } },
    e.headers,
  );
}

export type BodyResult = { kind: "ok"; body: Buffer } | { kind: "too_large" } | { kind: "closed" };

export function readBody(ctx: Ctx, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const req = ctx.req;
    req.on("data", (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(tooLarge ? { kind: "too_large" } : { kind: "ok", body: Buffer.concat(chunks, size) }));
    req.on("close", () => resolve({ kind: "closed" }));
  });
}

export function extraParams(body: Record<string, unknown>, known: Set<string>): Record<string, string> | undefined {
  let names: string[] | undefined;
  for (const key of Object.keys(body)) {
    if (!known.has(key)) (names ??= []).push(encodeURIComponent(key));
  }
  return names ? { "x-sim-extra-params": names.join(",") } : undefined;
}

/** The request body as a JSON object, or the 400 OpenAI answers. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    throw invalid(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP " +
        "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    );
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw invalid("The request body must be a JSON object.");
  }
  return body as Record<string, unknown>;
}
