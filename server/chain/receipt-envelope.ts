/**
 * A signed usage receipt as the gateway hands it to the buyer (the `x-tollgate-receipt` header, base64url
 * JSON, or a stream's last chunk): everything needed to verify it with any EIP-712 library. Browser-safe,
 * so the gateway that writes it and the client that reads it share one definition.
 */
import { getAddress, type Address, type Hex } from "viem";
import { usageReceiptTypes, type UsageReceipt } from "./eip712";

/** The receipt's field names, in the EIP-712 struct's order. */
const RECEIPT_FIELDS = usageReceiptTypes.UsageReceipt.map(({ name }) => name);

/** The receipt's fields as they travel in JSON, which has no bigint: those travel as decimal strings. */
export type WireReceipt = { [K in keyof UsageReceipt]: UsageReceipt[K] extends bigint ? string : UsageReceipt[K] };

export interface ReceiptEnvelope {
  domain: { name: string; version: string; chainId: number; verifyingContract: Address };
  signer: Address;
  primaryType: "UsageReceipt";
  /** The EIP-712 message; JSON has no bigint, so amounts and the sequence travel as decimal strings. */
  receipt: WireReceipt;
  receiptHash: Hex;
  signature: Hex;
  content: { salt: Hex; requestHash: Hex; responseHash: Hex };
  model: string;
  reasoningTokens: number;
  countSource: "upstream" | "gateway";
  /**
   * Present when the buyer called an alias (`auto`) and the gateway chose the model. Not signed: the signed
   * receipt names the model that served (`modelId`); this says why that one.
   */
  routing?: ReceiptRouting;
}

/** How a routed call chose its model, as the envelope carries it. */
export interface ReceiptRouting {
  /** The alias the buyer called. */
  requested: string;
  /** The rule that set the least tier: "default", "prompt_tokens>=N", "tools", "reasoning_effort=high", "hint". */
  reason: string;
  /** Candidates that failed upstream before the one that served; none of them was charged. */
  fallbacks: number;
}

/**
 * Whether a field of an EIP-712 `uint` type is a bigint in TypeScript: the rule viem's typed-data types
 * follow (abitype maps uint8..uint48 to number, wider ones to bigint), so the value read back has the type
 * `UsageReceipt` declares for it.
 */
function isBigUint(type: string): boolean {
  return type.startsWith("uint") && Number(type.slice(4)) > 48;
}

/**
 * The EIP-712 message of anything that carries a receipt's fields (a stored record, say): exactly the
 * table's fields, in the struct's order, and nothing else.
 */
export function usageReceiptOf(source: UsageReceipt): UsageReceipt {
  const receipt: Record<string, unknown> = {};
  for (const name of RECEIPT_FIELDS) receipt[name] = source[name];
  return receipt as UsageReceipt;
}

/** The receipt's fields as they travel: bigints as decimal strings. Reads only the receipt's own fields of `receipt`. */
export function receiptToWire(receipt: UsageReceipt): WireReceipt {
  // A plain loop: this runs for every metered call, and entries arrays were a visible share of its garbage.
  const wire: Record<string, unknown> = {};
  for (const name of RECEIPT_FIELDS) {
    const value = receipt[name];
    wire[name] = typeof value === "bigint" ? value.toString() : value;
  }
  return wire as WireReceipt;
}

/** One wire value back to its TypeScript type, chosen by the field's EIP-712 type. */
function fromWire(type: string, value: unknown): unknown {
  if (type === "address") return getAddress(String(value));
  if (isBigUint(type)) return BigInt(value as string | number);
  if (type.startsWith("uint")) return Number(value);
  return value as Hex;
}

/** The EIP-712 message inside an envelope a buyer received: what a buyer or auditor verifies and compares. */
export function usageReceiptFromEnvelope(envelope: ReceiptEnvelope): UsageReceipt {
  const wire = envelope.receipt;
  return Object.fromEntries(usageReceiptTypes.UsageReceipt.map(({ name, type }) => [name, fromWire(type, wire[name])])) as UsageReceipt;
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
