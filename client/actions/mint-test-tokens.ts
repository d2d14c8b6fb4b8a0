/** The test token's faucet: anyone may mint TestUSD, so a buyer on a fresh local chain has something to deposit. */
import type { Address, Hash } from "viem";
import { testUsdAbi } from "../../server/chain/abis";
import { sendTransaction, signerOf } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface MintTestTokensParameters {
  amount: bigint;
  /** Default: the wallet. */
  to?: Address;
}
export interface MintTestTokensReturnType {
  hash: Hash;
}
/** Reverts on any token but the test token (it has no `mint`). */
export type MintTestTokensErrorType = Error;

export async function mintTestTokens(client: TollgateClient, { amount, to }: MintTestTokensParameters): Promise<MintTestTokensReturnType> {
  const recipient = to ?? signerOf(client, "mint").address;
  const { hash } = await sendTransaction(client, "mint test tokens", { address: client.contracts.paymentToken, abi: testUsdAbi, functionName: "mint", args: [recipient, amount] });
  return { hash };
}
