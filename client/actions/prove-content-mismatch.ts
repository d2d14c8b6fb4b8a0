/**
 * Proves on-chain that a settled batch's content root commits, under a receipt's sequence, to another receipt
 * (another response content hash, buyer, counts or cost) than the one the gateway handed the buyer.
 */
import type { Hex } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import type { UsageReceipt, usageBatchHeader } from "../../server/chain/usage-batch";
import { fraudProvenIn, signedReceiptOf, type FraudProven } from "../internal/fraud-proven";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface ProveContentMismatchParameters {
  /** The receipt the gateway handed the buyer. */
  envelope: ReceiptEnvelope;
  /** The settled batch with its sections as hashes (`usageBatchHeader`). */
  header: ReturnType<typeof usageBatchHeader>;
  /** The receipt the batch's content root holds for the same sequence. */
  settledReceipt: UsageReceipt;
  /** Its Merkle proof under the header's content root (`merkleProof`). */
  proof: readonly Hex[];
}
export type ProveContentMismatchReturnType = FraudProven;
/**
 * Reverts: DisputeUnknownSigner, DisputeUnknownBatch, DisputeWindowClosed, DisputeSequenceMismatch,
 * DisputeProofTooLong, DisputeInvalidMerkleProof, DisputeAlreadyProven, DisputeNoDiscrepancy.
 */
export type ProveContentMismatchErrorType = Error;

export async function proveContentMismatch(
  client: TollgateClient,
  { envelope, header, settledReceipt, proof }: ProveContentMismatchParameters,
): Promise<ProveContentMismatchReturnType> {
  const { tollgate } = client.contracts;
  const { receipt, signature } = signedReceiptOf(envelope);
  const { hash, receipt: txReceipt } = await sendTransaction(client, `prove batch content differs from receipt #${receipt.sequence}`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "proveContentMismatch",
    args: [receipt, signature, header, settledReceipt, [...proof]],
  });
  return fraudProvenIn(hash, txReceipt, tollgate);
}
