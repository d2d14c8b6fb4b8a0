/**
 * Lays out an OpenAI-style chat request as "texts to tokenize + fixed token overhead".
 *
 * This module does no tokenizing itself: `planChatPrompt` walks the request once (linear,
 * never throws) and returns the strings whose tokens must be counted plus the constant tokens
 * the chat format adds. `Tokenizer.countChatPrompt` then counts the strings inline or on a
 * worker thread, so the walk and the (possibly expensive) BPE work are kept apart.
 *
 * Format (OpenAI cookbook, "How to count tokens with tiktoken", for the gpt-4 / gpt-4o /
 * gpt-4.1 / gpt-5 families and gpt-3.5-turbo-0125):
 *   - every message costs TOKENS_PER_MESSAGE (3): `<|start|>{role}<|message|>...<|end|>`
 *     framing; the role string itself is tokenized like any other value;
 *   - a `name` costs its tokens plus TOKENS_PER_NAME (1);
 *   - every reply is primed with REPLY_PRIMING_TOKENS (3): `<|start|>assistant<|message|>`.
 * For plain text messages (role, content string, optional name) the result is exactly the
 * cookbook formula. Everything below is an estimate chosen to match or exceed what the
 * upstream reports:
 *   - content arrays: text (and refusal) parts are tokenized one by one; image parts cost a
 *     fixed IMAGE_PART_TOKENS (1445 = the most a gpt-4o high/auto-detail image can cost:
 *     768x2048 after scaling = 8 tiles x 170 + 85 base) or IMAGE_LOW_DETAIL_TOKENS (85) for
 *     `detail: "low"`; audio parts a fixed AUDIO_PART_TOKENS (1000, ~100 s of gpt-4o audio
 *     at ~10 tokens/s; audio length is not derived from the payload). Models that price images
 *     in more tokens (gpt-4o-mini counts ~33x more image tokens) must override these through
 *     TokenizerOptions; the gateway cross-checks against the upstream's reported usage anyway;
 *   - parts of unknown type are counted as their JSON text (conservative for file parts);
 *   - tool calls (`tool_calls[].function` or the legacy `function_call`): the function name
 *     and the arguments text, plus TOKENS_PER_TOOL_CALL (3) framing per call;
 *   - tool results: the message content as usual, plus the `tool_call_id` text;
 *   - `tools` definitions: the tokens of their JSON serialization plus
 *     TOOL_DEFINITIONS_OVERHEAD (12). OpenAI renders tools into a TypeScript-like namespace
 *     that is shorter than the JSON schema, so this over-estimates rather than under.
 * Malformed shapes never throw: non-object messages other than strings are skipped, a string
 * message is treated as `{ content: string }`, values of the wrong type are ignored or
 * counted as JSON, unserializable values (cycles, BigInt, throwing getters) count as nothing.
 */

export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_NAME = 1;
export const REPLY_PRIMING_TOKENS = 3;
export const TOKENS_PER_TOOL_CALL = 3;
export const TOOL_DEFINITIONS_OVERHEAD = 12;
export const IMAGE_PART_TOKENS = 1445;
export const IMAGE_LOW_DETAIL_TOKENS = 85;
export const AUDIO_PART_TOKENS = 1000;

export interface ChatPromptEstimates {
  /** Tokens charged for an image part whose detail is not "low". */
  imagePartTokens?: number;
  /** Tokens charged for an image part with `detail: "low"`. */
  imageLowDetailTokens?: number;
  /** Tokens charged for an audio part. */
  audioPartTokens?: number;
}

export interface ChatPromptPlan {
  /** Strings to tokenize one by one (their token counts are summed). */
  texts: string[];
  /** Tokens added by the chat format and by fixed estimates (images, audio). */
  fixedTokens: number;
  /** Sum of `texts[i].length`, to choose inline vs worker and to enforce size caps. */
  totalChars: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** JSON text of a value, or "" when it cannot be serialized (cycles, BigInt, throwing toJSON). */
export function safeJson(value: unknown): string {
  try {
    const json = JSON.stringify(value);
    return typeof json === "string" ? json : "";
  } catch {
    return "";
  }
}

class PlanBuilder {
  readonly texts: string[] = [];
  fixedTokens = 0;
  totalChars = 0;

  constructor(private readonly estimates: Required<ChatPromptEstimates>) {}

