/**
 * The token counters bench/tokenizer-throughput.ts compares, each behind the same two calls, all with
 * OpenAI's `encode_ordinary` semantics (special-token strings are ordinary text):
 *   - ours: server/gateway/metering/bpe/count.ts (gpt-tokenizer's vocabularies and short-piece merge,
 *     our O(n log n) merge for long pieces);
 *   - tiktoken: the WASM build of OpenAI's tokenizer, `encode_ordinary(text).length`, the reference;
 *   - gpt-tokenizer: its public `countTokens`, without our long-piece merge.
 * The libraries are required inside open(), so a probe process can time and weigh loading them.
 */
import { countTextTokens, type EncodingName } from "../../server/gateway/metering/tokenizer";

export type CandidateName = "ours" | "tiktoken" | "gpt-tokenizer";
export const CANDIDATE_NAMES: readonly CandidateName[] = ["ours", "tiktoken", "gpt-tokenizer"];

export function isCandidateName(value: unknown): value is CandidateName {
  return CANDIDATE_NAMES.includes(value as CandidateName);
}

/** What the table calls each candidate. */
export const CANDIDATE_LABELS: Record<CandidateName, string> = {
  ours: "ours (bpe/count.ts)",
  tiktoken: "tiktoken 1.0 (WASM)",
  "gpt-tokenizer": "gpt-tokenizer 4 public countTokens",
};

export interface Counter {
  count(text: string): number;
  /** Releases what the candidate holds outside the JS heap (tiktoken's WASM encoder). */
  free(): void;
}

interface GptTokenizerEncoding {
  countTokens(text: string, options: { disallowedSpecial: Set<string> }): number;
}

/* eslint-disable @typescript-eslint/no-require-imports */
function gptTokenizerEncoding(encoding: EncodingName): GptTokenizerEncoding {
  return encoding === "o200k_base"
    ? (require("gpt-tokenizer/encoding/o200k_base") as GptTokenizerEncoding)
    : (require("gpt-tokenizer/encoding/cl100k_base") as GptTokenizerEncoding);
}

export function openCounter(candidate: CandidateName, encoding: EncodingName): Counter {
  switch (candidate) {
    case "ours":
      return { count: (text) => countTextTokens(encoding, text), free: () => undefined };
    case "tiktoken": {
      const { get_encoding } = require("tiktoken") as typeof import("tiktoken");
      const tiktoken = get_encoding(encoding);
      return { count: (text) => tiktoken.encode_ordinary(text).length, free: () => tiktoken.free() };
    }
    case "gpt-tokenizer": {
      const api = gptTokenizerEncoding(encoding);
      // An empty disallowed set: special-token strings count as text (the default throws on them).
      const ordinary = { disallowedSpecial: new Set<string>() };
      return { count: (text) => api.countTokens(text, ordinary), free: () => undefined };
    }
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */
