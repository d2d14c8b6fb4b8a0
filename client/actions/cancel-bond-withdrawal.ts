/** Returns a provider's whole pending bond to its available bond. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface CancelBondWithdrawalParameters {
  providerId: number;
}
export interface CancelBondWithdrawalReturnType {
  hash: Hash;
  /** What went back to the available bond. */
  amount: bigint;
}
/** Reverts: RegistryNotProviderOwner, BondNoPendingWithdrawal. */
export type CancelBondWithdrawalErrorType = Error;

export async function cancelBondWithdrawal(
  client: TollgateClient,
  { providerId }: CancelBondWithdrawalParameters,
): Promise<CancelBondWithdrawalReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, `cancel provider ${providerId}'s bond withdrawal`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "cancelBondWithdrawal",
    args: [providerId],
  });
  return { hash, amount: eventIn(receipt, tollgateAbi, "BondWithdrawalCancelled", tollgate)?.args.amount ?? 0n };
}
