/**
 * A fake model server that speaks the real OpenAI HTTP protocol (plain `node:http`, no framework),
 * so the gateway, the adapter and the official `openai` client can be exercised with no account and
 * no network. Answers are deterministic: the same request always yields the same text and usage.
 *
 *   POST /v1/chat/completions   JSON or SSE (`stream: true`, `stream_options.include_usage`), tool calls
 *   POST /v1/embeddings         float or base64 vectors
 *   GET  /v1/models[/{id}]      a small list; any model name is accepted in requests
 *
 * Token counts use o200k_base (gpt-tokenizer), special tokens read as plain text:
 * - completion_tokens = o200k count of the returned content (+ reasoning_tokens for a model whose name
 *   contains "reasoning"), never more than `max_completion_tokens` / `max_tokens`; when the cap cuts
 *   the answer, finish_reason is "length" and the content is a token prefix of the uncapped answer.
 * - prompt_tokens follows OpenAI's cookbook formula (`countChatPromptTokens`): 3 per message, the
 *   tokens of its role, content text, name (+1), refusal, tool_call_id and tool call names and
 *   arguments, +3 priming; plus the tokens of the `tools` JSON when given; 85 per image part. For
 *   plain text messages this is exactly the cookbook count; for tools and images it is no more than
 *   the gateway's own estimate (server/gateway/metering/chat-tokens.ts), which adds framing.
 * - cached_tokens: the tokens of the longest run of leading messages (all but the last at most) that
 *   this server has seen before at the start of a request for the same model.
 *
 * Failure injection: `failureRate` (a deterministic sequence from `seed`), and per request the header
 * `x-simulate-failure`: 500 | 503 | 429 | reset | midstream | stall, and `x-simulate-latency-ms`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { countTokens as o200kCount, decode, encode } from "gpt-tokenizer/encoding/o200k_base";

export interface SimulatedUpstreamOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Delay before the first byte of every POST answer, in ms. */
  latencyMs?: number;
  /** Pause between streamed chunks, in ms (default 0: the whole stream is written at once). */
  interTokenDelayMs?: number;
  /** Share of POST requests answered with a 500/503, drawn from a sequence seeded by `seed`. */
  failureRate?: number;
  seed?: number;
  /** Requests whose text is longer get a 400 `context_length_exceeded` before any tokenizing (default 200 000). */
  maxContextChars?: number;
}

export interface SimulatedUpstreamStats {
  /** HTTP requests received (any route). */
  requests: number;
  /** Requests whose client went away before the answer was complete. */
  aborted: number;
  /** Requests in progress (including stalled ones). */
  active: number;
}

export interface SimulatedUpstream {
  /** Base URL, ending in `/v1`. */
  url: string;
  port: number;
  close(): Promise<void>;
  stats(): SimulatedUpstreamStats;
}

/** Models listed by `GET /v1/models` (any other name is accepted too). */
export const SIMULATED_MODELS = ["sim-chat", "sim-chat-mini", "sim-reasoning", "sim-embedding"] as const;

const ENCODE_OPTIONS = { disallowedSpecial: new Set<string>() };

/** o200k_base token count, special tokens counted as text. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : o200kCount(text, ENCODE_OPTIONS);
}

const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const PRIMING_TOKENS = 3;
const IMAGE_PART_TOKENS = 85;

/** The tokens one chat message costs in the prompt (OpenAI's cookbook formula, see the file comment). */
export function countMessageTokens(message: unknown): number {
  let n = TOKENS_PER_MESSAGE;
  if (message === null || typeof message !== "object") return n;
  const m = message as Record<string, unknown>;
  if (typeof m.role === "string") n += countTokens(m.role);
  n += contentTokens(m.content);
  if (typeof m.name === "string") n += countTokens(m.name) + TOKENS_PER_NAME;
  if (typeof m.refusal === "string") n += countTokens(m.refusal);
  if (typeof m.tool_call_id === "string") n += countTokens(m.tool_call_id);
  n += toolCallTokens(m.tool_calls);
  if (m.function_call) n += toolCallTokens([{ function: m.function_call }]);
  return n;
}

