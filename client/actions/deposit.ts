/** Deposits tokens from the wallet into a buyer's vault balance, approving the vault first when needed. */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction, signerOf } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";
import { ensureAllowance } from "./ensure-allowance";

export interface DepositParameters {
  /** Base units of the payment token. */
  amount: bigint;
  /** Whose balance is credited (default: the wallet's own); the wallet pays. */
  buyer?: Address;
}
export interface DepositReturnType {
  hash: Hash;
  /** The approve transaction, when the allowance fell short. */
  approveHash?: Hash;
  /** What the vault credited (less than `amount` for a fee-on-transfer token). */
  credited: bigint;
}
/** Reverts: VaultZeroAmount, VaultZeroAddress, VaultTransferShortfall (a fee-on-transfer token), VaultBalanceOverflow, ERC20InsufficientBalance. */
export type DepositErrorType = Error;

export async function deposit(client: TollgateClient, { amount, buyer }: DepositParameters): Promise<DepositReturnType> {
  const to = buyer ?? signerOf(client, "deposit").address;
  const approved = await ensureAllowance(client, { amount });
  const { hash, receipt } = await sendTransaction(client, "deposit", { address: client.contracts.tollgate, abi: tollgateAbi, functionName: "deposit", args: [to, amount] });
  const credited = eventIn(receipt, tollgateAbi, "Deposited", client.contracts.tollgate)?.args.credited ?? 0n;
  return { hash, approveHash: approved?.hash, credited };
}
