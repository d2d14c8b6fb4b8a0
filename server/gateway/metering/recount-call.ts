/**
 * A buyer's recount of a retained call: the same counting code the gateway ran when it served the call
 * (the model's tokenizer, the chat prompt formula, the output text of a body or of a stream's events), over
 * the exact bytes the gateway kept. Node-only (the tokenizer's worker threads), so the browser-safe receipt
 * audit takes it as its `recount` callback.
 *
 * What it counts is the gateway's own count. A call billed from the upstream's reported usage agrees with
 * it when the upstream counts as the cookbook does (OpenAI, the simulated upstream, plain messages);
 * templates and tool schemas may differ, which the audit's tolerance allows for.
 */
import { z } from "zod";
import type { RecountedTokens, RecountTokens } from "../../../client/audit/receipt-reconciliation";
import { countEmbeddingInput, type EmbeddingInput } from "./embedding-input";
import { countChatOutput, OutputTextCollector } from "./output-text";
import { isEncodingName, Tokenizer, type EncodingName } from "./tokenizer";

const chatRequest = z.looseObject({ messages: z.array(z.unknown()), tools: z.unknown().optional() });
const embeddingsRequest = z.looseObject({ input: z.union([z.string(), z.array(z.string()), z.array(z.number()), z.array(z.array(z.number()))]) });

function json(bytes: Uint8Array, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new Error(`the ${what} is not a JSON object`);
}

/** A stream's `data:` events as the gateway wrote them, one JSON chunk each. */
function streamChunks(bytes: Uint8Array): Record<string, unknown>[] {
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  return text
    .split("\n\n")
    .filter((event) => event.length > 0)
    .map((event) => {
      if (!event.startsWith("data: ")) throw new Error("the streamed response holds an event that is not `data: …`");
      return json(new TextEncoder().encode(event.slice("data: ".length)), "streamed response event");
    });
}

async function recountWith(tokenizer: Tokenizer, call: Parameters<RecountTokens>[0]): Promise<RecountedTokens> {
  if (!isEncodingName(call.encoding)) throw new Error(`the export names no known tokenizer for model ${call.model} (got ${String(call.encoding)})`);
  const encoding: EncodingName = call.encoding;
  const request = json(call.request, "request");
  if (call.endpoint === "embeddings") {
    const parsed = embeddingsRequest.safeParse(request);
    if (!parsed.success) throw new Error("the request is not an embeddings request (no valid `input`)");
    return { inputTokens: await countEmbeddingInput(tokenizer, encoding, parsed.data.input as EmbeddingInput), outputTokens: 0 };
  }
  const parsed = chatRequest.safeParse(request);
  if (!parsed.success) throw new Error("the request is not a chat completion request (no `messages` array)");
  const inputTokens = await tokenizer.countChatPrompt(encoding, parsed.data.messages, parsed.data.tools ?? undefined);
  if (!call.streamed) return { inputTokens, outputTokens: await countChatOutput(tokenizer, encoding, json(call.response, "response")) };
  const collector = new OutputTextCollector();
  for (const chunk of streamChunks(call.response)) collector.addChunk(chunk);
  return { inputTokens, outputTokens: await collector.count(tokenizer, encoding) };
}

/** A recount over its own tokenizer; `close()` stops the tokenizer's worker threads. */
export function createCallRecount(tokenizer: Tokenizer = new Tokenizer()): { recount: RecountTokens; close(): Promise<void> } {
  return { recount: (call) => recountWith(tokenizer, call), close: () => tokenizer.close() };
}
