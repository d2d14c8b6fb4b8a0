/** Returns the whole pending withdrawal to the balance. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface CancelWithdrawalReturnType {
  hash: Hash;
  /** What went back to the balance. */
  returned: bigint;
}
/** Reverts: VaultNoPendingWithdrawal. */
export type CancelWithdrawalErrorType = Error;

export async function cancelWithdrawal(client: TollgateClient): Promise<CancelWithdrawalReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, "cancel the withdrawal", { address: tollgate, abi: tollgateAbi, functionName: "cancelWithdrawal", args: [] });
  return { hash, returned: eventIn(receipt, tollgateAbi, "WithdrawalCancelled", tollgate)?.args.amount ?? 0n };
}
