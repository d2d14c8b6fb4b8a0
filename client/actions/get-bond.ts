/** A provider's bond as the chain holds it, and the dispute terms it stands behind. */
import { tollgateAbi } from "../../server/chain/abis";
import type { TollgateClient } from "../tollgate-client";

export interface GetBondParameters {
  providerId: number;
}
export interface GetBondReturnType {
  available: bigint;
  /** Requested for withdrawal; still slashable until withdrawn. */
  pending: bigint;
  /** When the pending bond can be withdrawn (unix seconds; 0 when none is pending). */
  withdrawableAt: bigint;
  /** Seconds a bond withdrawal waits, and seconds after a batch's settlement that a proof is accepted. */
  withdrawalDelay: bigint;
  disputeWindow: bigint;
}
export type GetBondErrorType = Error;

export async function getBond(client: Pick<TollgateClient, "public" | "contracts">, { providerId }: GetBondParameters): Promise<GetBondReturnType> {
  const address = client.contracts.tollgate;
  const [[available, pending, withdrawableAt], withdrawalDelay, disputeWindow] = await Promise.all([
    client.public.readContract({ address, abi: tollgateAbi, functionName: "bondOf", args: [providerId] }),
    client.public.readContract({ address, abi: tollgateAbi, functionName: "BOND_WITHDRAWAL_DELAY" }),
    client.public.readContract({ address, abi: tollgateAbi, functionName: "DISPUTE_WINDOW" }),
  ]);
  return { available, pending, withdrawableAt, withdrawalDelay, disputeWindow };
}
