/** Subscribes the wallet to a plan, paying its first period from the wallet's vault balance. */
import type { Hash } from "viem";
import { tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import { subscriptionsAddress } from "../internal/subscriptions-address";
import type { TollgateClient } from "../tollgate-client";

export interface SubscribeParameters {
  planId: bigint;
}
export interface SubscribeReturnType {
  hash: Hash;
  subscriptionId: bigint;
  /** The first paid period, [periodStart, periodEnd) in unix seconds; its included usage does not roll over. */
  periodStart: bigint;
  periodEnd: bigint;
  price: bigint;
  includedValue: bigint;
}
/** Reverts: SubscriptionsUnknownPlan, SubscriptionsAlreadySubscribed, SubscriptionsInsufficientBalance, EnforcedPause. */
export type SubscribeErrorType = Error;

export async function subscribe(client: TollgateClient, parameters: SubscribeParameters): Promise<SubscribeReturnType> {
  const address = await subscriptionsAddress(client);
  const { hash, receipt } = await sendTransaction(client, `subscribe to plan ${parameters.planId}`, {
    address,
    abi: tollgateSubscriptionsAbi,
    functionName: "subscribe",
    args: [parameters.planId],
  });
  const event = eventIn(receipt, tollgateSubscriptionsAbi, "Subscribed", address);
  if (!event) throw new Error(`subscribe ${hash} emitted no Subscribed event`);
  const { subscriptionId, periodStart, periodEnd, price, includedValue } = event.args;
  return { hash, subscriptionId, periodStart, periodEnd, price, includedValue };
}
