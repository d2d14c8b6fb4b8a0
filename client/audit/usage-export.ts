/**
 * The gateway's usage export (`GET /v1/usage`, JSON or CSV) parsed into the receipts a buyer holds, each
 * with what the export says of its settlement and, when retained, the call's bytes. Every value is checked
 * with zod on the way in; a bad value stops the parse with an error naming the row and the field, because
 * an audit over a half-read file would report discrepancies that are not there.
 *
 * Browser-safe (viem and zod only): the web app audits a file the buyer drops in the same way.
 */
import { getAddress, isAddress, type Address, type Hex } from "viem";
import { z } from "zod";
import { USAGE_RECEIPT_FIELDS, type UsageReceipt } from "../../server/chain/eip712";
import { TollgateClientError } from "../errors";

/** A receipt as the export carries it, with the row it came from. */
export interface ExportedReceipt {
  /** 1-based data row in the file (for CSV, the header is line 1, so row n is line n + 1). */
  row: number;
  signer: Address;
  receipt: UsageReceipt;
  /** As the export states it; the audit recomputes it from `receipt`. */
  receiptHash: Hex;
  signature: Hex;
  /** The EIP-712 domain the envelope names (JSON only; CSV rows are read under the deployment's domain). */
  domain?: { name: string; version: string; chainId: number; verifyingContract: Address };
  /** The commitment behind `receipt.contentHash` (CSV exports from before these columns lack it). */
  content?: { salt: Hex; requestHash: Hex; responseHash: Hex };
  model: string;
  countSource: "upstream" | "gateway";
  /**
   * Reasoning tokens the upstream reported inside `outputTokens` (not signed: the gateway's word). A model
   * that does not show its reasoning charges for tokens no retained bytes hold.
   */
  reasoningTokens: number;
  status: "settled" | "unsettled";
  /** What the gateway recorded of the record's settlement; null while it has recorded none. */
  settlement: ExportedSettlement | null;
  /** The call's exact bytes, when the gateway retained them and the export asked for them. */
  retained?: RetainedCall;
}

export interface ExportedSettlement {
  txHash: Hex;
  /** The batch's on-chain commitment, as the oracle recorded it. */
  batchId: Hex;
  /** The batch's first sequence, content root and the receipt's Merkle proof; null if the gateway gave none. */
  firstSequence: bigint | null;
  contentRoot: Hex | null;
  proof: Hex[] | null;
}

export interface RetainedCall {
  request: Uint8Array;
  response: Uint8Array;
  /** The model's tokenizer as the gateway names it (e.g. o200k_base); null if the gateway no longer serves it. */
  encoding: string | null;
  endpoint: "chat.completions" | "embeddings";
  streamed: boolean;
}

/** The filters the export was made with (JSON only): which on-chain records it should cover. */
export interface ExportFilters {
  keyId: string | null;
  tag: string | null;
  model: string | null;
  from: number | null;
  to: number | null;
  after: bigint | null;
}

export interface UsageExport {
  format: "json" | "csv";
  /** The buyer the export is of (JSON: stated; CSV: the rows' buyer). Undefined for an empty CSV. */
  buyer?: Address;
  /** True when the gateway had more rows than it returned: on-chain records past the last row are not covered. */
  hasMore: boolean;
  /** Null when the export does not say (CSV). */
  filters: ExportFilters | null;
  receipts: ExportedReceipt[];
}

/** The file cannot be read as a usage export; the message names the row and field. */
export class UsageExportError extends TollgateClientError {
  override name = "UsageExportError";
  constructor(message: string, hint = "export the file again with `GET /v1/usage` (or `format=csv`) from the gateway, and do not edit it") {
    super(message, { hint });
  }
}

// ---------------------------------------------------------------------------------------------
// Wire values

const uintText = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const text = String(value);
  if (!/^\d{1,78}$/.test(text)) {
    ctx.addIssue({ code: "custom", message: `expected a non-negative integer, got "${text}"` });
    return z.NEVER;
  }
  return BigInt(text);
});
const uint32 = uintText.pipe(z.bigint().max(2n ** 32n - 1n, "exceeds uint32")).transform(Number);
const uint64 = uintText.pipe(z.bigint().max(2n ** 64n - 1n, "exceeds uint64"));
const uint72 = uintText.pipe(z.bigint().max(2n ** 72n - 1n, "exceeds uint72"));
const uint256 = uintText.pipe(z.bigint().max(2n ** 256n - 1n, "exceeds uint256"));
const hash = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "expected 32 bytes as 0x-prefixed hex").transform((value) => value.toLowerCase() as Hex);
const signature = z.string().regex(/^0x[0-9a-fA-F]{130}$/, "expected a 65-byte signature as 0x-prefixed hex").transform((value) => value as Hex);
const address = z
  .string()
  .refine((value) => isAddress(value, { strict: false }), "expected an address")
  .transform((value) => getAddress(value));
