/** Changes a provider's payout address and metadata URI. */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface UpdateProviderParameters {
  providerId: number;
  payout: Address;
  metadataUri: string;
}
export interface UpdateProviderReturnType {
  hash: Hash;
}
/** Reverts: RegistryUnknownProvider, RegistryNotProviderOwner, RegistryZeroAddress. */
export type UpdateProviderErrorType = Error;

export async function updateProvider(client: TollgateClient, { providerId, payout, metadataUri }: UpdateProviderParameters): Promise<UpdateProviderReturnType> {
  const { hash } = await sendTransaction(client, `update provider ${providerId}`, {
    address: client.contracts.tollgate,
    abi: tollgateAbi,
    functionName: "updateProvider",
    args: [providerId, payout, metadataUri],
  });
  return { hash };
}
