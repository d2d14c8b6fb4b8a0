/** Approves the vault for exactly what a deposit or purchase needs when the allowance falls short. */
import { testUsdAbi } from "../../server/chain/abis";
import { sendTransaction, signerOf } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface EnsureAllowanceParameters {
  /** Base units the vault must be allowed to pull. */
  amount: bigint;
}
/** The approve transaction, or undefined when the allowance already covers the amount. */
export type EnsureAllowanceReturnType = { hash: `0x${string}` } | undefined;

/**
 * Exact rather than unlimited, so no standing allowance outlives the action. Needed only by tokens without
 * a permit; `depositWithPermit` signs instead.
 */
export async function ensureAllowance(client: TollgateClient, { amount }: EnsureAllowanceParameters): Promise<EnsureAllowanceReturnType> {
  const owner = signerOf(client, "approve").address;
  const { paymentToken, tollgate } = client.contracts;
  const allowance = await client.public.readContract({ address: paymentToken, abi: testUsdAbi, functionName: "allowance", args: [owner, tollgate] });
  if (allowance >= amount) return undefined;
  const { hash } = await sendTransaction(client, "approve the vault", { address: paymentToken, abi: testUsdAbi, functionName: "approve", args: [tollgate, amount] });
  return { hash };
}
