/** Sends what is left of the pending withdrawal to the wallet, once the withdrawal delay has passed. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface ExecuteWithdrawalReturnType {
  hash: Hash;
  withdrawn: bigint;
}
/** Reverts: VaultNoPendingWithdrawal, VaultWithdrawalNotReady(withdrawableAt, now). */
export type ExecuteWithdrawalErrorType = Error;

export async function executeWithdrawal(client: TollgateClient): Promise<ExecuteWithdrawalReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, "withdraw", { address: tollgate, abi: tollgateAbi, functionName: "withdraw", args: [] });
  return { hash, withdrawn: eventIn(receipt, tollgateAbi, "Withdrawn", tollgate)?.args.amount ?? 0n };
}
