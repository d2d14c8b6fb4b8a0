/** Sends a provider's earnings to its payout address. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface WithdrawEarningsParameters {
  providerId: number;
}
export interface WithdrawEarningsReturnType {
  hash: Hash;
  amount: bigint;
  payout: `0x${string}`;
}
/** Reverts: RegistryNotProviderOwner, VaultNoEarnings. */
export type WithdrawEarningsErrorType = Error;

export async function withdrawEarnings(client: TollgateClient, { providerId }: WithdrawEarningsParameters): Promise<WithdrawEarningsReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, `withdraw provider ${providerId}'s earnings`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "withdrawEarnings",
    args: [providerId],
  });
  const event = eventIn(receipt, tollgateAbi, "EarningsWithdrawn", tollgate);
  return { hash, amount: event?.args.amount ?? 0n, payout: event?.args.payout ?? "0x" };
}
