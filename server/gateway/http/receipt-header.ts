/** How a receipt travels on a non-streaming answer: the `x-tollgate-receipt` header beside the exact bytes it covers. */
import type { ServerResponse } from "node:http";
import type { ReceiptEnvelope } from "../../chain/receipt-envelope";

/** The receipt as one ASCII header value: base64url of its JSON. */
export function receiptHeaderValue(envelope: ReceiptEnvelope): string {
  return Buffer.from(JSON.stringify(envelope)).toString("base64url");
}

/**
 * Sends a metered non-streaming answer: the exact bytes the receipt's response hash covers, and the receipt, in
 * one `writeHead` + `end`. `headers` (name, value, …) are the ones decided earlier (routing), sent first.
 */
export function sendMeteredJson(res: ServerResponse, envelope: ReceiptEnvelope, responseBytes: Buffer, headers: readonly string[] = []): void {
  res.writeHead(200, [
    ...headers,
    "content-type",
    "application/json; charset=utf-8",
    "x-tollgate-receipt",
    receiptHeaderValue(envelope),
    "Content-Length",
    String(responseBytes.length),
  ]);
  res.end(responseBytes);
}
// Reading it back is the client's job: `parseReceiptHeader` in server/chain/receipt-envelope.ts, browser-safe.
