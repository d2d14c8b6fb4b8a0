/**
 * Defines a subscription plan of a provider: `price` per period of `periodSeconds`, including `includedValue` of usage
 * (at list prices) of the plan's models per period; unused included usage does not roll over. Overage beyond it is
 * billed from the buyer's balance (`billBalance`) or refused (`refuse`: not charged, recorded as shortfall).
 */
import type { Hash } from "viem";
import { tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import { subscriptionsAddress } from "../internal/subscriptions-address";
import type { TollgateClient } from "../tollgate-client";

export type SubscriptionOverage = "billBalance" | "refuse";

export interface DefineSubscriptionPlanParameters {
  providerId: number;
  periodSeconds: number;
  price: bigint;
  includedValue: bigint;
  /** The provider's models the plan covers. */
  modelIds: readonly number[];
  overage: SubscriptionOverage;
}
export interface DefineSubscriptionPlanReturnType {
  hash: Hash;
  planId: bigint;
}
/** Reverts: SubscriptionsNotProviderOwner, SubscriptionsInvalidPeriod, SubscriptionsInvalidPlan, SubscriptionsValueOutOfRange, SubscriptionsModelNotOfProvider. */
export type DefineSubscriptionPlanErrorType = Error;

export async function defineSubscriptionPlan(
  client: TollgateClient,
  parameters: DefineSubscriptionPlanParameters,
): Promise<DefineSubscriptionPlanReturnType> {
  const address = await subscriptionsAddress(client);
  const { providerId, periodSeconds, price, includedValue, modelIds, overage } = parameters;
  const { hash, receipt } = await sendTransaction(client, `define a subscription plan of provider ${providerId}`, {
    address,
    abi: tollgateSubscriptionsAbi,
    functionName: "defineSubscriptionPlan",
    args: [providerId, BigInt(periodSeconds), price, includedValue, [...modelIds], overage === "refuse" ? 1 : 0],
  });
  const event = eventIn(receipt, tollgateSubscriptionsAbi, "SubscriptionPlanDefined", address);
  if (!event) throw new Error(`defineSubscriptionPlan ${hash} emitted no SubscriptionPlanDefined event`);
  return { hash, planId: event.args.planId };
}
