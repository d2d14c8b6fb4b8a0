/**
 * A buyer's receipts reconciled with what the chain settled, trusting neither the gateway nor the oracle.
 * Each receipt's hash is recomputed from its fields and its EIP-712 signature recovered under the
 * deployment's domain; each is matched by (signer, sequence) to the record the chain settled and compared
 * field by field, priced at the batch's epoch; its Merkle proof is checked against the batch's on-chain
 * content root. The other way round, every on-chain record charged to the buyer that no receipt matches is
 * named. Where the call's bytes were kept, the content hash is recomputed and the tokens recounted (the
 * counting is the caller's: the gateway's tokenizer is Node-only, so it comes in as `recount`).
 *
 * Every disagreement is a finding with a code, where it is (signer, sequence, row, transaction, batch) and
 * what was expected and found; nothing throws for a bad receipt. Browser-safe (viem only), so the web app
 * runs the same audit. The batches come from the chain auditor (`auditSettlements`), any version that
 * yields `AuditedBatch`.
 */
import { concat, getAddress, keccak256, recoverTypedDataAddress, type Address, type Hash, type Hex } from "viem";
import { TOLLGATE_DOMAIN_NAME, TOLLGATE_DOMAIN_VERSION, usageReceiptTypes, type UsageReceipt } from "../../server/chain/eip712";
import { verifyMerkleProof } from "../../server/chain/merkle";
import { hashReceipt } from "../../server/chain/usage-batch";
import type { AuditedBatch, AuditedRecord } from "./settlements";
import type { ExportedReceipt, RetainedCall, UsageExport } from "./usage-export";

export type ReceiptFindingCode =
  /** The receipt's stated hash is not the EIP-712 hash of its fields. */
  | "receipt_hash_mismatch"
  /** The signature cannot be read, or recovers to someone other than the signer the receipt names. */
  | "receipt_bad_signature"
  /** The envelope names another chain or contract than the deployment audited. */
  | "receipt_wrong_domain"
  /** The receipt is for a buyer other than the export's. */
  | "receipt_wrong_buyer"
  /** The same receipt appears more than once in the export. */
  | "receipt_duplicate"
  /** Two different receipts under one signer and sequence: the signer equivocated (both kept for a dispute). */
  | "receipt_equivocation"
  /** One call (the same salted content hash) receipted under more than one sequence: charged twice. */
  | "receipt_charged_twice"
  /** Not settled on-chain yet. Pending, unless the export claims it is settled. */
  | "receipt_unsettled"
  /** Below the signer's settled range, yet no settled record was found for it. */
  | "receipt_not_on_chain"
  /** A field differs from the record the chain settled under this sequence. */
  | "receipt_mismatch"
  /** Its Merkle proof does not lead to the batch's on-chain content root. */
  | "receipt_not_in_content_root"
  /** Settled, but the export carries no inclusion proof (the gateway has not recorded the settlement yet). */
  | "receipt_proof_missing"
  /** An on-chain record charged to this buyer, in the range the export covers, with no receipt in it. */
  | "record_without_receipt"
  /** The retained bytes do not hash to the receipt's content commitment. */
  | "content_hash_mismatch"
  /** The retained bytes hold a different number of tokens than the receipt charges. */
  | "token_count_mismatch"
  /** The retained bytes could not be recounted (not the request or response of a call). */
  | "content_unreadable";

/** A discrepancy fails the audit; a pending finding (not settled yet) only says to look again later. */
export type ReceiptFindingSeverity = "discrepancy" | "pending";

export interface ReceiptFindingLocation {
  signer: Address;
  sequence: bigint;
  /** Rows of the export involved (1-based); empty for a record without a receipt. */
  rows: number[];
  /** The settling transaction and its batch's first sequence, when the chain settled this sequence. */
  txHash?: Hash;
  batchFirstSequence?: bigint;
}

export interface ReceiptFinding {
  code: ReceiptFindingCode;
  severity: ReceiptFindingSeverity;
  message: string;
  where: ReceiptFindingLocation;
  /** For field disagreements: which field, the chain's (or recomputed) value, and the receipt's. */
  field?: string;
  expected?: string;
  found?: string;
  /** The receipts involved, kept whole: an equivocation's pair is what a dispute needs. */
  receipts?: ExportedReceipt[];
}

