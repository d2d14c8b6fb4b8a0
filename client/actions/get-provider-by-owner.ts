/**
 * The provider id(s) an address owns, from `ProviderRegistered` (owner is indexed, so one filtered log query)
 * checked against `providerOf` at the same block: the provider page's "is this wallet a provider?".
 * Browser-safe: viem only.
 */
import { getAddress, type Address } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventsNamed, readTollgateEvents, topicOfAddress, type ReadTollgateEventsParameters } from "../internal/tollgate-events";
import type { TollgateClient } from "../tollgate-client";

export interface GetProviderByOwnerParameters extends ReadTollgateEventsParameters {
  owner: Address;
}
/** Null when the address owns no provider; else the first it registered and all of them, in registration order. */
export type GetProviderByOwnerReturnType = { providerId: number; providerIds: number[] } | null;
export type GetProviderByOwnerErrorType = Error;

export async function getProviderByOwner(client: Pick<TollgateClient, "public" | "contracts">, { owner, ...parameters }: GetProviderByOwnerParameters): Promise<GetProviderByOwnerReturnType> {
  const wanted = getAddress(owner);
  const read = await readTollgateEvents(client, [{ events: ["ProviderRegistered"], topics: [null, topicOfAddress(wanted)] }], parameters);
  const candidates = eventsNamed(read.events, "ProviderRegistered").map((event) => event.args.providerId);
  const owned: number[] = [];
  for (const providerId of candidates) {
    const view = await client.public.readContract({ address: client.contracts.tollgate, abi: tollgateAbi, functionName: "providerOf", args: [providerId], blockNumber: read.toBlock });
    if (getAddress(view.owner) === wanted) owned.push(providerId);
  }
  return owned.length === 0 ? null : { providerId: owned[0], providerIds: owned };
}
