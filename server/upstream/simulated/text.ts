/** Deterministic, readable filler: sentences for answers and schema-shaped values for tool-call arguments. */
import { pick } from "./random";

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
export function sentences(rng: () => number, targetTokens: number): string {
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

export function fakeValue(schema: unknown, rng: () => number, depth: number): unknown {
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
