/**
 * The simulated upstream's token arithmetic: o200k_base counts (gpt-tokenizer) with special tokens
 * read as plain text, OpenAI's cookbook prompt formula, and cutting an answer to a token budget.
 */
import { countTokens as o200kCount, decode } from "gpt-tokenizer/encoding/o200k_base";

export const ENCODE_OPTIONS = { disallowedSpecial: new Set<string>() };

/** o200k_base token count, special tokens counted as text. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : o200kCount(text, ENCODE_OPTIONS);
}

const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const PRIMING_TOKENS = 3;
const IMAGE_PART_TOKENS = 85;

/** The tokens one chat message costs in the prompt (OpenAI's cookbook formula, see simulated-upstream.ts). */
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
  return promptTokensOf(messages.map(countMessageTokens), tools);
}

/** prompt_tokens from per-message counts already taken (the chat planner reuses them for the prefix cache). */
export function promptTokensOf(perMessage: readonly number[], tools: unknown): number {
  let n = PRIMING_TOKENS;
  for (const t of perMessage) n += t;
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
export function chatChars(messages: readonly unknown[], tools: unknown): number {
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

/** The longest token prefix of `tokens` whose text re-encodes to at most `budget` tokens. */
export function truncateTokens(tokens: readonly number[], budget: number): { text: string; tokens: number[]; count: number } {
  for (let n = Math.min(budget, tokens.length); n > 0; n--) {
    const slice = tokens.slice(0, n);
    const text = decode(slice);
    const count = countTokens(text);
    if (count <= budget) return { text, tokens: slice, count };
  }
  return { text: "", tokens: [], count: 0 };
}
