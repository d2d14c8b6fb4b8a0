/** Moves part of a provider's bond to pending; it leaves only after the delay, and stays slashable until then. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface RequestBondWithdrawalParameters {
  providerId: number;
  amount: bigint;
}
export interface RequestBondWithdrawalReturnType {
  hash: Hash;
  /** The whole pending bond now, and when it can be withdrawn (unix seconds; each request restarts the delay). */
  pending: bigint;
  withdrawableAt: bigint;
}
/** Reverts: RegistryNotProviderOwner, BondZeroAmount, BondInsufficient. */
export type RequestBondWithdrawalErrorType = Error;

export async function requestBondWithdrawal(
  client: TollgateClient,
  { providerId, amount }: RequestBondWithdrawalParameters,
): Promise<RequestBondWithdrawalReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, `request a bond withdrawal for provider ${providerId}`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "requestBondWithdrawal",
    args: [providerId, amount],
  });
  const event = eventIn(receipt, tollgateAbi, "BondWithdrawalRequested", tollgate);
  return { hash, pending: event?.args.pending ?? 0n, withdrawableAt: event?.args.withdrawableAt ?? 0n };
}
