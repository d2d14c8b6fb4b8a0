/**
 * What a JSON-RPC provider's error means for a log scan: the range asked was too large (ask for less), the
 * provider is briefly unable (wait and ask again), or the request itself is wrong (stop). Providers word the
 * first two differently; these are the wordings of the common ones (Alchemy, Infura, QuickNode, Ankr,
 * Chainstack, BlastAPI, public geth/erigon/reth nodes), matched on the whole cause chain of viem's error.
 */

export type RpcErrorKind = "range" | "transient" | "fatal";

export interface ClassifiedRpcError {
  kind: RpcErrorKind;
  /** A block range the provider said would work (Alchemy quotes one: "this block range should work: [0x…, 0x…]"). */
  suggestedRange?: { fromBlock: bigint; toBlock: bigint };
}

/** "Too many requests" in every wording seen: these are waits, never range problems, even under code -32005. */
const RATE_LIMITED = /rate limit|rate-limit|too many requests|request rate|exceeded .{0,30}rate|throttl|compute units|capacity exceeded|daily request count/;

/** Too wide a range or too many results in one answer. */
const RANGE_TOO_LARGE = new RegExp(
  [
    "block range",
    "range (is )?too (large|wide|big)",
    "range (limit|exceeded|exceeds)",
    "exceed(s|ed)? (the )?(max(imum)?|allowed) (block )?range",
    "more than [0-9][0-9,]* (results|logs|blocks)",
    "returned more than",
    "too many (results|logs|blocks)",
    "limit exceeded",
    "response size",
    "response is too (big|large)",
    "is limited to",
    "max(imum)? (results|logs)",
    "query timeout exceeded",
    "payload too large",
    "request entity too large",
  ].join("|"),
);

/** A provider or the network failing for a moment: the same request may succeed later. */
const TRANSIENT =
  /timeout|timed out|econnreset|econnrefused|econnaborted|epipe|socket hang up|fetch failed|network error|connection (reset|closed|refused)|other side closed|header not found|temporar|try again|unavailable|bad gateway|gateway time|internal server error|upstream/;

interface ErrorFacts {
  codes: number[];
  statuses: number[];
  names: string[];
  text: string;
}

function factsOf(error: unknown): ErrorFacts {
  const facts: ErrorFacts = { codes: [], statuses: [], names: [], text: "" };
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 10; depth++) {
    const e = current as { code?: unknown; status?: unknown; name?: unknown; message?: unknown; details?: unknown; shortMessage?: unknown; cause?: unknown };
    if (typeof e.code === "number") facts.codes.push(e.code);
    if (typeof e.status === "number") facts.statuses.push(e.status);
    if (typeof e.name === "string") facts.names.push(e.name);
    for (const text of [e.message, e.details, e.shortMessage]) if (typeof text === "string") texts.push(text);
    if (typeof current === "string") texts.push(current);
    current = e.cause;
  }
  facts.text = texts.join(" | ").toLowerCase();
  return facts;
}

function suggestedRangeOf(text: string): ClassifiedRpcError["suggestedRange"] {
  const match = /\[\s*(0x[0-9a-f]+)\s*,\s*(0x[0-9a-f]+)\s*\]/.exec(text);
  if (!match) return undefined;
  const [fromBlock, toBlock] = [BigInt(match[1]), BigInt(match[2])];
  return fromBlock <= toBlock ? { fromBlock, toBlock } : undefined;
}

export function classifyRpcError(error: unknown): ClassifiedRpcError {
  if ((error as { name?: unknown })?.name === "RangeTimeoutError") return { kind: "range" };
  const { codes, statuses, names, text } = factsOf(error);
  if (statuses.includes(429) || codes.includes(429) || RATE_LIMITED.test(text)) return { kind: "transient" };
  if (statuses.includes(413) || RANGE_TOO_LARGE.test(text)) return { kind: "range", suggestedRange: suggestedRangeOf(text) };
  // Infura answers a too-large getLogs with -32005 "query returned more than 10000 results"; bare -32005 is its limit code.
  if (codes.includes(-32005)) return { kind: "range", suggestedRange: suggestedRangeOf(text) };
  // -32602 (invalid params) is how Alchemy and others refuse a range; with no range wording it is a real mistake.
  if (codes.includes(-32602) && /range|result|size|limit|logs/.test(text)) return { kind: "range", suggestedRange: suggestedRangeOf(text) };
  if (statuses.some((status) => status === 408 || status >= 500)) return { kind: "transient" };
  if (names.some((name) => name === "TimeoutError" || name === "AbortError") || TRANSIENT.test(text)) return { kind: "transient" };
  // -32603 internal error and -32000 server error are what overloaded nodes answer with, among other things.
  if (codes.includes(-32603)) return { kind: "transient" };
  return { kind: "fatal" };
}
