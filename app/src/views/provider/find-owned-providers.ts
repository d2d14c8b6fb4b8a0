/**
 * The providers an address owns, found by reading every provider's owner (`providerOf`). Providers are
 * few and append-only, so one read per provider is cheap; the chain keeps no owner → provider index.
 * TODO(wt-gw): swap for the client's `getProviderByOwner` once it lands.
 */
import { isAddressEqual, type Address } from "viem";
import { tollgateAbi } from "../../../../server/chain/abis";
import type { TollgateClient } from "../../../../client";

export async function findOwnedProviders(client: Pick<TollgateClient, "public" | "contracts">, owner: Address): Promise<number[]> {
  const address = client.contracts.tollgate;
  const count = Number(await client.public.readContract({ address, abi: tollgateAbi, functionName: "providerCount" }));
  const views = await Promise.all(
    Array.from({ length: count }, (_, index) => client.public.readContract({ address, abi: tollgateAbi, functionName: "providerOf", args: [index + 1] })),
  );
  return views.flatMap((view, index) => (isAddressEqual(view.owner, owner) ? [index + 1] : []));
}
