/** Pays a provider's pending bond to its payout address once the delay has passed. */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface WithdrawBondParameters {
  providerId: number;
}
export interface WithdrawBondReturnType {
  hash: Hash;
  /** What was paid: the pending bond less anything a proof of fraud took from it. */
  amount: bigint;
  payout: Address;
}
/** Reverts: RegistryNotProviderOwner, BondNoPendingWithdrawal, BondWithdrawalNotReady. */
export type WithdrawBondErrorType = Error;

export async function withdrawBond(client: TollgateClient, { providerId }: WithdrawBondParameters): Promise<WithdrawBondReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, `withdraw provider ${providerId}'s bond`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "withdrawBond",
    args: [providerId],
  });
  const event = eventIn(receipt, tollgateAbi, "BondWithdrawn", tollgate);
  return { hash, amount: event?.args.amount ?? 0n, payout: event?.args.payout ?? "0x" };
}