/** Tokens the gateway's own counting code finds in a call's bytes. */
export interface RecountedTokens {
  inputTokens: number;
  outputTokens: number;
}

/** Counts a retained call's tokens as the gateway would; throws if the bytes are not such a call. */
export type RecountTokens = (call: RetainedCall & { model: string; modelId: number }) => Promise<RecountedTokens>;

export interface ReconcileReceiptsParameters {
  usageExport: UsageExport;
  /** The chain's settled batches for the signers involved (all of them, from the deployment on). */
  batches: readonly AuditedBatch[];
  deployment: { chainId: number; tollgate: Address };
  /** Audit only this gateway key's receipts and records (default: every signer in the export). */
  signer?: Address;
  /** The buyer, when the export does not name one (an empty CSV). */
  buyer?: Address;
  /** Recount tokens of retained calls; without it only the content hash is checked. */
  recount?: RecountTokens;
  /** How far a recount may differ from the receipt, in basis points of the recount (default 0: exact). */
  tokenToleranceBps?: number;
  /** Narrows (or, for a CSV, states) the sequences the export covers, for records without receipt. */
  coverage?: { afterSequence?: bigint; throughSequence?: bigint };
  /** Called every `PROGRESS_EVERY` receipts checked: signature recovery takes a few milliseconds each. */
  onProgress?: (checked: number, total: number) => void;
}

export const PROGRESS_EVERY = 500;

export interface ReconcileReceiptsReturnType {
  /** Nothing disagrees with the chain. */
  agrees: boolean;
  /** Agrees, and every receipt is settled and proven. */
  complete: boolean;
  buyer?: Address;
  signers: Address[];
  findings: ReceiptFinding[];
  counts: {
    receipts: number;
    /** Receipts matched to a settled record (agreeing or not). */
    settled: number;
    unsettled: number;
    /** Receipts whose Merkle proof reached the on-chain content root. */
    proven: number;
    /** Receipts whose retained bytes were hashed (and recounted, when a recount was given). */
    contentChecked: number;
    /**
     * Output tokens charged as hidden reasoning: the upstream reported them, no retained bytes hold them, so
     * a recount cannot confirm them (the gap between recount and charge matched the reported reasoning).
     */
    unverifiableReasoningTokens: number;
    /** On-chain records of this buyer by these signers in the covered range. */
    onChainRecords: number;
  };
  /** Which on-chain records were expected to have a receipt, in words; `checked` false when none could be. */
  coverage: { checked: boolean; description: string };
}
export type ReconcileReceiptsErrorType = never;

type ChainRecord = { batch: AuditedBatch; record: AuditedRecord };

