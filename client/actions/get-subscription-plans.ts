/**
 * A provider's subscription plans as the chain holds them: each plan's period, period price, the usage value a
 * paid period includes (token base units, priced at list prices), the models it covers (by id and name) and
 * its overage rule. Unused included usage does not roll over into the next period (`rollsOver: false`, the
 * contract's rule, stated so a page or a command can say it). Plans never change once defined, so they are read
 * from storage (`subscriptionPlanOf`) at one block; model names from the registry's `ModelListed` events, unless
 * the caller already has them (a catalog). Browser-safe: viem only.
 */
import type { Address } from "viem";
import { tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { planCoversModel } from "../../server/chain/plan-eligibility";
import { subscriptionsAddress } from "../internal/subscriptions-address";
import { eventsNamed, readTollgateEvents, topicOfNumber, type ReadTollgateEventsParameters } from "../internal/tollgate-events";
import type { TollgateClient } from "../tollgate-client";
import type { SubscriptionOverage } from "./define-subscription-plan";

/** A model of the provider, as far as a plan needs it: its bit in plan masks is `1 << localIndex`. */
export interface SubscriptionPlanModel {
  modelId: number;
  localIndex: number;
  name: string;
}

export interface GetSubscriptionPlansParameters extends Pick<ReadTollgateEventsParameters, "fromBlock" | "maxRange"> {
  providerId: number;
  /** The provider's models, when the caller has them (e.g. from `getCatalog`): no log scan is needed then. */
  models?: readonly SubscriptionPlanModel[];
}

export interface SubscriptionPlanInfo {
  planId: bigint;
  providerId: number;
  periodSeconds: number;
  /** Paid from the buyer's vault balance at the start of each period. */
  price: bigint;
  /** Usage value (at list prices) each paid period includes. */
  includedValue: bigint;
  modelMask: bigint;
  modelIds: number[];
  models: string[];
  /** Beyond the included value: billed from credits then balance at list prices, or refused (not charged). */
  overage: SubscriptionOverage;
  /** Always false: what a period leaves unused is forfeited when it ends. */
  rollsOver: false;
}

export interface GetSubscriptionPlansReturnType {
  subscriptions: Address;
  plans: SubscriptionPlanInfo[];
  blockNumber: bigint;
}
/** Errors of the RPC (viem), or ChainHistoryLoadError when the model names' log scan fails past its retries. */
export type GetSubscriptionPlansErrorType = Error;

/** `ITollgateSubscriptions.Overage` as the client names it. */
export const overageOf = (value: number): SubscriptionOverage => (value === 1 ? "refuse" : "billBalance");

export async function getSubscriptionPlans(client: Pick<TollgateClient, "public" | "contracts">, parameters: GetSubscriptionPlansParameters): Promise<GetSubscriptionPlansReturnType> {
  const { providerId } = parameters;
  const address = await subscriptionsAddress(client);
  const blockNumber = await client.public.getBlockNumber();
  const count = await client.public.readContract({ address, abi: tollgateSubscriptionsAbi, functionName: "subscriptionPlanCount", blockNumber });
  const all = await Promise.all(
    Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1)).map(async (planId) => ({
      planId,
      plan: await client.public.readContract({ address, abi: tollgateSubscriptionsAbi, functionName: "subscriptionPlanOf", args: [planId], blockNumber }),
    })),
  );
  const mine = all.filter(({ plan }) => plan.providerId === providerId);
  const models = parameters.models ?? (mine.length === 0 ? [] : await listedModels(client, providerId, { ...parameters, toBlock: blockNumber }));
  const plans = mine.map(({ planId, plan }): SubscriptionPlanInfo => {
    const covered = models.filter((model) => planCoversModel(plan, model.localIndex)).sort((a, b) => a.modelId - b.modelId);
    return {
      planId,
      providerId,
      periodSeconds: Number(plan.period),
      price: plan.price,
      includedValue: plan.includedValue,
      modelMask: plan.modelMask,
      modelIds: covered.map((model) => model.modelId),
      models: covered.map((model) => model.name),
      overage: overageOf(plan.overage),
      rollsOver: false,
    };
  });
  return { subscriptions: address, plans, blockNumber };
}

async function listedModels(client: Pick<TollgateClient, "public" | "contracts">, providerId: number, range: ReadTollgateEventsParameters): Promise<SubscriptionPlanModel[]> {
  const read = await readTollgateEvents(client, [{ events: ["ModelListed"], topics: [null, topicOfNumber(providerId)] }], range);
  return eventsNamed(read.events, "ModelListed").map((event) => ({ modelId: event.args.modelId, localIndex: event.args.localIndex, name: event.args.name }));
}
