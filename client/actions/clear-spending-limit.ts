/** Removes the buyer's spending limit for a provider. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface ClearSpendingLimitParameters {
  providerId: number;
}
export interface ClearSpendingLimitReturnType {
  hash: Hash;
}
/** Reverts: RegistryUnknownProvider. */
export type ClearSpendingLimitErrorType = Error;

export async function clearSpendingLimit(client: TollgateClient, { providerId }: ClearSpendingLimitParameters): Promise<ClearSpendingLimitReturnType> {
  const { hash } = await sendTransaction(client, `clear the limit of provider ${providerId}`, {
    address: client.contracts.tollgate,
    abi: tollgateAbi,
    functionName: "clearSpendingLimit",
    args: [providerId],
  });
  return { hash };
}
