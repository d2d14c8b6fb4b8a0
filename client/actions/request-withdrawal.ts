/** Moves part of the balance into a pending withdrawal; it stays chargeable for usage already served until the delay passes. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface RequestWithdrawalParameters {
  amount: bigint;
}
export interface RequestWithdrawalReturnType {
  hash: Hash;
  /** The whole pending amount now, and when it can be withdrawn (unix seconds; the delay restarts for all of it). */
  pendingWithdrawal: bigint;
  withdrawableAt: bigint;
}
/** Reverts: VaultZeroAmount, VaultInsufficientBalance. */
export type RequestWithdrawalErrorType = Error;

export async function requestWithdrawal(client: TollgateClient, { amount }: RequestWithdrawalParameters): Promise<RequestWithdrawalReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, "request a withdrawal", { address: tollgate, abi: tollgateAbi, functionName: "requestWithdrawal", args: [amount] });
  const event = eventIn(receipt, tollgateAbi, "WithdrawalRequested", tollgate);
  return { hash, pendingWithdrawal: event?.args.pendingWithdrawal ?? 0n, withdrawableAt: event?.args.withdrawableAt ?? 0n };
}
