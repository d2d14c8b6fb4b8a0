/** `POST /v1/embeddings`: float or base64 unit vectors derived from (model, input); usage counts the input tokens. */
import { prng, sha256 } from "./random";
import { invalid } from "./request-error";
import { countTokens } from "./token-counts";

export const KNOWN_EMBEDDING_PARAMS = new Set(["model", "input", "dimensions", "encoding_format", "user"]);

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

export function embeddingsJson(body: Record<string, unknown>, maxContextChars: number): Record<string, unknown> {
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
