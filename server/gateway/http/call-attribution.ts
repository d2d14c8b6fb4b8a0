/**
 * What a call says about who spent it, beyond its API key: the workflow run it belongs to
 * (`x-tollgate-trace-id`), the step of that run (`x-tollgate-step`), the OpenAI `user` and `metadata`
 * fields, and an `Idempotency-Key`. Stored beside the usage record (never the content, never on-chain) so
 * reports can group spend by run, spot retries and price outcomes.
 *
 * Limits follow OpenAI's where it has them (metadata: 16 pairs, keys of 64 and values of 512 characters), so a
 * body the upstream would accept is never refused here; a value past them gets a 400 naming the field, and the
 * call is neither reserved nor charged.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { CallAttribution } from "../../store/call-attribution";
import { invalidRequest } from "../errors";

export type { CallAttribution };

export const TRACE_HEADER = "x-tollgate-trace-id";
export const STEP_HEADER = "x-tollgate-step";
export const IDEMPOTENCY_HEADER = "idempotency-key";

export const TRACE_ID = /^[\w.:-]{1,128}$/;
const STEP = /^[\w.:/ -]{1,128}$/;
/** Visible ASCII, as an HTTP header value carries it. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const MAX_USER_CHARS = 256;
const MAX_METADATA_PAIRS = 16;
const MAX_METADATA_KEY_CHARS = 64;
const MAX_METADATA_VALUE_CHARS = 512;

function header(headers: IncomingHttpHeaders, name: string, pattern: RegExp, what: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !pattern.test(value)) {
    throw invalidRequest(`The ${name} header must be ${what}.`, name, "invalid_attribution");
  }
  return value;
}

function metadataOf(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  const problem = (why: string) => invalidRequest(`metadata ${why}.`, "metadata", "invalid_attribution");
  if (typeof value !== "object" || Array.isArray(value)) throw problem("must be an object of string keys and string values");
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_METADATA_PAIRS) throw problem(`may hold at most ${MAX_METADATA_PAIRS} pairs, got ${entries.length}`);
  const metadata: Record<string, string> = {};
  for (const [key, pairValue] of entries) {
    if (key.length === 0 || key.length > MAX_METADATA_KEY_CHARS) throw problem(`keys must be 1 to ${MAX_METADATA_KEY_CHARS} characters, got "${key.slice(0, 80)}"`);
    if (typeof pairValue !== "string") throw problem(`values must be strings; "${key}" is not`);
    if (pairValue.length > MAX_METADATA_VALUE_CHARS) throw problem(`values may be at most ${MAX_METADATA_VALUE_CHARS} characters; "${key}" has ${pairValue.length}`);
    metadata[key] = pairValue;
  }
  return entries.length === 0 ? undefined : metadata;
}

/** The call's attribution from its headers and parsed body; undefined when it carries none. Throws a 400. */
export function callAttribution(headers: IncomingHttpHeaders, body: Record<string, unknown>): CallAttribution | undefined {
  const traceId = header(headers, TRACE_HEADER, TRACE_ID, "1 to 128 letters, digits or . _ : -");
  const step = header(headers, STEP_HEADER, STEP, "1 to 128 letters, digits, spaces or . _ : / -");
  const idempotencyKey = header(headers, IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY, "1 to 255 visible ASCII characters");
  if (step !== undefined && traceId === undefined) {
    throw invalidRequest(`The ${STEP_HEADER} header names a step of a run: send ${TRACE_HEADER} with it.`, STEP_HEADER, "invalid_attribution");
  }
  let user: string | undefined;
  if (body.user !== undefined && body.user !== null) {
    if (typeof body.user !== "string" || body.user.length > MAX_USER_CHARS) {
      throw invalidRequest(`user must be a string of at most ${MAX_USER_CHARS} characters.`, "user", "invalid_attribution");
    }
    user = body.user.length > 0 ? body.user : undefined;
  }
  const metadata = metadataOf(body.metadata);
  if (traceId === undefined && step === undefined && idempotencyKey === undefined && user === undefined && metadata === undefined) return undefined;
  const attribution: CallAttribution = {};
  if (traceId !== undefined) attribution.traceId = traceId;
  if (step !== undefined) attribution.step = step;
  if (user !== undefined) attribution.user = user;
  if (metadata !== undefined) attribution.metadata = metadata;
  if (idempotencyKey !== undefined) attribution.idempotencyKey = idempotencyKey;
  return attribution;
}