/** prompt_tokens of a chat request as the simulated upstream reports it. */
export function countChatPromptTokens(messages: readonly unknown[], tools?: unknown): number {
  let n = PRIMING_TOKENS;
  for (const m of messages) n += countMessageTokens(m);
  if (Array.isArray(tools) && tools.length > 0) n += countTokens(JSON.stringify(tools));
  return n;
}

function contentTokens(content: unknown): number {
  if (typeof content === "string") return countTokens(content);
  if (!Array.isArray(content)) return 0;
  let n = 0;
  for (const part of content) {
    if (part === null || typeof part !== "object") continue;
    const p = part as Record<string, unknown>;
    if (typeof p.text === "string") n += countTokens(p.text);
    else if (p.type === "image_url") n += IMAGE_PART_TOKENS;
    else if (typeof p.refusal === "string") n += countTokens(p.refusal);
  }
  return n;
}

function toolCallTokens(calls: unknown): number {
  if (!Array.isArray(calls)) return 0;
  let n = 0;
  for (const c of calls) {
    const f = (c as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
    if (typeof f?.name === "string") n += countTokens(f.name);
    if (typeof f?.arguments === "string") n += countTokens(f.arguments);
  }
  return n;
}

/** Characters of text a chat request carries (checked against `maxContextChars` before tokenizing). */
function chatChars(messages: readonly unknown[], tools: unknown): number {
  let n = 0;
  for (const m of messages) {
    if (m === null || typeof m !== "object") continue;
    for (const [key, value] of Object.entries(m as Record<string, unknown>)) {
      if (typeof value === "string") n += value.length;
      else if (key === "content" && Array.isArray(value)) {
        for (const part of value) {
          const p = part as { text?: unknown; refusal?: unknown } | null;
          if (typeof p?.text === "string") n += p.text.length;
          if (typeof p?.refusal === "string") n += p.refusal.length;
        }
      } else if ((key === "tool_calls" || key === "function_call") && value) n += JSON.stringify(value).length;
    }
  }
  if (Array.isArray(tools)) n += JSON.stringify(tools).length;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Deterministic text

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DETERMINERS = ["the", "a", "every", "this", "that", "our", "each", "one"];
const ADJECTIVES = [
  "quiet", "bright", "small", "large", "careful", "simple", "early", "late", "green", "open", "steady", "warm",
  "cold", "clear", "old", "new", "quick", "gentle", "modern", "local", "useful", "honest", "distant", "busy",
];
const NOUNS = [
  "river", "garden", "market", "engine", "window", "teacher", "report", "village", "signal", "bridge", "harbor",
  "letter", "budget", "forest", "museum", "station", "library", "server", "contract", "planet", "kitchen",
  "ledger", "network", "painter", "farmer", "machine", "journey", "story", "question", "answer", "record", "wallet",
];
const VERBS = [
  "follows", "builds", "finds", "moves", "reads", "writes", "checks", "opens", "carries", "watches", "measures",
  "explains", "changes", "keeps", "shares", "counts", "reaches", "answers", "protects", "describes", "settles",
];
const PREPOSITIONS = ["near", "under", "beyond", "across", "behind", "inside", "around", "toward", "beside"];
const CONNECTORS = ["and", "while", "because", "so", "but"];

function pick<T>(rng: () => number, list: readonly T[]): T {
  return list[Math.floor(rng() * list.length)];
}

function nounPhrase(rng: () => number, words: string[]): void {
  words.push(pick(rng, DETERMINERS));
  if (rng() < 0.5) words.push(pick(rng, ADJECTIVES));
  words.push(pick(rng, NOUNS));
}

function clause(rng: () => number, words: string[]): void {
  nounPhrase(rng, words);
  words.push(pick(rng, VERBS));
  nounPhrase(rng, words);
  if (rng() < 0.4) {
    words.push(pick(rng, PREPOSITIONS));
    nounPhrase(rng, words);
  }
}

/** Readable sentences of roughly `targetTokens` o200k tokens (one per word and per period). */
function sentences(rng: () => number, targetTokens: number): string {
  const out: string[] = [];
  let estimate = 0;
  while (estimate < targetTokens) {
    const words: string[] = [];
    clause(rng, words);
    if (rng() < 0.35) {
      words[words.length - 1] += ",";
      words.push(pick(rng, CONNECTORS));
      clause(rng, words);
    }
    words[0] = words[0][0].toUpperCase() + words[0].slice(1);
    const s = words.join(" ") + ".";
    out.push(s);
    estimate += words.length + 1;
  }
  return out.join(" ");
}

/** The longest token prefix of `tokens` whose text re-encodes to at most `budget` tokens. */
function truncateTokens(tokens: readonly number[], budget: number): { text: string; tokens: number[]; count: number } {
  for (let n = Math.min(budget, tokens.length); n > 0; n--) {
    const slice = tokens.slice(0, n);
    const text = decode(slice);
    const count = countTokens(text);
    if (count <= budget) return { text, tokens: slice, count };
  }
  return { text: "", tokens: [], count: 0 };
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

interface ErrorBody {
  status: number;
  message: string;
  type: string;
  param?: string | null;
  code?: string | null;
  headers?: Record<string, string>;
}

class RequestError extends Error {
  constructor(readonly body: ErrorBody) {
    super(body.message);
  }
}

function invalid(message: string, param: string | null = null, code: string | null = null): RequestError {
  return new RequestError({ status: 400, message, type: "invalid_request_error", param, code });
}

interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The response is over (finished, or the client went away). */
  closed: boolean;
  /** We destroyed the socket on purpose (reset, midstream): not a client abort. */
  killed: boolean;
  onClose: (() => void) | null;
  headers: Record<string, string>;
}

function wait(ctx: Ctx, ms: number): Promise<boolean> {
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

function sendJson(ctx: Ctx, status: number, value: unknown, extraHeaders?: Record<string, string>): void {
  const payload = JSON.stringify(value);
  ctx.res.writeHead(status, {
    ...ctx.headers,
    ...extraHeaders,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
  });
  ctx.res.end(payload);
}

function sendError(ctx: Ctx, e: ErrorBody): void {
  if (ctx.res.headersSent || ctx.closed) return;
  sendJson(
    ctx,
    e.status,
    { error: { message: e.message, type: e.type, param: e.param ?? null, code: e.code ?? null } },
    e.headers,
  );
}

const SIMULATED_FAILURES: Record<string, ErrorBody> = {
  "500": {
    status: 500,
    message: "The server had an error while processing your request. Sorry about that! (simulated)",
    type: "server_error",
  },
  "503": {
    status: 503,
    message: "The engine is currently overloaded, please try again later. (simulated)",
    type: "server_error",
    headers: { "retry-after": "1" },
  },
  "429": {
    status: 429,
    message: "Rate limit reached for requests. (simulated)",
    type: "requests",
    code: "rate_limit_exceeded",
    headers: { "retry-after": "1" },
  },
};
const FAILURE_MODES = new Set(["500", "503", "429", "reset", "midstream", "stall"]);

type BodyResult = { kind: "ok"; body: Buffer } | { kind: "too_large" } | { kind: "closed" };

function readBody(ctx: Ctx, limit: number): Promise<BodyResult> {
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

// ---------------------------------------------------------------------------------------------
// Chat completions

const KNOWN_CHAT_PARAMS = new Set([
  "model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "tools", "tool_choice",
  "parallel_tool_calls", "temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty",
  "logit_bias", "logprobs", "top_logprobs", "user", "seed", "response_format", "metadata", "store",
  "reasoning_effort", "service_tier", "modalities", "audio", "prediction", "web_search_options", "functions",
  "function_call", "safety_identifier", "prompt_cache_key", "verbosity",
]);
const KNOWN_EMBEDDING_PARAMS = new Set(["model", "input", "dimensions", "encoding_format", "user"]);

function extraParams(body: Record<string, unknown>, known: Set<string>): Record<string, string> | undefined {
  let names: string[] | undefined;
  for (const key of Object.keys(body)) {
    if (!known.has(key)) (names ??= []).push(encodeURIComponent(key));
  }
  return names ? { "x-sim-extra-params": names.join(",") } : undefined;
}

function positiveInt(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw invalid(`Invalid '${key}': integer below minimum value. Expected a value >= 1.`, key, "integer_below_min_value");
  }
  return v;
}

interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

interface ChatPlan {
  id: string;
  created: number;
  model: string;
  /** Content tokens, for streaming deltas. */
  contentTokens: number[];
  content: string | null;
  toolCall: ToolCall | null;
  finishReason: "stop" | "length" | "tool_calls";
  usage: Record<string, unknown>;
  seed: number;
}

function fakeValue(schema: unknown, rng: () => number, depth: number): unknown {
  const s = (schema ?? {}) as Record<string, unknown>;
  if (Array.isArray(s.enum) && s.enum.length > 0) return pick(rng, s.enum);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "integer":
      return Math.floor(rng() * 100);
    case "number":
      return Math.round(rng() * 10000) / 100;
    case "boolean":
      return rng() < 0.5;
    case "array":
      return depth > 3 ? [] : [fakeValue(s.items, rng, depth + 1)];
    case "object": {
      const out: Record<string, unknown> = {};
      const props = (s.properties ?? {}) as Record<string, unknown>;
      if (depth <= 3) for (const [k, v] of Object.entries(props)) out[k] = fakeValue(v, rng, depth + 1);
      return out;
    }
    case "null":
      return null;
    default:
      return `${pick(rng, ADJECTIVES)} ${pick(rng, NOUNS)}`;
  }
}

function chooseTool(body: Record<string, unknown>, rng: () => number): { name: string; parameters: unknown } | null {
  const tools = body.tools;
  if (!Array.isArray(tools) || tools.length === 0) return null;
  const functions = tools
    .map((t) => (t as { function?: { name?: unknown; parameters?: unknown } } | null)?.function)
    .filter((f): f is { name: string; parameters?: unknown } => typeof f?.name === "string");
  if (functions.length === 0) return null;
  const choice = body.tool_choice;
  if (choice === "required") return pickTool(functions, rng);
  if (choice && typeof choice === "object") {
    const wanted = (choice as { function?: { name?: unknown } }).function?.name;
    if (typeof wanted !== "string") throw invalid("Invalid 'tool_choice': missing function name.", "tool_choice");
    const f = functions.find((x) => x.name === wanted);
    if (!f) throw invalid(`Invalid 'tool_choice': no function named '${wanted}' in 'tools'.`, "tool_choice");
    return { name: f.name, parameters: f.parameters };
  }
  return null;
}

function pickTool(functions: { name: string; parameters?: unknown }[], rng: () => number) {
  const f = functions[Math.floor(rng() * functions.length)];
  return { name: f.name, parameters: f.parameters };
}

function planChat(
  body: Record<string, unknown>,
  maxContextChars: number,
  prefixCache: PrefixCache,
  seq: number,
): ChatPlan {
  const model = body.model;
  if (typeof model !== "string" || model.length === 0) throw invalid("you must provide a model parameter", "model");
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalid("Invalid 'messages': expected a non-empty array.", "messages", "invalid_value");
  }
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as Record<string, unknown> | null;
    if (m === null || typeof m !== "object" || typeof m.role !== "string") {
      throw invalid(`Invalid 'messages[${i}]': expected an object with a 'role'.`, `messages.[${i}].role`);
    }
  }
  const chars = chatChars(messages, body.tools);
  if (chars > maxContextChars) {
    throw invalid(
      `This model's maximum context length is ${maxContextChars} characters in the simulated upstream; ` +
        `your messages resulted in ${chars} characters. Please reduce the length of the messages.`,
      "messages",
      "context_length_exceeded",
    );
  }
  const capA = positiveInt(body, "max_tokens");
  const capB = positiveInt(body, "max_completion_tokens");
  const cap = capA === undefined ? capB : capB === undefined ? capA : Math.min(capA, capB);

  // Prompt tokens and prefix caching.
  const perMessage = messages.map(countMessageTokens);
  let promptTokens = PRIMING_TOKENS;
  for (const t of perMessage) promptTokens += t;
  if (Array.isArray(body.tools) && body.tools.length > 0) promptTokens += countTokens(JSON.stringify(body.tools));
  const cachedTokens = prefixCache.lookupAndStore(model, messages, perMessage);

  // Deterministic answer.
  const hash = sha256(`${model}\u0000${JSON.stringify(messages)}`);
  const rng = prng(hash.readUInt32LE(0));
  const target = 20 + (hash.readUInt32LE(4) % 181);
  const reasoning = model.includes("reasoning");

  let content: string | null = null;
  let contentTokens: number[] = [];
  let toolCall: ToolCall | null = null;
  let finishReason: ChatPlan["finishReason"];
  let reasoningTokens = 0;
  let completionTokens: number;

  const tool = chooseTool(body, rng);
  if (tool) {
    const args = JSON.stringify(fakeValue(tool.parameters ?? { type: "object" }, rng, 0));
    const argTokens = encode(args, ENCODE_OPTIONS);
    const nameTokens = countTokens(tool.name);
    const natural = nameTokens + argTokens.length;
    if (reasoning) reasoningTokens = Math.max(1, Math.ceil(0.3 * natural));
    let argText = args;
    let argCount = argTokens.length;
    finishReason = "tool_calls";
    if (cap !== undefined && natural + reasoningTokens > cap) {
      if (reasoning) reasoningTokens = Math.floor(0.3 * cap);
      const cut = truncateTokens(argTokens, Math.max(0, cap - reasoningTokens - nameTokens));
      argText = cut.text;
      argCount = cut.count;
      finishReason = "length";
    }
    toolCall = { id: `call_${hash.toString("hex", 8, 20)}`, name: tool.name, arguments: argText };
    completionTokens = nameTokens + argCount + reasoningTokens;
    if (cap !== undefined && completionTokens > cap) completionTokens = cap; // a name longer than the cap
  } else {
    const text = sentences(rng, target);
    const tokens = encode(text, ENCODE_OPTIONS);
    if (reasoning) reasoningTokens = Math.max(1, Math.ceil(0.3 * tokens.length));
    if (cap === undefined || tokens.length + reasoningTokens <= cap) {
      content = text;
      contentTokens = tokens;
      finishReason = "stop";
    } else {
      if (reasoning) reasoningTokens = Math.floor(0.3 * cap);
      const cut = truncateTokens(tokens, cap - reasoningTokens);
      content = cut.text;
      contentTokens = cut.tokens;
      finishReason = "length";
    }
    completionTokens = countTokens(content) + reasoningTokens;
  }

  return {
    id: `chatcmpl-sim${seq.toString(36)}${hash.toString("hex", 0, 8)}`,
    created: Math.floor(Date.now() / 1000),
    model,
    contentTokens,
    content,
    toolCall,
    finishReason,
    seed: hash.readUInt32LE(8),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: cachedTokens, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: reasoningTokens,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
  };
}

