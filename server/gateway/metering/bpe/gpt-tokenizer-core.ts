/**
 * The one door to gpt-tokenizer@4's private API: its BytePairEncodingCore (split regex and rank
 * lookups) for each vocabulary. openBpeCore() checks the shape and fails loudly if a new version
 * changed it; count.ts then cross-checks a probe against gpt-tokenizer's public countTokens.
 */

export type EncodingName = "o200k_base" | "cl100k_base";
export const ENCODING_NAMES: readonly EncodingName[] = ["o200k_base", "cl100k_base"];

export function isEncodingName(value: unknown): value is EncodingName {
  return value === "o200k_base" || value === "cl100k_base";
}

/** The parts of gpt-tokenizer@4's (private) BytePairEncodingCore the counting relies on. */
export interface BpeCore {
  tokenSplitRegex: RegExp;
  getBpeRankFromString(key: string): number | undefined;
  getBpeRankFromBytes(key: Uint8Array): number | undefined;
  bytePairEncode(piece: string): number[];
}

/** What one vocabulary offers: its private merge core, and the public count to check ours against. */
export interface OpenedEncoding {
  core: BpeCore;
  publicCount(text: string): number;
}

interface GptTokenizerModule {
  default: {
    bytePairEncodingCoreProcessor?: unknown;
    countTokens(input: string, options?: { disallowedSpecial?: Set<string> }): number;
  };
}

function requireEncoding(name: EncodingName): GptTokenizerModule {
  // Loaded lazily: each vocabulary costs 100-300 ms and 20-35 MB of heap; a process (or
  // worker) pays only for the encodings it counts.
  /* eslint-disable @typescript-eslint/no-require-imports */
  switch (name) {
    case "o200k_base":
      return require("gpt-tokenizer/encoding/o200k_base") as GptTokenizerModule;
    case "cl100k_base":
      return require("gpt-tokenizer/encoding/cl100k_base") as GptTokenizerModule;
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
  throw new TypeError(`unknown encoding: ${String(name)}`);
}

export function openBpeCore(name: EncodingName): OpenedEncoding {
  if (!isEncodingName(name)) throw new TypeError(`unknown encoding: ${String(name)}`);
  const api = requireEncoding(name).default;
  const core = api.bytePairEncodingCoreProcessor as Partial<BpeCore> | undefined;
  if (
    !core ||
    !(core.tokenSplitRegex instanceof RegExp) ||
    typeof core.getBpeRankFromString !== "function" ||
    typeof core.getBpeRankFromBytes !== "function" ||
    typeof core.bytePairEncode !== "function"
  ) {
    throw new Error(
      "gpt-tokenizer internals changed (BytePairEncodingCore); pin gpt-tokenizer@4 or update " +
        "server/gateway/metering/bpe/gpt-tokenizer-core.ts",
    );
  }
  return {
    core: core as BpeCore,
    publicCount: (text) => api.countTokens(text, { disallowedSpecial: new Set() }),
  };
}