const base64 = z
  .string()
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, "expected base64")
  .transform((value) => Uint8Array.from(atob(value), (char) => char.charCodeAt(0)));

/** The receipt's fields by their EIP-712 names; the schema per field comes from its type in the table. */
const receiptSchema = z.object({
  sequence: uint64,
  buyer: address,
  modelId: uint32,
  inputTokens: uint32,
  cachedInputTokens: uint32,
  outputTokens: uint32,
  servedAt: uint32,
  inputPrice: uint72,
  cachedInputPrice: uint72,
  outputPrice: uint72,
  cost: uint256,
  contentHash: hash,
} satisfies { [K in (typeof USAGE_RECEIPT_FIELDS)[number]]: z.ZodType<UsageReceipt[K], unknown> });

const settlementSchema = z.object({
  txHash: hash,
  batchId: hash,
  firstSequence: uint64.nullish().transform((value) => value ?? null),
  contentRoot: hash.nullish().transform((value) => value ?? null),
  proof: z.array(hash).nullish().transform((value) => value ?? null),
});

const jsonRowSchema = z.object({
  status: z.enum(["settled", "unsettled"]),
  settlement: settlementSchema.nullable(),
  receipt: z.object({
    domain: z.object({ name: z.string(), version: z.string(), chainId: z.number().int(), verifyingContract: address }),
    signer: address,
    receipt: receiptSchema,
    receiptHash: hash,
    signature,
    content: z.object({ salt: hash, requestHash: hash, responseHash: hash }),
    model: z.string(),
    reasoningTokens: z.number().int().nonnegative(),
    countSource: z.enum(["upstream", "gateway"]),
  }),
  retained_content: z
    .object({
      request: base64,
      response: base64,
      encoding: z.string().nullable(),
      endpoint: z.enum(["chat.completions", "embeddings"]),
      streamed: z.boolean(),
    })
    .nullish(),
});

const jsonExportSchema = z.object({
  object: z.literal("list"),
  buyer: address,
  has_more: z.boolean(),
  filters: z
    .object({
      key_id: z.string().nullable(),
      tag: z.string().nullable(),
      model: z.string().nullable(),
      from: z.number().int().nullable(),
      to: z.number().int().nullable(),
      after: uint64.nullable(),
    })
    .optional(),
  data: z.array(z.unknown()),
});

function issueText(issue: z.core.$ZodIssue): string {
  const field = issue.path.map(String).join(".");
  return `${field ? `field "${field}"` : "the row"}: ${issue.message}`;
}

// ---------------------------------------------------------------------------------------------
// JSON

function parseJsonExport(value: unknown): UsageExport {
  const top = jsonExportSchema.safeParse(value);
  if (!top.success) throw new UsageExportError(`not a usage export: ${issueText(top.error.issues[0])}`);
  const receipts = top.data.data.map((raw, i): ExportedReceipt => {
    const parsed = jsonRowSchema.safeParse(raw);
    if (!parsed.success) throw new UsageExportError(`row ${i + 1}, ${issueText(parsed.error.issues[0])}`);
    const { receipt: envelope, settlement, status, retained_content: retained } = parsed.data;
    return {
      row: i + 1,
      signer: envelope.signer,
      receipt: envelope.receipt,
      receiptHash: envelope.receiptHash,
      signature: envelope.signature,
      domain: envelope.domain,
      content: envelope.content,
      model: envelope.model,
      countSource: envelope.countSource,
      reasoningTokens: envelope.reasoningTokens,
      status,
      settlement,
      retained: retained ?? undefined,
    };
  });
  const f = top.data.filters;
  return {
    format: "json",
    buyer: top.data.buyer,
    hasMore: top.data.has_more,
    filters: f ? { keyId: f.key_id, tag: f.tag, model: f.model, from: f.from, to: f.to, after: f.after } : null,
    receipts,
  };
}

// ---------------------------------------------------------------------------------------------
// CSV

/** RFC 4180 rows: quoted cells may hold commas, doubled quotes and line breaks. */
function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      row.push(cell);
      cell = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += char;
  }
  if (quoted) throw new UsageExportError(`the CSV ends inside a quoted cell (row ${rows.length})`);
  if (cell !== "" || row.length > 0) rows.push([...row, cell]);
  return rows.filter((r) => !(r.length === 1 && r[0] === ""));
}

/** The gateway prefixes cells that a spreadsheet would run as a formula with `'`; this takes it off again. */
function undefuse(cell: string): string {
  return /^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
}

