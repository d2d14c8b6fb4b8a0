/**
 * Authorizes or revokes a gateway signer key for a provider: only an authorized key's signed batches can
 * charge buyers. Revoke a stolen key at once; drain an honest one through the oracle before retiring it.
 */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface SetSignerAuthorizationParameters {
  providerId: number;
  signer: Address;
  authorized: boolean;
}
export interface SetSignerAuthorizationReturnType {
  hash: Hash;
}
/** Reverts: RegistryNotProviderOwner, RegistrySignerOfOtherProvider, RegistrySignerUnchanged, RegistryZeroAddress. */
export type SetSignerAuthorizationErrorType = Error;

export async function setSignerAuthorization(client: TollgateClient, { providerId, signer, authorized }: SetSignerAuthorizationParameters): Promise<SetSignerAuthorizationReturnType> {
  const { hash } = await sendTransaction(client, `${authorized ? "authorize" : "revoke"} gateway key ${signer}`, {
    address: client.contracts.tollgate,
    abi: tollgateAbi,
    functionName: "setSignerAuthorization",
    args: [providerId, signer, authorized],
  });
  return { hash };
}
