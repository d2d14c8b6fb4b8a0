/** The input tokens of an embeddings request as the gateway counts them: text by the tokenizer, token arrays by length. */
import type { EncodingName, Tokenizer } from "./tokenizer";

/** `input` as OpenAI's API takes it: a string, strings, a token array, or token arrays. */
export type EmbeddingInput = string | string[] | number[] | number[][];

export async function countEmbeddingInput(tokenizer: Tokenizer, encoding: EncodingName, input: EmbeddingInput): Promise<number> {
  const inputs: (string | number[])[] = typeof input === "string" ? [input] : typeof input[0] === "number" ? [input as number[]] : (input as (string | number[])[]);
  let tokens = 0;
  for (const one of inputs) tokens += typeof one === "string" ? await tokenizer.count(encoding, one) : one.length;
  return tokens;
}
