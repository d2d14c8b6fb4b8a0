/** Cancels the wallet's subscription to a provider: covered until the paid period ends, then it ends. No refund. */
import type { Hash } from "viem";
import { tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import { subscriptionsAddress } from "../internal/subscriptions-address";
import type { TollgateClient } from "../tollgate-client";

export interface CancelSubscriptionParameters {
  providerId: number;
}
export interface CancelSubscriptionReturnType {
  hash: Hash;
  /** Unix seconds when the subscription ends. */
  endsAt: bigint;
}
/** Reverts: SubscriptionsNotSubscribed, SubscriptionsAlreadyCancelled. */
export type CancelSubscriptionErrorType = Error;

export async function cancelSubscription(
  client: TollgateClient,
  parameters: CancelSubscriptionParameters,
): Promise<CancelSubscriptionReturnType> {
  const address = await subscriptionsAddress(client);
  const { hash, receipt } = await sendTransaction(client, `cancel the subscription to provider ${parameters.providerId}`, {
    address,
    abi: tollgateSubscriptionsAbi,
    functionName: "cancelSubscription",
    args: [parameters.providerId],
  });
  const event = eventIn(receipt, tollgateSubscriptionsAbi, "SubscriptionCancelled", address);
  if (!event) throw new Error(`cancelSubscription ${hash} emitted no SubscriptionCancelled event`);
  return { hash, endsAt: event.args.endsAt };
}
