/**
 * The text a chat completion produced, for the gateway's own output-token count: message content,
 * reasoning content where servers expose it, and tool calls (name and arguments), across all choices.
 */
import type { EncodingName, Tokenizer } from "./tokenizer";

type Json = Record<string, unknown>;

function appendMessageText(parts: string[], message: unknown): void {
  if (typeof message !== "object" || message === null) return;
  const m = message as Json;
  if (typeof m.content === "string") parts.push(m.content);
  if (typeof m.reasoning_content === "string") parts.push(m.reasoning_content);
  if (typeof m.refusal === "string") parts.push(m.refusal);
  if (Array.isArray(m.tool_calls)) {
    for (const call of m.tool_calls) {
      const fn = (call as Json | null)?.function as Json | undefined;
      if (typeof fn?.name === "string") parts.push(fn.name);
      if (typeof fn?.arguments === "string") parts.push(fn.arguments);
    }
  }
}

async function countParts(tokenizer: Tokenizer, encoding: EncodingName, parts: readonly string[]): Promise<number> {
  let total = 0;
  for (const part of parts) total += part.length === 0 ? 0 : await tokenizer.count(encoding, part);
  return total;
}

/** Output tokens of a non-streaming chat completion body. */
export function countChatOutput(tokenizer: Tokenizer, encoding: EncodingName, body: Json): Promise<number> {
  const parts: string[] = [];
  if (Array.isArray(body.choices)) for (const choice of body.choices) appendMessageText(parts, (choice as Json | null)?.message);
  return countParts(tokenizer, encoding, parts);
}

/** Collects the deltas of a stream as they pass, to count them once it ends (or is cut short). */
export class OutputTextCollector {
  private readonly parts: string[] = [];

  addChunk(chunk: Json): void {
    if (!Array.isArray(chunk.choices)) return;
    for (const choice of chunk.choices) appendMessageText(this.parts, (choice as Json | null)?.delta);
  }

  /** Deltas are joined before counting: tokens split across chunks must count once. */
  count(tokenizer: Tokenizer, encoding: EncodingName): Promise<number> {
    const text = this.parts.join("");
    return text.length === 0 ? Promise.resolve(0) : tokenizer.count(encoding, text);
  }
}
