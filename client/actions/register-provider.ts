/** Registers the wallet as a provider: it owns the provider, `payout` receives its earnings. */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { eventIn, sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface RegisterProviderParameters {
  payout: Address;
  /** Where buyers read about the provider (kept in the event, not in storage). */
  metadataUri: string;
}
export interface RegisterProviderReturnType {
  hash: Hash;
  providerId: number;
}
/** Reverts: RegistryZeroAddress. */
export type RegisterProviderErrorType = Error;

export async function registerProvider(client: TollgateClient, { payout, metadataUri }: RegisterProviderParameters): Promise<RegisterProviderReturnType> {
  const { tollgate } = client.contracts;
  const { hash, receipt } = await sendTransaction(client, "register the provider", { address: tollgate, abi: tollgateAbi, functionName: "registerProvider", args: [payout, metadataUri] });
  const event = eventIn(receipt, tollgateAbi, "ProviderRegistered", tollgate);
  if (!event) throw new Error(`registerProvider ${hash} emitted no ProviderRegistered event`);
  return { hash, providerId: event.args.providerId };
}
