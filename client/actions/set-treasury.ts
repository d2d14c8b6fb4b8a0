/** The owner names the address protocol fees are swept to. */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface SetTreasuryParameters {
  treasury: Address;
}
export interface SetTreasuryReturnType {
  hash: Hash;
}
/** Reverts: OwnableUnauthorizedAccount, VaultZeroAddress. */
export type SetTreasuryErrorType = Error;

export async function setTreasury(client: TollgateClient, { treasury }: SetTreasuryParameters): Promise<SetTreasuryReturnType> {
  const { hash } = await sendTransaction(client, "setTreasury", { address: client.contracts.tollgate, abi: tollgateAbi, functionName: "setTreasury", args: [treasury] });
  return { hash };
}
