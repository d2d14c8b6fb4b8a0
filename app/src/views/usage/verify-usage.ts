/**
 * Each usage row's receipt verified against the chain, in the browser, trusting neither the gateway nor the
 * oracle: the client's receipt reconciliation (client/audit/receipt-reconciliation.ts) recomputes the hash,
 * recovers the EIP-712 signature, finds the record the chain settled under the signer's sequence in the
 * batches rebuilt from chain data (`loadChainHistory` and `auditChain`), compares every settled figure with the receipt's and
 * checks the Merkle proof against the batch's on-chain content root; `verifyReceipt` checks that the signer
 * is authorized on-chain for the model's provider. On top, the figures the gateway lists in the row must be
 * the ones it signed. The verdict per row: verified, a mismatch naming the field, or pending settlement.
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

/**
 * The settled batches, rebuilt from chain data; read again only when a row's sequence is past them. The
 * deploy block is found once (a binary search over eth_getCode) and reused by every later read.
 */
export function batchSource(client: TollgateClient) {
  let cached: AuditedBatch[] | undefined;
  let deployBlock: bigint | undefined;
  const covers = (batches: AuditedBatch[], signer: string, sequence: bigint) =>
    batches.some((b) => b.signer.toLowerCase() === signer.toLowerCase() && sequence >= b.firstSequence && sequence < b.firstSequence + b.recordCount);
  return async (needed: { signer: string; sequence: bigint }[]): Promise<AuditedBatch[]> => {
    if (cached && needed.every((n) => covers(cached!, n.signer, n.sequence))) return cached;
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
  const authorizations = await Promise.all(checkable.map((row) => verifyReceipt(client, { envelope: row.receipt! })));

  checkable.forEach((row, index) => {
    const findings = reconciliation.findings.filter((f) => f.where.rows.includes(index + 1));
    // A changed figure is named by the field the chain disagrees on, before the broken hash and signature it also causes.
    const discrepancy = findings.find((f) => f.code === "receipt_mismatch") ?? findings.find((f) => f.severity === "discrepancy");
    const unauthorized = authorizations[index].problems.find((p) => p.code !== "hash_mismatch" && p.code !== "bad_signature" && p.code !== "signer_mismatch");
    if (discrepancy) {
      verdicts.set(row.sequence, { outcome: "mismatch", field: discrepancy.field ?? discrepancy.code, message: discrepancy.message });
      return;
    }
    if (unauthorized) {
      verdicts.set(row.sequence, { outcome: "mismatch", field: "signer", message: unauthorized.message });
      return;
    }
    const pending = findings.find((f) => f.severity === "pending");
    if (pending) {
      verdicts.set(row.sequence, { outcome: "pending", message: pending.code === "receipt_unsettled" ? "Not settled on-chain yet: verify again after the next settlement." : pending.message });
      return;
    }
    const signer = parsed.receipts[index].signer;
    const sequence = parsed.receipts[index].receipt.sequence;
    const batch = batches.find((b) => b.signer.toLowerCase() === signer.toLowerCase() && sequence >= b.firstSequence && sequence < b.firstSequence + b.recordCount)!;
    verdicts.set(row.sequence, { outcome: "verified", txHash: batch.txHash, batchFirstSequence: batch.firstSequence });
  });
  return verdicts;
}
