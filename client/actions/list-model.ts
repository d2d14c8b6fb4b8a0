/** Lists a model for sale with its prices per million tokens (in force at once: there is no usage to protect yet). */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { ModelPrices } from "../../server/chain/pricing";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface ListModelParameters {
  providerId: number;
  /** The public model name buyers call it by. */
  name: string;
  prices: ModelPrices;
}
export interface ListModelReturnType {
  hash: Hash;
  modelId: number;
  /** The model's bit in its provider's credit-plan model masks. */
  localIndex: number;
}
/** Reverts: RegistryUnknownProvider, RegistryNotProviderOwner, RegistryInvalidModelName, RegistryTooManyModels, RegistryPriceTooHigh. */
export type ListModelErrorType = Error;

export async function listModel(client: TollgateClient, { providerId, name, prices }: ListModelParameters): Promise<ListModelReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, `list ${name}`, { address: tollgate, abi: tollgateAbi, functionName: "listModel", args: [providerId, name, prices] });
  const event = eventIn(receipt, tollgateAbi, "ModelListed", tollgate);
  if (!event) throw new Error(`listModel ${hash} emitted no ModelListed event`);
  return { hash, modelId: event.args.modelId, localIndex: event.args.localIndex };
}
