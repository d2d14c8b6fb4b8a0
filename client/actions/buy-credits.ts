/** Buys credits of a provider's plan (ERC-1155, transferable), paid from the wallet or from the vault balance. */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction, signerOf } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";
import { ensureAllowance } from "./ensure-allowance";

export interface BuyCreditsParameters {
  planId: bigint;
  /** Whole credits. */
  count: bigint;
  /** "wallet" (approves the vault for the exact price first when needed) or "balance" (no token transfer). */
  payFrom: "wallet" | "balance";
  /** Who receives the credits (default: the wallet). */
  recipient?: Address;
}
export interface BuyCreditsReturnType {
  hash: Hash;
  approveHash?: Hash;
  /** Base units paid. */
  paid: bigint;
}
/** Reverts: CreditsUnknownPlan, CreditsPlanExpired, CreditsAmountOutOfRange, VaultZeroAmount, VaultInsufficientBalance, ERC20InsufficientBalance. */
export type BuyCreditsErrorType = Error;

export async function buyCredits(client: TollgateClient, { planId, count, payFrom, recipient }: BuyCreditsParameters): Promise<BuyCreditsReturnType> {
  const to = recipient ?? signerOf(client, "buyCredits").address;
  const { tollgate } = client.contracts;
  let approveHash: Hash | undefined;
  if (payFrom === "wallet") {
    const plan = await client.public.readContract({ address: tollgate, abi: tollgateAbi, functionName: "creditPlanOf", args: [planId] });
    approveHash = (await ensureAllowance(client, { amount: plan.pricePerCredit * count }))?.hash;
  }
  const functionName = payFrom === "balance" ? "buyCreditsWithBalance" : "buyCredits";
  const { hash, receipt } = await sendTransaction(client, `buy ${count} credits of plan ${planId}`, { address: tollgate, abi: tollgateAbi, functionName, args: [planId, count, to] });
  const paid = eventIn(receipt, tollgateAbi, "CreditsPurchased", tollgate)?.args.paid ?? 0n;
  return { hash, approveHash, paid };
}