const SYSTEM_FINGERPRINT = "fp_tollgate_sim";

function chatCompletionJson(plan: ChatPlan): Record<string, unknown> {
  const message: Record<string, unknown> = {
    role: "assistant",
    content: plan.content,
    refusal: null,
    annotations: [],
  };
  if (plan.toolCall) {
    message.tool_calls = [
      {
        id: plan.toolCall.id,
        type: "function",
        function: { name: plan.toolCall.name, arguments: plan.toolCall.arguments },
      },
    ];
  }
  return {
    id: plan.id,
    object: "chat.completion",
    created: plan.created,
    model: plan.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: plan.finishReason }],
    usage: plan.usage,
    service_tier: "default",
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

/** The SSE events of a streamed answer, each a complete `data: ...\n\n` frame, `[DONE]` last. */
function chatStreamFrames(plan: ChatPlan, includeUsage: boolean): string[] {
  const frames: string[] = [];
  const chunk = (delta: Record<string, unknown>, finish: string | null) => {
    const c: Record<string, unknown> = {
      id: plan.id,
      object: "chat.completion.chunk",
      created: plan.created,
      model: plan.model,
      service_tier: "default",
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
    if (includeUsage) c.usage = null;
    frames.push(`data: ${JSON.stringify(c)}\n\n`);
  };
  const rng = prng(plan.seed);
  if (plan.toolCall) {
    const call = plan.toolCall;
    chunk(
      {
        role: "assistant",
        content: null,
        tool_calls: [{ index: 0, id: call.id, type: "function", function: { name: call.name, arguments: "" } }],
        refusal: null,
      },
      null,
    );
    for (let i = 0; i < call.arguments.length; ) {
      const n = 4 + Math.floor(rng() * 12);
      chunk({ tool_calls: [{ index: 0, function: { arguments: call.arguments.slice(i, i + n) } }] }, null);
      i += n;
    }
  } else {
    chunk({ role: "assistant", content: "", refusal: null }, null);
    const tokens = plan.contentTokens;
    for (let i = 0; i < tokens.length; ) {
      const n = 1 + Math.floor(rng() * 4);
      chunk({ content: decode(tokens.slice(i, i + n)) }, null);
      i += n;
    }
  }
  chunk({}, plan.finishReason);
  if (includeUsage) {
    frames.push(
      `data: ${JSON.stringify({
        id: plan.id,
        object: "chat.completion.chunk",
        created: plan.created,
        model: plan.model,
        service_tier: "default",
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: [],
        usage: plan.usage,
      })}\n\n`,
    );
  }
  frames.push("data: [DONE]\n\n");
  return frames;
}

/** Remembers which leading message runs were seen, per model, to report cached prompt tokens. */
class PrefixCache {
  private readonly seen = new Map<string, true>();
  constructor(private readonly capacity = 50_000) {}

  /** Cached tokens for this request (longest seen run of all-but-the-last messages), then records its runs. */
  lookupAndStore(model: string, messages: readonly unknown[], perMessage: readonly number[]): number {
    let h = sha256(`model\u0000${model}`).toString("base64");
    let cached = 0;
    let run = 0;
    const keys: string[] = [];
    for (let k = 0; k < messages.length; k++) {
      h = sha256(`${h}\u0000${JSON.stringify(messages[k])}`).toString("base64");
      keys.push(h);
      run += perMessage[k];
      if (k < messages.length - 1 && this.seen.has(h)) cached = run;
    }
    for (const key of keys) {
      if (this.seen.has(key)) continue;
      if (this.seen.size >= this.capacity) this.seen.delete(this.seen.keys().next().value as string);
      this.seen.set(key, true);
    }
    return cached;
  }
}

// ---------------------------------------------------------------------------------------------
// Embeddings

type EmbeddingItem = { key: string; tokens: number };

function parseEmbeddingInput(input: unknown, maxContextChars: number): EmbeddingItem[] {
  const bad = () => invalid("Invalid 'input': expected a non-empty string, array of strings, or token arrays.", "input");
  let items: unknown[];
  if (typeof input === "string") items = [input];
  else if (Array.isArray(input) && input.length > 0) {
    items = input.every((x) => typeof x === "number") ? [input] : input;
  } else throw bad();
  let chars = 0;
  for (const item of items) {
    if (typeof item === "string") {
      if (item.length === 0) throw bad();
      chars += item.length;
    } else if (Array.isArray(item) && item.length > 0 && item.every((x) => Number.isInteger(x) && x >= 0)) {
      chars += item.length;
    } else throw bad();
  }
  if (chars > maxContextChars) {
    throw invalid(
      `This model's maximum context length is ${maxContextChars} characters in the simulated upstream; ` +
        `your input has ${chars}.`,
      "input",
      "context_length_exceeded",
    );
  }
  return items.map((item) =>
    typeof item === "string"
      ? { key: `s\u0000${item}`, tokens: countTokens(item) }
      : { key: `t\u0000${(item as number[]).join(",")}`, tokens: (item as number[]).length },
  );
}

/** A unit vector derived from (model, input); a shorter `dimensions` gives the normalized prefix. */
export function simulatedEmbedding(model: string, key: string, dimensions: number): number[] {
  const rng = prng(sha256(`${model}\u0000${key}`).readUInt32LE(0));
  const v: number[] = new Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    v[i] = rng() * 2 - 1;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dimensions; i++) v[i] = Math.fround(v[i] / norm);
  return v;
}

