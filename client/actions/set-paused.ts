/** The owner pauses or unpauses Tollgate. Withdrawals work while paused; deposits, purchases and settlement do not. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface SetPausedParameters {
  paused: boolean;
}
export interface SetPausedReturnType {
  hash: Hash;
}
/** Reverts: OwnableUnauthorizedAccount, EnforcedPause, ExpectedPause. */
export type SetPausedErrorType = Error;

export async function setPaused(client: TollgateClient, { paused }: SetPausedParameters): Promise<SetPausedReturnType> {
  const functionName = paused ? "pause" : "unpause";
  const { hash } = await sendTransaction(client, functionName, { address: client.contracts.tollgate, abi: tollgateAbi, functionName, args: [] });
  return { hash };
}
