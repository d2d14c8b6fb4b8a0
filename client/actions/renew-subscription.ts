/**
 * Renews a buyer's subscription for every period that has started (any wallet may: a keeper, the oracle, the buyer),
 * each from the buyer's vault balance; or ends it, if it was cancelled or the balance cannot pay a period.
 */
import type { Address, Hash } from "viem";
import { parseEventLogs } from "viem";
import { tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import { subscriptionsAddress } from "../internal/subscriptions-address";
import type { TollgateClient } from "../tollgate-client";

export interface RenewSubscriptionParameters {
  buyer: Address;
  providerId: number;
}
export interface RenewSubscriptionReturnType {
  hash: Hash;
  /** Periods paid, and what they cost the buyer. */
  periodsPaid: number;
  paid: bigint;
  /** Set when the subscription ended instead: "cancelled" or "unpaid". */
  ended?: "cancelled" | "unpaid";
  /** Included usage of the periods that closed, left unused: it does not roll over. */
  forfeited: bigint;
}
/** Reverts: SubscriptionsNotSubscribed, SubscriptionsRenewalNotDue, EnforcedPause. */
export type RenewSubscriptionErrorType = Error;

export async function renewSubscription(
  client: TollgateClient,
  parameters: RenewSubscriptionParameters,
): Promise<RenewSubscriptionReturnType> {
  const address = await subscriptionsAddress(client);
  const { buyer, providerId } = parameters;
  const { hash, receipt } = await sendTransaction(client, `renew ${buyer}'s subscription to provider ${providerId}`, {
    address,
    abi: tollgateSubscriptionsAbi,
    functionName: "renew",
    args: [buyer, providerId],
  });
  const logs = parseEventLogs({ abi: tollgateSubscriptionsAbi, logs: receipt.logs }).filter(
    (log) => log.address.toLowerCase() === address.toLowerCase(),
  );
  const result: RenewSubscriptionReturnType = { hash, periodsPaid: 0, paid: 0n, forfeited: 0n };
  for (const log of logs) {
    if (log.eventName === "SubscriptionRenewed") {
      result.periodsPaid++;
      result.paid += log.args.price;
      result.forfeited += log.args.forfeited;
    } else if (log.eventName === "SubscriptionEnded") {
      result.ended = log.args.reason === 0 ? "cancelled" : "unpaid";
      result.forfeited += log.args.forfeited;
    }
  }
  return result;
}
