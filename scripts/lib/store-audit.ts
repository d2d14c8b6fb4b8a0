/**
 * The gateway's usage store against what the chain settled (a provider's own check; a buyer has no store):
 * the same counts, times, models, epochs and costs per record, each stored receipt hash recomputed from its
 * fields, each batch's content root rebuilt from the receipts it claims to cover, and the signer's next
 * sequence on-chain equal to what the batches cover, so nothing is left unsettled or settled twice.
 */
import type { Address, Hex, PublicClient } from "viem";
import type { SettlementAudit } from "../../client";
import { tollgateAbi } from "../../server/chain/abis";
import type { Deployment } from "../../server/chain/deployment-schema";
import { merkleRoot } from "../../server/chain/merkle";
import { hashReceipt } from "../../server/chain/usage-batch";
import { usageReceiptOf } from "../../server/chain/receipt-envelope";
import type { UsageStore } from "../../server/store/usage-store";

export async function auditStoreAgainstChain(client: PublicClient, audit: SettlementAudit, store: UsageStore, signer: Address, deployment: Deployment): Promise<string[]> {
  const problems: string[] = [];
  let covered = 0n;
  for (const batch of audit.batches) {
    const leaves: Hex[] = [];
    for (const record of batch.records) {
      const stored = store.recordBySequence(record.sequence);
      if (!stored) {
        problems.push(`record ${record.sequence} is settled on-chain but missing from the gateway's store`);
        continue;
      }
      const same =
        stored.buyer === record.buyer &&
        stored.modelId === record.modelId &&
        stored.priceEpoch === record.priceEpoch &&
        stored.inputTokens === record.inputTokens &&
        stored.cachedInputTokens === record.cachedInputTokens &&
        stored.outputTokens === record.outputTokens &&
        stored.servedAt === record.servedAt &&
        stored.cost === record.cost;
      if (!same) problems.push(`record ${record.sequence}: the chain settled ${JSON.stringify({ ...record, epoch: undefined, cost: record.cost.toString(), sequence: undefined })}, the store holds different counts, time, price epoch or cost`);
      if (hashReceipt(usageReceiptOf(stored)) !== stored.receiptHash) problems.push(`record ${record.sequence}: the stored receipt hash does not match the receipt's fields`);
      if (stored.settlement?.txHash.toLowerCase() !== batch.txHash.toLowerCase()) problems.push(`record ${record.sequence}: the store marks it settled by ${stored.settlement?.txHash ?? "nothing"}, the chain by ${batch.txHash}`);
      leaves.push(stored.receiptHash);
    }
    if (leaves.length === batch.records.length && merkleRoot(leaves) !== batch.contentRoot) {
      problems.push(`batch ${batch.firstSequence}: its content root is not the Merkle root of the receipts it settled`);
    }
    covered += batch.recordCount;
  }
  if (covered !== BigInt(store.recordCount())) problems.push(`the chain settled ${covered} records, the gateway's store holds ${store.recordCount()}`);
  const onChain = await client.readContract({ address: deployment.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] });
  if (onChain.nextSequence !== covered) problems.push(`the chain expects sequence ${onChain.nextSequence} next, but its batches cover ${covered} records`);
  return problems;
}
