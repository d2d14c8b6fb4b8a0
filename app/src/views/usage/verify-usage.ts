/**
 * Each usage row's receipt verified against the chain, in the browser, trusting neither the gateway nor the
 * oracle: the client's receipt reconciliation (client/audit/receipt-reconciliation.ts) recomputes the hash,
 * recovers the EIP-712 signature, finds the record the chain settled under the signer's sequence in the
 * batches rebuilt from chain data (`loadChainHistory` and `auditChain`), compares every settled figure with the receipt's and
 * checks the Merkle proof against the batch's on-chain content root. A settled record needs no more: the chain
 * audit already checked its batch's signer was authorized when it settled. A receipt not settled yet is asked
 * of `verifyReceipt`, whose signer must be authorized now for the model's provider, so a receipt from a key no
 * provider owns is a mismatch at once rather than "pending". On top, the figures the gateway lists in the row
 * must be the ones it signed. The verdict per row: verified, a mismatch naming the field, or pending settlement.
 */
import type { Address, Hash } from "viem";
import { auditChain, loadChainHistory, parseUsageExport, reconcileReceipts, rpcStateReader, verifyReceipt, type AuditedBatch, type TollgateClient } from "../../../../client";
import type { ShownUsage, ShownUsageRow } from "./usage-rows";

export type RowVerdict =
  | { outcome: "verified"; txHash: Hash; batchFirstSequence: bigint }
  | { outcome: "mismatch"; field: string; message: string }
  | { outcome: "pending"; message: string };

/** The gateway's listed figures next to the signed receipt's: a row may not say other than what was signed. */
function listedAgainstSigned(row: ShownUsageRow): { field: string; message: string } | undefined {
  const receipt = row.receipt?.receipt;
  if (!receipt) return { field: "receipt", message: "the gateway sent no signed receipt for this call" };
  const pairs: [string, unknown, unknown][] = [
    ["sequence", row.sequence, receipt.sequence],
    ["cost", row.cost, receipt.cost],
    ["inputTokens", row.input_tokens, receipt.inputTokens],
    ["cachedInputTokens", row.cached_input_tokens, receipt.cachedInputTokens],
    ["outputTokens", row.output_tokens, receipt.outputTokens],
    ["servedAt", row.served_at, receipt.servedAt],
    ["model", row.model, row.receipt?.model],
  ];
  for (const [field, listed, signed] of pairs) {
    if (String(listed) !== String(signed)) return { field, message: `${field}: the gateway lists ${String(listed)}, its signed receipt says ${String(signed)}` };
  }
  return undefined;
}

/** The batch of `signer` whose sequence range holds `sequence`, if one settled. */
function batchHolding(batches: readonly AuditedBatch[], signer: string, sequence: bigint): AuditedBatch | undefined {
  return batches.find((b) => b.signer.toLowerCase() === signer.toLowerCase() && sequence >= b.firstSequence && sequence < b.firstSequence + b.recordCount);
}

/**
 * The settled batches, rebuilt from chain data; read again only when a row's sequence is past them. The
 * deploy block is found once (a binary search over eth_getCode) and reused by every later read.
 */
export function batchSource(client: TollgateClient) {
  let cached: AuditedBatch[] | undefined;
  let deployBlock: bigint | undefined;
  return async (needed: { signer: string; sequence: bigint }[]): Promise<AuditedBatch[]> => {
    if (cached && needed.every((n) => batchHolding(cached!, n.signer, n.sequence))) return cached;
    const history = await loadChainHistory(client.public, { tollgate: client.contracts.tollgate, deployBlock });
    deployBlock = history.deployBlock;
    cached = (await auditChain(history, rpcStateReader(client.public, history))).batches;
    return cached;
  };
}

export async function verifyUsageRows(client: TollgateClient, usage: ShownUsage, rows: ShownUsageRow[], batchesFor: ReturnType<typeof batchSource>): Promise<Map<string, RowVerdict>> {
  const verdicts = new Map<string, RowVerdict>();
  const checkable: ShownUsageRow[] = [];
  for (const row of rows) {
    const listed = listedAgainstSigned(row);
    if (listed) verdicts.set(row.sequence, { outcome: "mismatch", ...listed });
    else checkable.push(row);
  }
  if (checkable.length === 0) return verdicts;

  let parsed;
  try {
    // The rows as an export of their own (row n of it is checkable[n - 1]): the parser checks every value.
    parsed = parseUsageExport(JSON.stringify({ ...usage, has_more: true, data: checkable }));
  } catch (error) {
    for (const row of checkable) verdicts.set(row.sequence, { outcome: "mismatch", field: "receipt", message: `the receipts cannot be read: ${(error as Error).message}` });
    return verdicts;
  }
  const batches = await batchesFor(parsed.receipts.map((r) => ({ signer: r.signer, sequence: r.receipt.sequence })));
  const reconciliation = await reconcileReceipts({
    usageExport: parsed,
    batches,
    deployment: { chainId: client.contracts.chainId, tollgate: client.contracts.tollgate },
    buyer: usage.buyer as Address,
  });
  const findingsOf = checkable.map((_, index) => reconciliation.findings.filter((f) => f.where.rows.includes(index + 1)));
  // A changed figure is named by the field the chain disagrees on, before the broken hash and signature it also causes.
  const discrepancies = findingsOf.map((findings) => findings.find((f) => f.code === "receipt_mismatch") ?? findings.find((f) => f.severity === "discrepancy"));
  const pendings = findingsOf.map((findings, index) => (discrepancies[index] ? undefined : findings.find((f) => f.severity === "pending")));
  // Only the unsettled receipts need the chain's word on their signer (a settled one's was checked at settlement).
  const authorizations = await Promise.all(checkable.map((row, index) => (pendings[index] ? verifyReceipt(client, { envelope: row.receipt! }) : undefined)));

  checkable.forEach((row, index) => {
    const discrepancy = discrepancies[index];
    if (discrepancy) {
      verdicts.set(row.sequence, { outcome: "mismatch", field: discrepancy.field ?? discrepancy.code, message: discrepancy.message });
      return;
    }
    const unauthorized = authorizations[index]?.problems.find((p) => p.code !== "hash_mismatch" && p.code !== "bad_signature" && p.code !== "signer_mismatch");
    if (unauthorized) {
      verdicts.set(row.sequence, { outcome: "mismatch", field: "signer", message: unauthorized.message });
      return;
    }
    const pending = pendings[index];
    if (pending) {
      verdicts.set(row.sequence, { outcome: "pending", message: pending.code === "receipt_unsettled" ? "Not settled on-chain yet: verify again after the next settlement." : pending.message });
      return;
    }
    const batch = batchHolding(batches, parsed.receipts[index].signer, parsed.receipts[index].receipt.sequence)!;
    verdicts.set(row.sequence, { outcome: "verified", txHash: batch.txHash, batchFirstSequence: batch.firstSequence });
  });
  return verdicts;
}
