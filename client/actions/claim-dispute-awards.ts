/** Pays the wallet its dispute awards (refunds and penalties from provider bonds) in tokens, once claimable. */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface ClaimDisputeAwardsReturnType {
  hash: Hash;
  /** The whole bucket, paid to `beneficiary`'s wallet (not its vault balance). */
  amount: bigint;
  beneficiary: Address;
}
/**
 * Reverts: DisputeNoAward (nothing to claim), DisputeAwardNotReady (claimable BOND_WITHDRAWAL_DELAY after the
 * latest award; `getDisputeAward` says when). Decoded before anything is signed. Works while the protocol is paused.
 */
export type ClaimDisputeAwardsErrorType = Error;

export async function claimDisputeAwards(client: TollgateClient): Promise<ClaimDisputeAwardsReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, "claim dispute awards", {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "claimDisputeAwards",
    args: [],
  });
  const event = eventIn(receipt, tollgateAbi, "DisputeAwardClaimed", tollgate);
  return { hash, amount: event?.args.amount ?? 0n, beneficiary: event?.args.beneficiary ?? client.wallet!.account.address };
}
