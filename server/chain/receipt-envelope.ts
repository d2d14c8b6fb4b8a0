/**
 * A signed usage receipt as the gateway hands it to the buyer (the `x-tollgate-receipt` header, base64url
 * JSON, or a stream's last chunk): everything needed to verify it with any EIP-712 library. Browser-safe,
 * so the gateway that writes it and the client that reads it share one definition.
 */
import { getAddress, type Address, type Hex } from "viem";
import type { UsageReceipt } from "./usage-batch";

export interface ReceiptEnvelope {
  domain: { name: string; version: string; chainId: number; verifyingContract: Address };
  signer: Address;
  primaryType: "UsageReceipt";
  /** The EIP-712 message; JSON has no bigint, so amounts and the sequence travel as decimal strings. */
  receipt: Record<keyof UsageReceipt, string | number>;
  receiptHash: Hex;
  signature: Hex;
  content: { salt: Hex; requestHash: Hex; responseHash: Hex };
  model: string;
  reasoningTokens: number;
  countSource: "upstream" | "gateway";
}

/** The receipt's fields as they travel: bigints as decimal strings. */
export function receiptToWire(receipt: UsageReceipt): ReceiptEnvelope["receipt"] {
  return Object.fromEntries(Object.entries(receipt).map(([name, value]) => [name, typeof value === "bigint" ? value.toString() : value])) as ReceiptEnvelope["receipt"];
}

/** The EIP-712 message inside an envelope a buyer received: what a buyer or auditor verifies and compares. */
export function usageReceiptFromEnvelope(envelope: ReceiptEnvelope): UsageReceipt {
  const r = envelope.receipt;
  return {
    sequence: BigInt(r.sequence),
    buyer: getAddress(String(r.buyer)),
    modelId: Number(r.modelId),
    inputTokens: Number(r.inputTokens),
    cachedInputTokens: Number(r.cachedInputTokens),
    outputTokens: Number(r.outputTokens),
    servedAt: Number(r.servedAt),
    inputPrice: BigInt(r.inputPrice),
    cachedInputPrice: BigInt(r.cachedInputPrice),
    outputPrice: BigInt(r.outputPrice),
    cost: BigInt(r.cost),
    contentHash: r.contentHash as Hex,
  };
}

// base64url over UTF-8 with the web platform's own codecs (atob, TextDecoder), so it runs in a browser too.
// The gateway writes the header with Node's Buffer on its hot path; the bytes are the same.
function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** The envelope in an `x-tollgate-receipt` header. */
export function parseReceiptHeader(value: string): ReceiptEnvelope {
  return JSON.parse(new TextDecoder().decode(fromBase64Url(value))) as ReceiptEnvelope;
}