function embeddingsJson(body: Record<string, unknown>, maxContextChars: number): Record<string, unknown> {
  const model = body.model;
  if (typeof model !== "string" || model.length === 0) throw invalid("you must provide a model parameter", "model");
  const items = parseEmbeddingInput(body.input, maxContextChars);
  const dims = body.dimensions ?? 16;
  if (typeof dims !== "number" || !Number.isInteger(dims) || dims < 1 || dims > 8192) {
    throw invalid("Invalid 'dimensions': expected an integer between 1 and 8192.", "dimensions");
  }
  const format = body.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") {
    throw invalid("Invalid 'encoding_format': expected 'float' or 'base64'.", "encoding_format");
  }
  let tokens = 0;
  const data = items.map((item, index) => {
    tokens += item.tokens;
    const vector = simulatedEmbedding(model, item.key, dims);
    let embedding: number[] | string = vector;
    if (format === "base64") {
      const buf = Buffer.allocUnsafe(dims * 4);
      for (let i = 0; i < dims; i++) buf.writeFloatLE(vector[i], i * 4);
      embedding = buf.toString("base64");
    }
    return { object: "embedding", index, embedding };
  });
  return { object: "list", data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}

// ---------------------------------------------------------------------------------------------
// Server

const MODELS_CREATED = 1_700_000_000;

