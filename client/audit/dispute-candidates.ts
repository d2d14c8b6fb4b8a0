/**
 * The seam for disputes: from a reconciliation's findings, the ones a contract could be shown, each with
 * the material a proof needs. A receipt validly signed by a gateway key that disagrees with what the chain
 * settled under its sequence (or two such receipts for one sequence) is evidence against that key; the
 * batch it was settled in is named by its header (the sections as hashes, as `verifyReceiptSettled` takes
 * it) and, where the auditor kept them, the sections themselves. Submitting a dispute is not done here.
 */
import type { Address, Hash, Hex } from "viem";
import type { UsageReceipt } from "../../server/chain/eip712";
import type { ReceiptFinding, ReconcileReceiptsReturnType } from "./receipt-reconciliation";
import type { AuditedBatch, UsageBatchHeader } from "./settlements";
import type { UsageExport } from "./usage-export";

export interface DisputeCandidate {
  /** The finding that makes this a candidate. */
  reason: Extract<ReceiptFinding["code"], "receipt_mismatch" | "receipt_not_in_content_root" | "receipt_equivocation">;
  message: string;
  signer: Address;
  sequence: bigint;
  /** The signed receipt(s): one that disagrees with the chain, or an equivocating pair. */
  receipts: { receipt: UsageReceipt; receiptHash: Hex; signature: Hex; row: number }[];
  /** The batch that settled this sequence, if the chain settled it. */
  batch?: {
    txHash: Hash;
    firstSequence: bigint;
    commitment: Hash;
    header: UsageBatchHeader;
    /** The packed sections as settled: a proof about a record carries them. */
    sections: { buyers: Hex; models: Hex; records: Hex };
  };
  /** The Merkle proof the export gave for the receipt, if any. */
  proof: Hex[] | null;
}

const DISPUTABLE = new Set<ReceiptFinding["code"]>(["receipt_mismatch", "receipt_not_in_content_root", "receipt_equivocation"]);

/**
 * One candidate per (signer, sequence) with a disputable finding whose receipts the signer validly signed.
 * `receipt_mismatch` findings about the export's settlement claims (`settlement.*`) are the gateway's
 * bookkeeping, not signed evidence, and are left out.
 */
export function disputeCandidates(reconciliation: ReconcileReceiptsReturnType, usageExport: UsageExport, batches: readonly AuditedBatch[]): DisputeCandidate[] {
  const byRow = new Map(usageExport.receipts.map((r) => [r.row, r]));
  const unsigned = new Set(
    reconciliation.findings
      .filter((f) => f.code === "receipt_bad_signature" || f.code === "receipt_hash_mismatch" || f.code === "receipt_wrong_domain")
      .flatMap((f) => f.where.rows),
  );
  const batchOf = (signer: Address, firstSequence: bigint | undefined) =>
    firstSequence === undefined ? undefined : batches.find((b) => b.signer.toLowerCase() === signer.toLowerCase() && b.firstSequence === firstSequence);
  const candidates = new Map<string, DisputeCandidate>();
  for (const finding of reconciliation.findings) {
    if (!DISPUTABLE.has(finding.code) || finding.field?.startsWith("settlement.")) continue;
    const key = `${finding.where.signer}:${finding.where.sequence}`;
    if (candidates.has(key)) continue;
    const receipts = (finding.receipts ?? finding.where.rows.map((row) => byRow.get(row)!)).filter((r) => r && !unsigned.has(r.row));
    if (receipts.length < (finding.code === "receipt_equivocation" ? 2 : 1)) continue;
    const batch = batchOf(finding.where.signer, finding.where.batchFirstSequence);
    candidates.set(key, {
      reason: finding.code as DisputeCandidate["reason"],
      message: finding.message,
      signer: finding.where.signer,
      sequence: finding.where.sequence,
      receipts: receipts.map((r) => ({ receipt: r.receipt, receiptHash: r.receiptHash, signature: r.signature, row: r.row })),
      batch: batch && { txHash: batch.txHash, firstSequence: batch.firstSequence, commitment: batch.commitment, header: batch.header, sections: batch.sections },
      proof: receipts[0].settlement?.proof ?? null,
    });
  }
  return [...candidates.values()];
}
