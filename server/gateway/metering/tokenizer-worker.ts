/**
 * The task a tokenizer worker thread runs (piscina loads this file by name from tokenizer-pool.ts;
 * never imported for its values). Counts each text with encode_ordinary semantics and returns the sum.
 *
 * Errors come back as a value, not thrown: then every rejection the pool sees means the thread
 * itself died (a crash, out of memory, terminated), which it reports as TokenizerWorkerError.
 */
import { countTextsTokens } from "./bpe/count";
import { type EncodingName, isEncodingName } from "./bpe/gpt-tokenizer-core";

export interface CountJob {
  encoding: EncodingName;
  texts: string[];
  maxPieceChars: number;
}

export type CountReply = { ok: true; count: number } | { ok: false; error: string };

export default function countJob(job: CountJob): CountReply {
  try {
    if (!isEncodingName(job?.encoding)) throw new TypeError(`unknown encoding: ${String(job?.encoding)}`);
    if (!Array.isArray(job.texts)) throw new TypeError("texts must be an array of strings");
    return { ok: true, count: countTextsTokens(job.encoding, job.texts, job.maxPieceChars) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}
