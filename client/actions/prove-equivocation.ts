/**
 * Proves on-chain that one gateway key signed two different receipts for one sequence, settled or not. Pays
 * the penalty to the first receipt's buyer; a settled overcharge is refunded only by the two proofs that
 * name the batch (`proveSettledRecordMismatch`, `proveContentMismatch`), so prefer those when the batch is known.
 */
import { tollgateAbi } from "../../server/chain/abis";
import type { ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { fraudProvenIn, signedReceiptOf, type FraudProven } from "../internal/fraud-proven";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface ProveEquivocationParameters {
  /** The receipt whose buyer is paid the penalty. */
  first: ReceiptEnvelope;
  /** Another receipt from the same key for the same sequence. */
  second: ReceiptEnvelope;
}
export type ProveEquivocationReturnType = FraudProven;
/** Reverts: DisputeUnknownSigner, DisputeSignerMismatch, DisputeSequenceMismatch, DisputeWindowClosed, DisputeAlreadyProven, DisputeNoDiscrepancy. */
export type ProveEquivocationErrorType = Error;

export async function proveEquivocation(client: TollgateClient, { first, second }: ProveEquivocationParameters): Promise<ProveEquivocationReturnType> {
  const { tollgate } = client.contracts;
  const a = signedReceiptOf(first);
  const b = signedReceiptOf(second);
  const { hash, receipt } = await sendTransaction(client, `prove two receipts for sequence ${a.receipt.sequence}`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "proveEquivocation",
    args: [a.receipt, a.signature, b.receipt, b.signature],
  });
  return fraudProvenIn(hash, receipt, tollgate);
}
