/** What the three dispute actions report: the `GatewayFraudProven` event of their transaction. */
import type { Address, Hash, TransactionReceipt } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { usageReceiptFromEnvelope, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import type { UsageReceipt } from "../../server/chain/usage-batch";
import { TollgateClientError } from "../errors";
import { eventIn } from "./send-transaction";

/** The kinds of proof, as `GatewayFraudProven.kind` numbers them. */
export const FRAUD_KINDS = ["record-mismatch", "content-mismatch", "equivocation"] as const;
export type FraudKind = (typeof FRAUD_KINDS)[number];

export interface FraudProven {
  hash: Hash;
  kind: FraudKind;
  signer: Address;
  providerId: number;
  sequence: bigint;
  /** Credited to `refundedBuyer`'s vault balance: what it was charged beyond the receipt. */
  refundedBuyer: Address;
  refund: bigint;
  /** Credited to `penalizedTo`'s vault balance: a share of the provider's bond. */
  penalizedTo: Address;
  penalty: bigint;
}

export function fraudProvenIn(hash: Hash, receipt: TransactionReceipt, tollgate: Address): FraudProven {
  const event = eventIn(receipt, tollgateAbi, "GatewayFraudProven", tollgate);
  if (!event) throw new TollgateClientError(`transaction ${hash} proved no fraud`, { hint: "it emitted no GatewayFraudProven event; check the deployment address" });
  const { args } = event;
  return {
    hash,
    kind: FRAUD_KINDS[args.kind],
    signer: args.signer,
    providerId: args.providerId,
    sequence: args.sequence,
    refundedBuyer: args.refundedBuyer,
    refund: args.refund,
    penalizedTo: args.penalizedTo,
    penalty: args.penalty,
  };
}

/** The receipt and signature inside an envelope, as the contract takes them. */
export function signedReceiptOf(envelope: ReceiptEnvelope): { receipt: UsageReceipt; signature: `0x${string}` } {
  return { receipt: usageReceiptFromEnvelope(envelope), signature: envelope.signature };
}