const CSV_REQUIRED = [
  "sequence", "served_at", "model", "model_id", "input_tokens", "cached_input_tokens", "output_tokens", "input_price", "cached_input_price",
  "output_price", "cost", "reasoning_tokens", "count_source", "status", "settlement_tx", "content_hash", "receipt_hash", "signature", "buyer", "signer",
] as const;

const csvRowSchema = z.object({
  sequence: uint64,
  served_at: uint32,
  model: z.string(),
  model_id: uint32,
  input_tokens: uint32,
  cached_input_tokens: uint32,
  output_tokens: uint32,
  reasoning_tokens: uint32,
  input_price: uint72,
  cached_input_price: uint72,
  output_price: uint72,
  cost: uint256,
  count_source: z.enum(["upstream", "gateway"]),
  status: z.enum(["settled", "unsettled"]),
  settlement_tx: z.union([z.literal(""), hash]),
  content_hash: hash,
  receipt_hash: hash,
  signature,
  buyer: address,
  signer: address,
  content_salt: z.union([z.literal(""), hash]).optional(),
  request_hash: z.union([z.literal(""), hash]).optional(),
  response_hash: z.union([z.literal(""), hash]).optional(),
  settlement_batch: z.union([z.literal(""), hash]).optional(),
  batch_first_sequence: z.union([z.literal(""), uint64]).optional(),
  content_root: z.union([z.literal(""), hash]).optional(),
  merkle_proof: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === "") return [] as Hex[];
      const parts = value.split(" ");
      const bad = parts.find((part) => !/^0x[0-9a-fA-F]{64}$/.test(part));
      if (bad !== undefined) {
        ctx.addIssue({ code: "custom", message: `expected space-separated 32-byte hashes, got "${bad}"` });
        return z.NEVER;
      }
      return parts.map((part) => part.toLowerCase() as Hex);
    }),
});

function parseCsvExport(text: string): UsageExport {
  const [header, ...rows] = csvRows(text);
  if (!header) throw new UsageExportError("the CSV is empty: it has no header row");
  const missing = CSV_REQUIRED.filter((name) => !header.includes(name));
  if (missing.length > 0) {
    throw new UsageExportError(
      `the CSV lacks the column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
      "export it again from a gateway that writes them (`GET /v1/usage?format=csv`), or use the JSON export",
    );
  }
  const receipts = rows.map((cells, i): ExportedReceipt => {
    const row = i + 1;
    if (cells.length !== header.length) throw new UsageExportError(`row ${row} (line ${row + 1}) has ${cells.length} cells, the header ${header.length}`);
    const raw = Object.fromEntries(header.map((name, c) => [name, undefuse(cells[c])]));
    const parsed = csvRowSchema.safeParse(raw);
    if (!parsed.success) throw new UsageExportError(`row ${row} (line ${row + 1}), ${issueText(parsed.error.issues[0])}`);
    const r = parsed.data;
    const content = r.content_salt && r.request_hash && r.response_hash ? { salt: r.content_salt, requestHash: r.request_hash, responseHash: r.response_hash } : undefined;
    return {
      row,
      signer: r.signer,
      receipt: {
        sequence: r.sequence,
        buyer: r.buyer,
        modelId: r.model_id,
        inputTokens: r.input_tokens,
        cachedInputTokens: r.cached_input_tokens,
        outputTokens: r.output_tokens,
        servedAt: r.served_at,
        inputPrice: r.input_price,
        cachedInputPrice: r.cached_input_price,
        outputPrice: r.output_price,
        cost: r.cost,
        contentHash: r.content_hash,
      },
      receiptHash: r.receipt_hash,
      signature: r.signature,
      content,
      model: r.model,
      countSource: r.count_source,
      reasoningTokens: r.reasoning_tokens,
      status: r.status,
      settlement:
        r.settlement_tx && r.settlement_batch
          ? {
              txHash: r.settlement_tx,
              batchId: r.settlement_batch,
              firstSequence: r.batch_first_sequence === "" || r.batch_first_sequence === undefined ? null : r.batch_first_sequence,
              contentRoot: r.content_root || null,
              proof: r.batch_first_sequence === "" || r.batch_first_sequence === undefined ? null : r.merkle_proof,
            }
          : null,
    };
  });
  const buyers = [...new Set(receipts.map((r) => r.receipt.buyer))];
  if (buyers.length > 1) throw new UsageExportError(`the CSV holds receipts of ${buyers.length} buyers (${buyers.join(", ")}); an export is one buyer's`);
  return { format: "csv", buyer: buyers[0], hasMore: false, filters: null, receipts };
}

/** Parses an export as the gateway wrote it: JSON if it reads as JSON, CSV otherwise. */
export function parseUsageExport(text: string): UsageExport {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{")) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      throw new UsageExportError(`the file starts like JSON but is not valid JSON (${(error as Error).message})`);
    }
    return parseJsonExport(value);
  }
  return parseCsvExport(text);
}
