/** The payment token's address, symbol and decimals: what every amount shown to a person is formatted with. */
import type { Address } from "viem";
import { testUsdAbi } from "../../server/chain/abis";
import type { TollgateClient } from "../tollgate-client";

export interface GetPaymentTokenReturnType {
  address: Address;
  symbol: string;
  decimals: number;
}
export type GetPaymentTokenErrorType = Error;

export async function getPaymentToken(client: TollgateClient): Promise<GetPaymentTokenReturnType> {
  const address = client.contracts.paymentToken;
  const [decimals, symbol] = await Promise.all([
    client.public.readContract({ address, abi: testUsdAbi, functionName: "decimals" }),
    // Some tokens (old MKR) return bytes32 or nothing for symbol(); amounts still read right without it.
    client.public.readContract({ address, abi: testUsdAbi, functionName: "symbol" }).catch(() => "tokens"),
  ]);
  return { address, symbol, decimals: Number(decimals) };
}
