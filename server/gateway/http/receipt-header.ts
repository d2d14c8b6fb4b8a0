/** How a receipt travels on a non-streaming answer: the `x-tollgate-receipt` header beside the exact bytes it covers. */
import type { Response } from "express";
import type { ReceiptEnvelope } from "../../chain/receipt-envelope";

/** The receipt as one ASCII header value: base64url of its JSON. */
export function receiptHeaderValue(envelope: ReceiptEnvelope): string {
  return Buffer.from(JSON.stringify(envelope)).toString("base64url");
}

/** Sends a metered non-streaming answer: the exact bytes the receipt's response hash covers, and the receipt. */
export function sendMeteredJson(res: Response, envelope: ReceiptEnvelope, responseBytes: Buffer): void {
  res.status(200).setHeader("content-type", "application/json; charset=utf-8");
  res.setHeader("x-tollgate-receipt", receiptHeaderValue(envelope));
  res.end(responseBytes);
}
// Reading it back is the client's job: `parseReceiptHeader` in server/chain/receipt-envelope.ts, browser-safe.
