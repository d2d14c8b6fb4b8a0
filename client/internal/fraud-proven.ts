/** What the three dispute actions report: the `GatewayFraudProven` event of their transaction, and its awards. */
import { parseEventLogs, type Address, type Hash, type TransactionReceipt } from "viem";
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
  /** Awarded to `refundedBuyer`: what it was charged beyond the receipt. */
  refundedBuyer: Address;
  refund: bigint;
  /** Awarded to `penalizedTo`: a share of the provider's bond. */
  penalizedTo: Address;
  penalty: bigint;
  /**
   * When each beneficiary's award bucket (this award and any earlier unclaimed ones) can be claimed with
   * `claimDisputeAwards`, unix seconds: BOND_WITHDRAWAL_DELAY after this proof. Awards are never spendable
   * balance, so a provider proving its own fraud cannot take its bond out sooner than a bond withdrawal.
   * Empty when the bond was empty and nothing was awarded.
   */
  awards: { beneficiary: Address; amount: bigint; total: bigint; claimableAt: bigint }[];
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
    awards: parseEventLogs({ abi: tollgateAbi, eventName: "DisputeAwarded", logs: receipt.logs.filter((log) => log.address.toLowerCase() === tollgate.toLowerCase()) }).map(
      ({ args: a }) => ({ beneficiary: a.beneficiary, amount: a.amount, total: a.total, claimableAt: a.claimableAt }),
    ),
  };
}

/** The receipt and signature inside an envelope, as the contract takes them. */
export function signedReceiptOf(envelope: ReceiptEnvelope): { receipt: UsageReceipt; signature: `0x${string}` } {
  return { receipt: usageReceiptFromEnvelope(envelope), signature: envelope.signature };
}