  text(value: string): void {
    if (value.length === 0) return;
    this.texts.push(value);
    this.totalChars += value.length;
  }

  /** A string as is; anything else (except null/undefined) as its JSON text. */
  textOrJson(value: unknown): void {
    if (value === undefined || value === null) return;
    this.text(typeof value === "string" ? value : safeJson(value));
  }

  contentPart(part: unknown): void {
    if (typeof part === "string") return this.text(part);
    if (!isRecord(part)) return this.textOrJson(part);
    const type = part.type;
    if (typeof part.text === "string" && (type === undefined || type === "text" || type === "input_text" || type === "output_text")) {
      return this.text(part.text);
    }
    if (type === "refusal" && typeof part.refusal === "string") return this.text(part.refusal);
    if (type === "image_url" || type === "input_image" || type === "image") {
      const image = isRecord(part.image_url) ? part.image_url : part;
      this.fixedTokens +=
        image.detail === "low" ? this.estimates.imageLowDetailTokens : this.estimates.imagePartTokens;
      return;
    }
    if (type === "input_audio" || type === "audio") {
      this.fixedTokens += this.estimates.audioPartTokens;
      return;
    }
    this.text(safeJson(part)); // unknown part type: count its JSON text
  }

  content(content: unknown): void {
    if (typeof content === "string") return this.text(content);
    if (Array.isArray(content)) {
      for (const part of content) this.contentPart(part);
      return;
    }
    this.textOrJson(content);
  }

  functionCall(call: unknown): void {
    if (!isRecord(call)) return;
    this.fixedTokens += TOKENS_PER_TOOL_CALL;
    if (typeof call.name === "string") this.text(call.name);
    this.textOrJson(call.arguments ?? call.input);
  }

  message(message: unknown): void {
    if (typeof message === "string") {
      this.fixedTokens += TOKENS_PER_MESSAGE;
      return this.text(message);
    }
    if (!isRecord(message)) return;
    this.fixedTokens += TOKENS_PER_MESSAGE;
    if (typeof message.role === "string") this.text(message.role);
    this.content(message.content);
    if (typeof message.name === "string") {
      this.text(message.name);
      this.fixedTokens += TOKENS_PER_NAME;
    }
    if (typeof message.refusal === "string") this.text(message.refusal);
    if (Array.isArray(message.tool_calls)) {
      for (const call of message.tool_calls) {
        if (!isRecord(call)) continue;
        this.functionCall(isRecord(call.function) ? call.function : call.custom);
      }
    }
    if (message.function_call !== undefined) this.functionCall(message.function_call);
    if (typeof message.tool_call_id === "string") this.text(message.tool_call_id);
  }
}

/**
 * Never throws. `messages` that is not an array (or array-like iterable) counts as no messages;
 * a throwing getter or proxy inside one message stops counting that message only.
 */
export function planChatPrompt(
  messages: readonly unknown[],
  tools?: unknown,
  estimates: ChatPromptEstimates = {},
): ChatPromptPlan {
  const builder = new PlanBuilder({
    imagePartTokens: estimates.imagePartTokens ?? IMAGE_PART_TOKENS,
    imageLowDetailTokens: estimates.imageLowDetailTokens ?? IMAGE_LOW_DETAIL_TOKENS,
    audioPartTokens: estimates.audioPartTokens ?? AUDIO_PART_TOKENS,
  });
  let list: readonly unknown[] = [];
  let length = 0;
  try {
    if (Array.isArray(messages)) {
      list = messages;
      length = list.length;
    }
  } catch {
    length = 0; // a revoked proxy throws on Array.isArray / length
  }
  for (let i = 0; i < length; i++) {
    try {
      builder.message(list[i]);
    } catch {
      // A hostile object (throwing getter, revoked proxy): keep what was counted so far.
    }
  }
  try {
    if (tools !== undefined && tools !== null && !(Array.isArray(tools) && tools.length === 0)) {
      const json = safeJson(tools);
      if (json.length > 0) {
        builder.text(json);
        builder.fixedTokens += TOOL_DEFINITIONS_OVERHEAD;
      }
    }
  } catch {
    // unreadable tools: nothing countable
  }
  builder.fixedTokens += REPLY_PRIMING_TOKENS;
  return { texts: builder.texts, fixedTokens: builder.fixedTokens, totalChars: builder.totalChars };
}
