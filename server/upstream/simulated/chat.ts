/**
 * `POST /v1/chat/completions`: validates the request and plans one deterministic answer (content or a
 * tool call, capped by max_tokens, with usage), then renders it as a chat.completion object.
 */
import { encode } from "gpt-tokenizer/encoding/o200k_base";
import type { PrefixCache } from "./prefix-cache";
import { prng, sha256 } from "./random";
import { invalid } from "./request-error";
import { fakeValue, sentences } from "./text";
import { chatChars, countMessageTokens, countTokens, ENCODE_OPTIONS, promptTokensOf, truncateTokens } from "./token-counts";

export const KNOWN_CHAT_PARAMS = new Set([
  "model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "tools", "tool_choice",
  "parallel_tool_calls", "temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty",
  "logit_bias", "logprobs", "top_logprobs", "user", "seed", "response_format", "metadata", "store",
  "reasoning_effort", "service_tier", "modalities", "audio", "prediction", "web_search_options", "functions",
  "function_call", "safety_identifier", "prompt_cache_key", "verbosity",
]);

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

export interface ChatPlan {
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

export function planChat(
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
  const promptTokens = promptTokensOf(perMessage, body.tools);
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

export const SYSTEM_FINGERPRINT = "fp_tollgate_sim";

export function chatCompletionJson(plan: ChatPlan): Record<string, unknown> {
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

