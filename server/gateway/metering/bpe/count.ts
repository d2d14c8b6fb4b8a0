/**
 * Token counts with OpenAI's `encode_ordinary` semantics, on whatever thread calls (the gateway's
 * event loop for short texts, the tokenizer workers for long ones).
 *
 * Exact: counts equal `tiktoken` (verified against the WASM port in test/gateway/tokenizer.test.ts).
 * Special-token strings such as "<|endoftext|>" are ordinary text (gpt-tokenizer's default would
 * throw on them); lone surrogates are encoded as U+FFFD like tiktoken does, never thrown on.
 *
 * Bounded: pieces up to `maxPieceChars` go through gpt-tokenizer's own merge (and its merge cache);
 * longer ones through countLongPiece, which applies the same rule (lowest rank first, leftmost on
 * ties) and yields the same tokens in O(n log n). The regex split is linear, so a whole count is
 * O(n log n) in the text length.
 */
import { type BpeCore, type EncodingName, openBpeCore } from "./gpt-tokenizer-core";
import { countLongPiece } from "./long-piece";

/** Longest piece merged by gpt-tokenizer's own (quadratic, cached) merge; see TokenizerOptions.maxPieceChars. */
export const DEFAULT_MAX_PIECE_CHARS = 64;

interface EncodingState {
  readonly name: EncodingName;
  /** A private copy of the split regex (global flag; lastIndex is ours). */
  readonly splitRegex: RegExp;
  readonly core: BpeCore;
}

const encodingStates = new Map<EncodingName, EncodingState>();
const utf8 = new TextEncoder();

function loadEncoding(name: EncodingName): EncodingState {
  const cached = encodingStates.get(name);
  if (cached) return cached;
  const { core, publicCount } = openBpeCore(name);
  const source = core.tokenSplitRegex;
  const flags = source.flags.includes("g") ? source.flags : `${source.flags}g`;
  const state: EncodingState = { name, splitRegex: new RegExp(source.source, flags), core };
  // Cross-check both merge paths against the public API once per encoding and thread.
  let seed = 7;
  let letters = "";
  for (let i = 0; i < 300; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    letters += String.fromCharCode(97 + ((seed >>> 16) % 26));
  }
  const probe =
    "Hello, world! The quick brown fox's 12345 jumps.\n\n  안녕하세요 세계 🤖👩‍👩‍👧 " +
    "supercalifragilisticexpialidocious aGVsbG8gd29ybGQhISE= \t\r\n abababqpreqprecon " +
    "x".repeat(40) + " " + "!?".repeat(30) + " " + letters;
  const expected = publicCount(probe);
  if (countWith(state, probe, Number.MAX_SAFE_INTEGER) !== expected || countWith(state, probe, 1) !== expected) {
    throw new Error(`tokenizer self-check failed for ${name}: counts disagree with gpt-tokenizer (internals changed?)`);
  }
  encodingStates.set(name, state);
  return state;
}

function countWith(state: EncodingState, text: string, maxPieceChars: number): number {
  const { core, splitRegex } = state;
  let count = 0;
  splitRegex.lastIndex = 0;
  try {
    for (let match = splitRegex.exec(text); match !== null; match = splitRegex.exec(text)) {
      const piece = match[0];
      if (piece.length === 0) {
        splitRegex.lastIndex++; // cannot happen with the current patterns; never loop forever
        continue;
      }
      if (core.getBpeRankFromString(piece) !== undefined) count += 1;
      else if (piece.length <= maxPieceChars) count += core.bytePairEncode(piece).length;
      else count += countLongPiece(core, utf8.encode(piece));
    }
  } finally {
    splitRegex.lastIndex = 0;
  }
  return count;
}

/**
 * Tokens of `text` under `encoding` with encode_ordinary semantics (special-token strings are
 * ordinary text). Synchronous and unbounded in size: callers decide the thread and the cap.
 */
export function countTextTokens(
  encoding: EncodingName,
  text: string,
  maxPieceChars: number = DEFAULT_MAX_PIECE_CHARS,
): number {
  if (typeof text !== "string") throw new TypeError("text must be a string");
  if (text.length === 0) return 0;
  return countWith(loadEncoding(encoding), text, maxPieceChars);
}

/** Sum of countTextTokens over several texts (each tokenized on its own). */
export function countTextsTokens(encoding: EncodingName, texts: readonly string[], maxPieceChars: number): number {
  let total = 0;
  for (const text of texts) total += countTextTokens(encoding, text, maxPieceChars);
  return total;
}
