/**
 * A buyer's receipts against what the chain settled: each receipt's hash recomputed from its fields, its
 * signature recovered under this deployment's domain, and its counts and cost compared with the record the
 * chain settled under its sequence number. Every disagreement is named; none throws.
 */
import { recoverTypedDataAddress, type Address } from "viem";
import type { Deployment } from "../../server/chain/deployment-schema";
import { TOLLGATE_DOMAIN_NAME, TOLLGATE_DOMAIN_VERSION, usageReceiptTypes } from "../../server/chain/eip712";
import { usageReceiptFromEnvelope, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { hashReceipt } from "../../server/chain/usage-batch";
import type { SettlementAudit } from "./settlements";

export async function auditReceipts(
  audit: SettlementAudit,
  envelopes: readonly ReceiptEnvelope[],
  expected: { signer: Address; deployment: Pick<Deployment, "chainId" | "tollgate"> },
): Promise<string[]> {
  const problems: string[] = [];
  const settledBySequence = new Map(audit.batches.flatMap((batch) => batch.records.map((record) => [record.sequence, record] as const)));
  for (const envelope of envelopes) {
    const receipt = usageReceiptFromEnvelope(envelope);
    const settled = settledBySequence.get(receipt.sequence);
    if (!settled) {
      problems.push(`receipt #${receipt.sequence} (${envelope.model}) was never settled`);
      continue;
    }
    if (settled.cost !== receipt.cost || settled.outputTokens !== receipt.outputTokens || settled.inputTokens !== receipt.inputTokens) {
      problems.push(`receipt #${receipt.sequence}: the buyer was told ${receipt.cost} for ${receipt.inputTokens}/${receipt.outputTokens} tokens, the chain charged ${settled.cost} for ${settled.inputTokens}/${settled.outputTokens}`);
    }
    if (hashReceipt(receipt) !== envelope.receiptHash) problems.push(`receipt #${receipt.sequence}: its hash does not match its fields`);
    const signer = await recoverTypedDataAddress({
      domain: { name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, chainId: expected.deployment.chainId, verifyingContract: expected.deployment.tollgate },
      types: usageReceiptTypes,
      primaryType: "UsageReceipt",
      message: receipt,
      signature: envelope.signature,
    });
    if (signer !== expected.signer) problems.push(`receipt #${receipt.sequence}: signed by ${signer}, not the authorized gateway key ${expected.signer}`);
  }
  return problems;
}
