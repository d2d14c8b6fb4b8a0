/** Schedules new prices for a model; they take effect after the deployment's price notice period. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { ModelPrices } from "../../server/chain/pricing";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface ScheduleModelPriceParameters {
  modelId: number;
  prices: ModelPrices;
}
export interface ScheduleModelPriceReturnType {
  hash: Hash;
  epochIndex: bigint;
  /** Unix seconds from which the new prices apply. */
  effectiveFrom: bigint;
  /** The not-yet-effective epoch this schedule replaced, if there was one. */
  replacedEpochIndex?: bigint;
}
/** Reverts: RegistryUnknownModel, RegistryNotProviderOwner, RegistryPriceTooHigh. */
export type ScheduleModelPriceErrorType = Error;

export async function scheduleModelPrice(client: TollgateClient, { modelId, prices }: ScheduleModelPriceParameters): Promise<ScheduleModelPriceReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, `schedule prices of model ${modelId}`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "scheduleModelPrice",
    args: [modelId, prices],
  });
  const event = eventIn(receipt, tollgateAbi, "PriceScheduled", tollgate);
  if (!event) throw new Error(`scheduleModelPrice ${hash} emitted no PriceScheduled event`);
  const replaced = eventIn(receipt, tollgateAbi, "PriceScheduleReplaced", tollgate);
  return { hash, epochIndex: event.args.epochIndex, effectiveFrom: event.args.effectiveFrom, replacedEpochIndex: replaced?.args.epochIndex };
}
