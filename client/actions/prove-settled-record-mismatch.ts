/**
 * Proves on-chain that a gateway settled, under a receipt's sequence, a record that differs from the receipt
 * (buyer, model, counts, serving time or prices): the charged buyer is refunded the overcharge, the receipt's
 * buyer gets a penalty from the provider's bond, and the gateway key is compromised for good.
 */
import { tollgateAbi } from "../../server/chain/abis";
import type { ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import type { UsageBatch } from "../../server/chain/usage-batch";
import { fraudProvenIn, signedReceiptOf, type FraudProven } from "../internal/fraud-proven";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface ProveSettledRecordMismatchParameters {
  /** The receipt the gateway handed the buyer. */
  envelope: ReceiptEnvelope;
  /** The settled batch holding its sequence, as its `settleBatch` calldata or `BatchDataPublished` carried it. */
  batch: UsageBatch;
}
export type ProveSettledRecordMismatchReturnType = FraudProven;
/**
 * Reverts: DisputeUnknownSigner (forged, or signed for another chain or contract), DisputeUnknownBatch,
 * DisputeWindowClosed, DisputeSequenceNotInBatch, DisputeAlreadyProven, DisputeNoDiscrepancy, ECDSAInvalidSignature*.
 */
export type ProveSettledRecordMismatchErrorType = Error;

export async function proveSettledRecordMismatch(
  client: TollgateClient,
  { envelope, batch }: ProveSettledRecordMismatchParameters,
): Promise<ProveSettledRecordMismatchReturnType> {
  const { tollgate } = client.contracts;
  const { receipt, signature } = signedReceiptOf(envelope);
  const { hash, receipt: txReceipt } = await sendTransaction(client, `prove receipt #${receipt.sequence} was settled otherwise`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "proveSettledRecordMismatch",
    args: [receipt, signature, batch],
  });
  return fraudProvenIn(hash, txReceipt, tollgate);
}
