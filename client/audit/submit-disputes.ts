/**
 * Turns dispute candidates (signed receipts the chain contradicts, from `disputeCandidates`) into on-chain
 * fraud proofs, one transaction each, with the proof that fits the evidence:
 *  - two receipts one key signed for one sequence: `proveEquivocation`;
 *  - a receipt the settled record contradicts (buyer, model, counts, serving time, prices, cost):
 *    `proveSettledRecordMismatch`, carrying the batch's sections as they were settled.
 * A receipt that is only missing from its batch's content root cannot be proven by the buyer alone: the
 * contract needs the receipt the batch committed to for that sequence, which only the gateway holds. It is
 * reported as not submittable, with that reason. Each outcome is an answer, never a throw: a proof the
 * contract refuses comes back with its decoded custom error. Browser-safe.
 */
import type { Address, Hash } from "viem";
import { proveEquivocation } from "../actions/prove-equivocation";
import { proveSettledRecordMismatch } from "../actions/prove-settled-record-mismatch";
import { revertOf } from "../errors";
import type { FraudProven } from "../internal/fraud-proven";
import type { TollgateClient } from "../tollgate-client";
import { TOLLGATE_DOMAIN_NAME, TOLLGATE_DOMAIN_VERSION } from "../../server/chain/eip712";
import { receiptToWire, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import type { DisputeCandidate } from "./dispute-candidates";

export type DisputeOutcome =
  | { status: "proven"; candidate: DisputeCandidate; proof: "equivocation" | "settled-record-mismatch"; fraud: FraudProven }
  | { status: "refused"; candidate: DisputeCandidate; proof: "equivocation" | "settled-record-mismatch"; error: string; errorName?: string }
  | { status: "not-submittable"; candidate: DisputeCandidate; reason: string };

export interface SubmitDisputesParameters {
  candidates: readonly DisputeCandidate[];
  /** Called after each candidate, for progress lines. */
  onOutcome?: (outcome: DisputeOutcome) => void;
}

/** A candidate's receipt as the dispute actions take it: the envelope the gateway handed over. */
function envelopeOf(client: TollgateClient, signer: Address, signed: DisputeCandidate["receipts"][number]): ReceiptEnvelope {
  const { chainId, tollgate } = client.contracts;
  return {
    domain: { name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, chainId, verifyingContract: tollgate },
    signer,
    primaryType: "UsageReceipt",
    receipt: receiptToWire(signed.receipt),
    receiptHash: signed.receiptHash,
    signature: signed.signature,
    // Not read by the proofs: what is signed is the receipt, whose content hash already commits to these.
    content: { salt: signed.receipt.contentHash, requestHash: signed.receipt.contentHash, responseHash: signed.receipt.contentHash },
    model: String(signed.receipt.modelId),
    reasoningTokens: 0,
    countSource: "gateway",
  };
}

async function submitOne(client: TollgateClient, candidate: DisputeCandidate): Promise<DisputeOutcome> {
  let proof: "equivocation" | "settled-record-mismatch";
  let send: () => Promise<FraudProven>;
  if (candidate.reason === "receipt_equivocation") {
    const [first, second] = candidate.receipts;
    if (!second) return { status: "not-submittable", candidate, reason: "an equivocation needs two receipts signed for the sequence" };
    proof = "equivocation";
    send = () => proveEquivocation(client, { first: envelopeOf(client, candidate.signer, first), second: envelopeOf(client, candidate.signer, second) });
  } else if (candidate.reason === "receipt_mismatch") {
    if (!candidate.batch) return { status: "not-submittable", candidate, reason: "no settled batch holds this sequence yet" };
    const { header, sections } = candidate.batch;
    proof = "settled-record-mismatch";
    const batch = { firstSequence: header.firstSequence, baseTime: header.baseTime, ...sections, contentRoot: header.contentRoot };
    send = () => proveSettledRecordMismatch(client, { envelope: envelopeOf(client, candidate.signer, candidate.receipts[0]), batch });
  } else {
    return {
      status: "not-submittable",
      candidate,
      reason:
        "the receipt is missing from its batch's content root, but the settled record agrees with it: a proof needs the receipt the batch " +
        "committed to for this sequence, which only the gateway holds (ask for it; a second signed receipt for the sequence is an equivocation)",
    };
  }
  try {
    return { status: "proven", candidate, proof, fraud: await send() };
  } catch (error) {
    // A refusal is decoded before anything is signed (the actions simulate first): name the custom error.
    const revert = revertOf(error);
    const message = revert ? revert.text : ((error as { shortMessage?: string }).shortMessage ?? String(error));
    return { status: "refused", candidate, proof, error: message, errorName: revert?.name };
  }
}

/** Submits a proof for each candidate in turn (one wallet, one nonce sequence), and says what became of each. */
export async function submitDisputes(client: TollgateClient, { candidates, onOutcome }: SubmitDisputesParameters): Promise<DisputeOutcome[]> {
  const outcomes: DisputeOutcome[] = [];
  for (const candidate of candidates) {
    const outcome = await submitOne(client, candidate);
    outcomes.push(outcome);
    onOutcome?.(outcome);
  }
  return outcomes;
}

/** The transactions of the proofs that went through. */
export function provenTransactions(outcomes: readonly DisputeOutcome[]): Hash[] {
  return outcomes.flatMap((outcome) => (outcome.status === "proven" ? [outcome.fraud.hash] : []));
}
