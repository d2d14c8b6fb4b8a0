/** The owner sets the protocol fee, in basis points of what settlement draws (at most 1,000). */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface SetProtocolFeeParameters {
  feeBps: bigint;
}
export interface SetProtocolFeeReturnType {
  hash: Hash;
}
/** Reverts: OwnableUnauthorizedAccount, VaultFeeTooHigh. */
export type SetProtocolFeeErrorType = Error;

export async function setProtocolFee(client: TollgateClient, { feeBps }: SetProtocolFeeParameters): Promise<SetProtocolFeeReturnType> {
  const { hash } = await sendTransaction(client, "setProtocolFee", { address: client.contracts.tollgate, abi: tollgateAbi, functionName: "setProtocolFee", args: [feeBps] });
  return { hash };
}
