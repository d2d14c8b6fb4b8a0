/** Sweeps the accrued protocol fees to the treasury; anyone may call it. */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface CollectProtocolFeesReturnType {
  hash: Hash;
  amount: bigint;
  treasury?: Address;
}
/** Reverts: VaultNoProtocolFees. */
export type CollectProtocolFeesErrorType = Error;

export async function collectProtocolFees(client: TollgateClient): Promise<CollectProtocolFeesReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, "collectProtocolFees", { address: tollgate, abi: tollgateAbi, functionName: "collectProtocolFees", args: [] });
  const event = eventIn(receipt, tollgateAbi, "ProtocolFeesCollected", tollgate);
  return { hash, amount: event?.args.amount ?? 0n, treasury: event?.args.treasury };
}
