/** Where a Tollgate's subscriptions contract lives: Tollgate deploys it and names it (`subscriptions()`). */
import type { Address } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { TollgateClient } from "../tollgate-client";

export async function subscriptionsAddress(client: Pick<TollgateClient, "public" | "contracts">): Promise<Address> {
  return client.public.readContract({ address: client.contracts.tollgate, abi: tollgateAbi, functionName: "subscriptions" });
}
