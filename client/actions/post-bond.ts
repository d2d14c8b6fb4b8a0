/** Adds to a provider's bond from the wallet (anyone may), approving the vault first when needed. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";
import { ensureAllowance } from "./ensure-allowance";

export interface PostBondParameters {
  providerId: number;
  /** Base units of the payment token. */
  amount: bigint;
}
export interface PostBondReturnType {
  hash: Hash;
  /** The approve transaction, when the allowance fell short. */
  approveHash?: Hash;
  /** What the bond grew by (less than `amount` for a fee-on-transfer token). */
  posted: bigint;
}
/** Reverts: BondZeroAmount, RegistryUnknownProvider, BondOverflow, VaultTransferShortfall, ERC20InsufficientBalance. */
export type PostBondErrorType = Error;

export async function postBond(client: TollgateClient, { providerId, amount }: PostBondParameters): Promise<PostBondReturnType> {
  const { tollgate } = client.contracts;
  const approved = await ensureAllowance(client, { amount });
  const { hash, receipt } = await sendTransaction(client, `post a bond for provider ${providerId}`, {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "postBond",
    args: [providerId, amount],
  });
  const posted = eventIn(receipt, tollgateAbi, "BondPosted", tollgate)?.args.amount ?? 0n;
  return { hash, approveHash: approved?.hash, posted };
}
