/** Sends credits to another address (ERC-1155 safeTransferFrom): usage rights can be resold. */
import type { Address, Hash } from "viem";
import { tollgateCreditsAbi } from "../../server/chain/abis";
import { sendTransaction, signerOf } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface TransferCreditsParameters {
  to: Address;
  planId: bigint;
  count: bigint;
}
export interface TransferCreditsReturnType {
  hash: Hash;
}
/** Reverts: ERC1155InsufficientBalance, ERC1155InvalidReceiver. */
export type TransferCreditsErrorType = Error;

export async function transferCredits(client: TollgateClient, { to, planId, count }: TransferCreditsParameters): Promise<TransferCreditsReturnType> {
  const from = signerOf(client, "transferCredits").address;
  const { hash } = await sendTransaction(client, `transfer ${count} credits of plan ${planId}`, {
    address: client.contracts.credits,
    abi: tollgateCreditsAbi,
    functionName: "safeTransferFrom",
    args: [from, to, planId, count, "0x"],
  });
  return { hash };
}