function modelJson(id: string): Record<string, unknown> {
  return { id, object: "model", created: MODELS_CREATED, owned_by: "tollgate-simulated" };
}

export async function startSimulatedUpstream(options: SimulatedUpstreamOptions = {}): Promise<SimulatedUpstream> {
  const host = options.host ?? "127.0.0.1";
  const baseLatency = Math.max(0, options.latencyMs ?? 0);
  const interTokenDelay = Math.max(0, options.interTokenDelayMs ?? 0);
  const failureRate = Math.min(1, Math.max(0, options.failureRate ?? 0));
  const failureRng = prng(options.seed ?? 1);
  const maxContextChars = options.maxContextChars ?? 200_000;
  // JSON escaping can inflate text up to 6x; anything beyond this cannot fit the context.
  const maxBodyBytes = maxContextChars * 6 + 1024 * 1024;
  const prefixCache = new PrefixCache();
  const stats: SimulatedUpstreamStats = { requests: 0, aborted: 0, active: 0 };
  let seq = 0;

  async function handlePost(ctx: Ctx, path: string): Promise<void> {
    const read = await readBody(ctx, maxBodyBytes);
    if (read.kind === "closed" || ctx.closed) return;

    const failureHeader = ctx.req.headers["x-simulate-failure"];
    const failure = typeof failureHeader === "string" ? failureHeader.trim().toLowerCase() : undefined;
    const drawn = failureRng() < failureRate;
    if (failure !== undefined && !FAILURE_MODES.has(failure)) {
      return sendError(ctx, {
        status: 400,
        message: `Unknown x-simulate-failure '${failure}'; use one of ${[...FAILURE_MODES].join(", ")}.`,
        type: "invalid_request_error",
      });
    }
    const latencyHeader = Number(ctx.req.headers["x-simulate-latency-ms"] ?? 0);
    const latency = baseLatency + (Number.isFinite(latencyHeader) ? Math.min(Math.max(latencyHeader, 0), 600_000) : 0);
    if (latency > 0 && !(await wait(ctx, latency))) return;

    if (failure === "stall") return; // never answer; the client's timeout or abort ends it
    if (failure === "reset") {
      ctx.killed = true;
      ctx.req.socket.destroy();
      return;
    }
    if (failure !== undefined && SIMULATED_FAILURES[failure]) return sendError(ctx, SIMULATED_FAILURES[failure]);
    if (drawn) return sendError(ctx, SIMULATED_FAILURES["500"]);

    if (read.kind === "too_large") {
      ctx.res.setHeader("connection", "close");
      throw invalid(
        `Request body larger than ${maxBodyBytes} bytes: over the simulated context of ${maxContextChars} characters.`,
        "messages",
        "context_length_exceeded",
      );
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(read.body.toString("utf8")) as Record<string, unknown>;
    } catch {
      throw invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP " +
          "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
      );
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw invalid("The request body must be a JSON object.");
    }
    const midstream = failure === "midstream";

    if (path === "/v1/embeddings") {
      const extra = extraParams(body, KNOWN_EMBEDDING_PARAMS);
      return sendBody(ctx, embeddingsJson(body, maxContextChars), extra, midstream);
    }

    const extra = extraParams(body, KNOWN_CHAT_PARAMS);
    const plan = planChat(body, maxContextChars, prefixCache, ++seq);
    if (body.stream !== true) return sendBody(ctx, chatCompletionJson(plan), extra, midstream);

    const streamOptions = body.stream_options as { include_usage?: unknown } | null | undefined;
    const frames = chatStreamFrames(plan, streamOptions?.include_usage === true);
    ctx.res.writeHead(200, {
      ...ctx.headers,
      ...extra,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    });
    if (midstream) {
      const part = frames.slice(0, Math.max(2, Math.floor(frames.length / 2))).join("");
      ctx.res.write(part, () => {
        ctx.killed = true;
        ctx.req.socket.destroy();
      });
      return;
    }
    if (interTokenDelay === 0) {
      ctx.res.end(frames.join(""));
      return;
    }
    for (let i = 0; i < frames.length; i++) {
      if (ctx.closed) return; // the client went away: stop generating
      if (!ctx.res.write(frames[i]) && !ctx.closed) {
        await new Promise<void>((resolve) => {
          ctx.res.once("drain", resolve);
          ctx.onClose = resolve;
        });
        ctx.onClose = null;
      }
      if (i < frames.length - 1 && !(await wait(ctx, interTokenDelay))) return;
    }
    ctx.res.end();
  }

  function sendBody(ctx: Ctx, value: unknown, extra: Record<string, string> | undefined, midstream: boolean): void {
    if (!midstream) return sendJson(ctx, 200, value, extra);
    const payload = Buffer.from(JSON.stringify(value));
    ctx.res.writeHead(200, {
      ...ctx.headers,
      ...extra,
      "content-type": "application/json",
      "content-length": payload.length,
    });
    ctx.res.write(payload.subarray(0, payload.length >> 1), () => {
      ctx.killed = true;
      ctx.req.socket.destroy();
    });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    stats.requests++;
    stats.active++;
    const incomingId = req.headers["x-request-id"];
    const ctx: Ctx = {
      req,
      res,
      closed: false,
      killed: false,
      onClose: null,
      headers: { "x-request-id": typeof incomingId === "string" ? incomingId : `sim-req-${stats.requests}` },
    };
    res.on("close", () => {
      stats.active--;
      if (!res.writableFinished && !ctx.killed) stats.aborted++;
      ctx.closed = true;
      const cb = ctx.onClose;
      ctx.onClose = null;
      cb?.();
    });
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    try {
      if (req.method === "POST" && (path === "/v1/chat/completions" || path === "/v1/embeddings")) {
        await handlePost(ctx, path);
        return;
      }
      req.resume();
      if (req.method === "GET" && path === "/v1/models") {
        return sendJson(ctx, 200, { object: "list", data: SIMULATED_MODELS.map(modelJson) });
      }
      if (req.method === "GET" && path.startsWith("/v1/models/") && path.length > "/v1/models/".length) {
        return sendJson(ctx, 200, modelJson(decodeURIComponent(path.slice("/v1/models/".length))));
      }
      sendError(ctx, {
        status: 404,
        message: `Invalid URL (${req.method} ${path})`,
        type: "invalid_request_error",
      });
    } catch (err) {
      if (err instanceof RequestError) sendError(ctx, err.body);
      else if (!res.headersSent) {
        sendError(ctx, { status: 500, message: `simulated upstream bug: ${String(err)}`, type: "server_error" });
      } else res.destroy();
    }
  }

  const server = http.createServer({ noDelay: true, keepAliveTimeout: 5_000 }, (req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | null = null;

  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    stats: () => ({ ...stats }),
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
