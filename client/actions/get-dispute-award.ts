/** A beneficiary's unclaimed dispute awards as the chain holds them, and when it can claim them. */
import type { Address } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { TollgateClient } from "../tollgate-client";

export interface GetDisputeAwardParameters {
  beneficiary: Address;
}
export interface GetDisputeAwardReturnType {
  /** Refunds and penalties awarded and not yet claimed, in token base units. */
  amount: bigint;
  /** Unix seconds from which `claimDisputeAwards` pays `amount` (0 when nothing is awarded). */
  claimableAt: bigint;
  /** Seconds an award waits: the bond withdrawal delay, restarted by each later award. */
  claimDelay: bigint;
}
export type GetDisputeAwardErrorType = Error;

export async function getDisputeAward(
  client: Pick<TollgateClient, "public" | "contracts">,
  { beneficiary }: GetDisputeAwardParameters,
): Promise<GetDisputeAwardReturnType> {
  const address = client.contracts.tollgate;
  const [[amount, claimableAt], claimDelay] = await Promise.all([
    client.public.readContract({ address, abi: tollgateAbi, functionName: "disputeAwardOf", args: [beneficiary] }),
    client.public.readContract({ address, abi: tollgateAbi, functionName: "BOND_WITHDRAWAL_DELAY" }),
  ]);
  return { amount, claimableAt, claimDelay };
}
