/** Defines a credit plan: a credit costs `pricePerCredit` and pays for `valuePerCredit` of usage of the plan's models. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface DefineCreditPlanParameters {
  providerId: number;
  pricePerCredit: bigint;
  valuePerCredit: bigint;
  /** The provider's models the credits pay for. */
  modelIds: readonly number[];
  /** Unix seconds after which usage is no longer covered; 0: never. */
  expiresAt?: number;
}
export interface DefineCreditPlanReturnType {
  hash: Hash;
  planId: bigint;
}
/** Reverts: RegistryNotProviderOwner, CreditsInvalidPlan, CreditsModelNotOfProvider, CreditsPriceOutOfRange, CreditsPlanExpired. */
export type DefineCreditPlanErrorType = Error;

export async function defineCreditPlan(client: TollgateClient, parameters: DefineCreditPlanParameters): Promise<DefineCreditPlanReturnType> {
  const { tollgate } = client.contracts;
  const { providerId, pricePerCredit, valuePerCredit, modelIds, expiresAt = 0 } = parameters;
  const { hash, receipt } = await sendTransaction(client, `define a credit plan of provider ${providerId}`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "defineCreditPlan",
    args: [providerId, pricePerCredit, valuePerCredit, [...modelIds], expiresAt],
  });
  const event = eventIn(receipt, tollgateAbi, "CreditPlanDefined", tollgate);
  if (!event) throw new Error(`defineCreditPlan ${hash} emitted no CreditPlanDefined event`);
  return { hash, planId: event.args.planId };
}
