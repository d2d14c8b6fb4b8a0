/** Caps what one provider may charge the buyer per period; usage beyond it is recorded as shortfall, not charged. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface SetSpendingLimitParameters {
  providerId: number;
  /** Base units per period; 0 is a real limit (the provider may charge nothing). */
  limitPerPeriod: bigint;
  periodSeconds: number;
}
export interface SetSpendingLimitReturnType {
  hash: Hash;
}
/** Reverts: LimitInvalidPeriod, LimitOutOfRange, RegistryUnknownProvider. */
export type SetSpendingLimitErrorType = Error;

export async function setSpendingLimit(client: TollgateClient, { providerId, limitPerPeriod, periodSeconds }: SetSpendingLimitParameters): Promise<SetSpendingLimitReturnType> {
  const { hash } = await sendTransaction(client, `limit provider ${providerId}`, {
    address: client.contracts.tollgate,
    abi: tollgateAbi,
    functionName: "setSpendingLimit",
    args: [providerId, limitPerPeriod, periodSeconds],
  });
  return { hash };
}
