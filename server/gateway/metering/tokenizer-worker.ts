/**
 * Worker thread of the gateway's tokenizer pool (spawned by tokenizer.ts, never imported).
 *
 * Receives `WorkerRequest`s one at a time, counts each text with encode_ordinary semantics and
 * replies with the summed count. Any error is returned as a reply, so the thread only dies on
 * a real crash (for instance out of memory), which the pool reports and recovers from.
 */
import { parentPort } from "node:worker_threads";
import { countTextsTokens, isEncodingName, type WorkerReply, type WorkerRequest } from "./tokenizer";

const port = parentPort;
if (!port) throw new Error("tokenizer-worker must run as a worker thread");

port.on("message", (request: WorkerRequest) => {
  const id = request?.id;
  let reply: WorkerReply;
  try {
    if (!isEncodingName(request.encoding)) throw new TypeError(`unknown encoding: ${String(request.encoding)}`);
    if (!Array.isArray(request.texts)) throw new TypeError("texts must be an array of strings");
    reply = { id, ok: true, count: countTextsTokens(request.encoding, request.texts, request.maxPieceChars) };
  } catch (error) {
    reply = { id, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
});