function keyOf(signer: Address, sequence: bigint): string {
  return `${signer.toLowerCase()}:${sequence}`;
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** keccak256(salt ‖ requestHash ‖ responseHash), as the gateway commits to content (viem only, browser-safe). */
function contentHashOf(salt: Hex, requestHash: Hex, responseHash: Hex): Hex {
  return keccak256(concat([salt, requestHash, responseHash]));
}

/** The receipt field each chain value is compared with, in the struct's order. */
function chainFields(record: AuditedRecord): [keyof UsageReceipt, string | number | bigint][] {
  return [
    ["buyer", record.buyer],
    ["modelId", record.modelId],
    ["inputTokens", record.inputTokens],
    ["cachedInputTokens", record.cachedInputTokens],
    ["outputTokens", record.outputTokens],
    ["servedAt", record.servedAt],
    ["inputPrice", record.epoch.input],
    ["cachedInputPrice", record.epoch.cachedInput],
    ["outputPrice", record.epoch.output],
    ["cost", record.cost],
  ];
}

function equalValue(a: unknown, b: unknown): boolean {
  return typeof a === "string" && typeof b === "string" ? sameAddress(a, b) : String(a) === String(b);
}

/** Within `bps` basis points of `reference`; integers only. */
function withinTolerance(charged: number, reference: number, bps: number): boolean {
  const diff = BigInt(Math.abs(charged - reference));
  return diff * 10_000n <= BigInt(reference) * BigInt(bps);
}

interface CheckedReceipt {
  exported: ExportedReceipt;
  hash: Hex;
  /** The signature recovers to the signer the receipt names, under this deployment's domain. */
  signedBySigner: boolean;
}

export async function reconcileReceipts(parameters: ReconcileReceiptsParameters): Promise<ReconcileReceiptsReturnType> {
  const { usageExport, deployment, recount } = parameters;
  const tolerance = parameters.tokenToleranceBps ?? 0;
  const onlySigner = parameters.signer && getAddress(parameters.signer);
  const buyer = usageExport.buyer ?? (parameters.buyer && getAddress(parameters.buyer));
  const findings: ReceiptFinding[] = [];
  const add = (finding: Omit<ReceiptFinding, "severity"> & { severity?: ReceiptFindingSeverity }) =>
    findings.push({ severity: "discrepancy", ...finding });
  const domain = { name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, chainId: deployment.chainId, verifyingContract: deployment.tollgate };

  const inScope = usageExport.receipts.filter((r) => !onlySigner || sameAddress(r.signer, onlySigner));
  const signers = onlySigner ? [onlySigner] : [...new Set(inScope.map((r) => getAddress(r.signer)))];

  // 1. Each receipt on its own: hash, domain, signature, buyer.
  const checked: CheckedReceipt[] = [];
  for (const exported of inScope) {
    const { receipt, signer, row } = exported;
    const where = { signer, sequence: receipt.sequence, rows: [row] };
    const hash = hashReceipt(receipt);
    if (hash !== exported.receiptHash.toLowerCase()) {
      add({ code: "receipt_hash_mismatch", message: "the receipt's stated hash is not the hash of its fields", where, field: "receiptHash", expected: hash, found: exported.receiptHash });
    }
    const d = exported.domain;
    if (d && (d.name !== domain.name || d.version !== domain.version || d.chainId !== domain.chainId || !sameAddress(d.verifyingContract, domain.verifyingContract))) {
      add({
        code: "receipt_wrong_domain",
        message: `the receipt is signed for chain ${d.chainId} and contract ${d.verifyingContract}, not this deployment`,
        where,
        field: "domain",
        expected: `${domain.chainId}:${domain.verifyingContract}`,
        found: `${d.chainId}:${d.verifyingContract}`,
      });
    }
    let recovered: Address | undefined;
    try {
      recovered = await recoverTypedDataAddress({ domain, types: usageReceiptTypes, primaryType: "UsageReceipt", message: receipt, signature: exported.signature });
    } catch {
      add({ code: "receipt_bad_signature", message: "the receipt's signature cannot be read", where, field: "signature", expected: signer, found: exported.signature });
    }
    if (recovered && !sameAddress(recovered, signer)) {
      add({ code: "receipt_bad_signature", message: `the signature recovers to ${recovered}, not to the signer the receipt names`, where, field: "signer", expected: signer, found: recovered });
    }
    if (buyer && !sameAddress(receipt.buyer, buyer)) {
      add({ code: "receipt_wrong_buyer", message: `the receipt is for ${receipt.buyer}, not for the export's buyer`, where, field: "buyer", expected: buyer, found: receipt.buyer });
    }
    checked.push({ exported, hash, signedBySigner: recovered !== undefined && sameAddress(recovered, signer) });
    if (checked.length % PROGRESS_EVERY === 0) parameters.onProgress?.(checked.length, inScope.length);
  }

  // 2. The receipts against each other: one per sequence, one sequence per call.
  const bySequence = new Map<string, CheckedReceipt[]>();
  for (const c of checked) {
    const key = keyOf(c.exported.signer, c.exported.receipt.sequence);
    bySequence.set(key, [...(bySequence.get(key) ?? []), c]);
  }
  const distinct: CheckedReceipt[] = [];
  for (const group of bySequence.values()) {
    const unique = [...new Map(group.map((c) => [`${c.hash}:${c.exported.signature.toLowerCase()}`, c])).values()];
    distinct.push(...unique);
    if (group.length === 1) continue;
    const { signer, receipt } = group[0].exported;
    const where = { signer, sequence: receipt.sequence, rows: group.map((c) => c.exported.row) };
    if (unique.length === 1) {
      add({ code: "receipt_duplicate", message: `the same receipt appears ${group.length} times (rows ${where.rows.join(", ")})`, where });
    } else {
      const signed = unique.filter((c) => c.signedBySigner).length;
      add({
        code: "receipt_equivocation",
        message: `${unique.length} different receipts under one sequence (rows ${where.rows.join(", ")}), ${signed} of them validly signed by ${signer}`,
        where,
        receipts: unique.map((c) => c.exported),
      });
    }
  }
  const byContent = new Map<Hex, CheckedReceipt[]>();
  for (const c of distinct) {
    const content = c.exported.receipt.contentHash.toLowerCase() as Hex;
    byContent.set(content, [...(byContent.get(content) ?? []), c]);
  }
  for (const [contentHash, group] of byContent) {
    const sequences = [...new Set(group.map((c) => keyOf(c.exported.signer, c.exported.receipt.sequence)))];
    if (sequences.length < 2) continue;
    const first = group[0].exported;
    add({
      code: "receipt_charged_twice",
      message: `one call (content hash ${contentHash}, fresh-salted per call) is receipted under sequences ${group.map((c) => c.exported.receipt.sequence).join(", ")}`,
      where: { signer: first.signer, sequence: first.receipt.sequence, rows: group.map((c) => c.exported.row) },
      receipts: group.map((c) => c.exported),
    });
  }

  // 3. Against the chain: the record settled under the same (signer, sequence), and the batch's root.
  const chain = new Map<string, ChainRecord>();
  const settledThrough = new Map<string, bigint>();
  for (const batch of parameters.batches) {
    for (const record of batch.records) chain.set(keyOf(batch.signer, record.sequence), { batch, record });
    const signer = batch.signer.toLowerCase();
    const end = batch.firstSequence + batch.recordCount;
    if (end > (settledThrough.get(signer) ?? 0n)) settledThrough.set(signer, end);
  }
  let settled = 0;
  let unsettled = 0;
  let proven = 0;
  for (const c of distinct) {
    const { exported, hash } = c;
    const { signer, receipt, row, settlement } = exported;
    const found = chain.get(keyOf(signer, receipt.sequence));
    if (!found) {
      unsettled++;
      const next = settledThrough.get(signer.toLowerCase()) ?? 0n;
      const where = { signer, sequence: receipt.sequence, rows: [row] };
      if (receipt.sequence < next) {
        add({ code: "receipt_not_on_chain", message: `the chain has settled ${signer}'s sequences below ${next}, but no settled record for this one was found (was a batch's calldata unreadable?)`, where });
      } else if (exported.status === "settled" || settlement) {
        add({
          code: "receipt_unsettled",
          message: `the export says it is settled${settlement ? ` (tx ${settlement.txHash})` : ""}, but the chain has settled ${signer}'s sequences only below ${next}`,
          where,
          field: "status",
          expected: "unsettled",
          found: "settled",
        });
      } else {
        add({ code: "receipt_unsettled", severity: "pending", message: `not settled yet: the chain has settled ${signer}'s sequences below ${next}`, where });
      }
      continue;
    }
    settled++;
    const { batch, record } = found;
    const where = { signer, sequence: receipt.sequence, rows: [row], txHash: batch.txHash, batchFirstSequence: batch.firstSequence };
    for (const [field, expected] of chainFields(record)) {
      const value = receipt[field];
      if (!equalValue(expected, value)) {
        add({ code: "receipt_mismatch", message: `${field}: the chain settled ${expected}, the receipt says ${value}`, where, field, expected: String(expected), found: String(value) });
      }
    }
    if (settlement) {
      const claims: [string, unknown, unknown][] = [
        ["settlement.txHash", batch.txHash, settlement.txHash],
        ["settlement.batchId", batch.commitment, settlement.batchId],
        ["settlement.firstSequence", batch.firstSequence, settlement.firstSequence],
        ["settlement.contentRoot", batch.contentRoot, settlement.contentRoot],
      ];
      for (const [field, expected, value] of claims) {
        if (value !== null && !equalValue(String(expected), String(value))) {
          add({ code: "receipt_mismatch", message: `${field}: the chain has ${String(expected)}, the export says ${String(value)}`, where, field, expected: String(expected), found: String(value) });
        }
      }
    }
    if (!settlement || settlement.proof === null) {
      add({
        code: "receipt_proof_missing",
        severity: "pending",
        message: "settled on-chain, but the export carries no inclusion proof yet (the gateway records settlements after the oracle confirms them); export again later",
        where,
      });
    } else if (verifyMerkleProof(batch.contentRoot, hash, settlement.proof)) {
      proven++;
    } else {
      add({
        code: "receipt_not_in_content_root",
        message: `the receipt's hash with its ${settlement.proof.length}-step proof does not lead to the batch's content root`,
        where,
        field: "contentRoot",
        expected: batch.contentRoot,
        found: hash,
      });
    }
  }

  // 4. The retained bytes: the content commitment, then the tokens.
  let contentChecked = 0;
  let unverifiableReasoningTokens = 0;
  for (const { exported } of distinct) {
    const { retained, content, receipt, signer, row } = exported;
    if (!retained) continue;
    contentChecked++;
    const where = { signer, sequence: receipt.sequence, rows: [row], ...chainWhere(chain.get(keyOf(signer, receipt.sequence))) };
    const requestHash = keccak256(retained.request);
    const responseHash = keccak256(retained.response);
    if (content) {
      for (const [field, expected, value] of [["requestHash", requestHash, content.requestHash], ["responseHash", responseHash, content.responseHash]] as const) {
        if (expected !== value.toLowerCase()) {
          add({ code: "content_hash_mismatch", message: `the retained ${field === "requestHash" ? "request" : "response"} bytes hash to ${expected}, the receipt's commitment names ${value}`, where, field, expected, found: value });
        }
      }
      const contentHash = contentHashOf(content.salt, requestHash, responseHash);
      if (contentHash !== receipt.contentHash.toLowerCase()) {
        add({ code: "content_hash_mismatch", message: "the retained bytes with the receipt's salt do not hash to its content hash", where, field: "contentHash", expected: contentHash, found: receipt.contentHash });
      }
    }
    if (!recount) continue;
    let counted: RecountedTokens;
    try {
      counted = await recount({ ...retained, model: exported.model, modelId: receipt.modelId });
    } catch (error) {
      add({ code: "content_unreadable", message: `the retained bytes cannot be recounted: ${(error as Error).message}`, where });
      continue;
    }
    // A model that reasons without showing it charges for output no bytes hold: the reported reasoning
    // tokens explain such a gap exactly, or nothing does.
    const hidden = exported.reasoningTokens;
    const hiddenReasoning =
      hidden > 0 && !withinTolerance(receipt.outputTokens, counted.outputTokens, tolerance) && withinTolerance(receipt.outputTokens - hidden, counted.outputTokens, tolerance);
    if (hiddenReasoning) unverifiableReasoningTokens += hidden;
    for (const [field, recounted, charged] of [
      ["inputTokens", counted.inputTokens, receipt.inputTokens],
      ["outputTokens", counted.outputTokens, hiddenReasoning ? receipt.outputTokens - hidden : receipt.outputTokens],
    ] as const) {
      if (!withinTolerance(charged, recounted, tolerance)) {
        add({
          code: "token_count_mismatch",
          message: `${field}: the bytes hold ${recounted} by the model's tokenizer, the receipt charges ${charged} (counted by the ${exported.countSource})`,
          where,
          field,
          expected: String(recounted),
          found: String(charged),
        });
      }
    }
  }

  // 5. The other way: the buyer's on-chain records that no receipt in the export matches.
  const coverage = coverageOf(usageExport, parameters.coverage, inScope);
  let onChainRecords = 0;
  if (buyer && coverage.checked) {
    for (const batch of parameters.batches) {
      if (!signers.some((s) => sameAddress(s, batch.signer))) continue;
      const lastInFile = coverage.throughLastRow ? coverage.lastSequence.get(batch.signer.toLowerCase()) : undefined;
      for (const record of batch.records) {
        if (!sameAddress(record.buyer, buyer) || !coverage.includes(record, lastInFile)) continue;
        onChainRecords++;
        if (bySequence.has(keyOf(batch.signer, record.sequence))) continue;
        add({
          code: "record_without_receipt",
          message: `the chain charged this buyer ${record.cost} (token base units) for ${record.inputTokens} input (${record.cachedInputTokens} cached) and ${record.outputTokens} output tokens of model ${record.modelId}, served at ${record.servedAt}; the export has no receipt for it`,
          where: { signer: batch.signer, sequence: record.sequence, rows: [], txHash: batch.txHash, batchFirstSequence: batch.firstSequence },
          expected: "a receipt",
          found: "none",
        });
      }
    }
  }

  findings.sort((a, b) => (a.where.signer === b.where.signer ? (a.where.sequence < b.where.sequence ? -1 : a.where.sequence > b.where.sequence ? 1 : 0) : a.where.signer < b.where.signer ? -1 : 1));
  const agrees = findings.every((f) => f.severity !== "discrepancy");
  return {
    agrees,
    complete: agrees && findings.length === 0,
    buyer,
    signers,
    findings,
    counts: { receipts: inScope.length, settled, unsettled, proven, contentChecked, unverifiableReasoningTokens, onChainRecords },
    coverage: { checked: coverage.checked && buyer !== undefined, description: buyer ? coverage.description : "no buyer: the export names none and none was given" },
  };
}

function chainWhere(found: ChainRecord | undefined): { txHash?: Hash; batchFirstSequence?: bigint } {
  return found ? { txHash: found.batch.txHash, batchFirstSequence: found.batch.firstSequence } : {};
}

/**
 * Which on-chain records of the buyer the export should hold a receipt for: its own filters where the chain
 * can apply them (sequence, serving time, model), everything when it was not filtered, and nothing when it
 * was filtered by API key or tag, which the chain does not know.
 */
function coverageOf(usageExport: UsageExport, override: ReconcileReceiptsParameters["coverage"], receipts: readonly ExportedReceipt[]) {
  const filters = usageExport.filters;
  const lastSequence = new Map<string, bigint>();
  for (const r of receipts) {
    const signer = r.signer.toLowerCase();
    if (r.receipt.sequence > (lastSequence.get(signer) ?? -1n)) lastSequence.set(signer, r.receipt.sequence);
  }
  const after = override?.afterSequence ?? filters?.after ?? null;
  const through = override?.throughSequence ?? null;
  const modelIds = filters?.model ? new Set(receipts.filter((r) => r.model === filters.model).map((r) => r.receipt.modelId)) : null;
  const parts: string[] = [];
  if (after !== null) parts.push(`sequences after ${after}`);
  if (through !== null) parts.push(`sequences through ${through}`);
  if (usageExport.hasMore) parts.push("up to the export's last row (the gateway had more)");
  if (filters?.from != null) parts.push(`served from ${filters.from}`);
  if (filters?.to != null) parts.push(`served before ${filters.to}`);
  if (filters?.model) parts.push(`model ${filters.model}`);
  const unknowable = filters?.keyId ? "API key" : filters?.tag ? "tag" : filters?.model && modelIds?.size === 0 ? "a model it holds no receipt of" : null;
  return {
    checked: unknowable === null,
    throughLastRow: usageExport.hasMore,
    lastSequence,
    description:
      unknowable !== null
        ? `not checked: the export was filtered by ${unknowable}, which the chain cannot apply`
        : `every on-chain record of the buyer by the audited signers${parts.length > 0 ? `, ${parts.join(", ")}` : ""}`,
    includes(record: AuditedRecord, lastInFile: bigint | undefined): boolean {
      if (after !== null && record.sequence <= after) return false;
      if (through !== null && record.sequence > through) return false;
      if (usageExport.hasMore && (lastInFile === undefined || record.sequence > lastInFile)) return false;
      if (filters?.from != null && record.servedAt < filters.from) return false;
      if (filters?.to != null && record.servedAt >= filters.to) return false;
      if (modelIds && !modelIds.has(record.modelId)) return false;
      return true;
    },
  };
}
