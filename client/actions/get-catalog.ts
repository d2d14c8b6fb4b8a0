/**
 * The market as the chain has it: every provider (owner, payout, metadata URI), its models (name, pause, every
 * price epoch with the one in force at chain time and those scheduled after it) and its credit plans (price and
 * value per credit, the models they cover by name, expiry). Names, metadata and plans come from the events
 * (they are not in storage or never change); owners, payouts, pauses and prices from the contract's state at
 * the same block. Browser-safe: viem only.
 */
import type { Address } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { MarketplaceReader, priceEpochAt, type PriceEpoch } from "../../server/chain/marketplace-reader";
import { planActiveAt, planCoversModel } from "../../server/chain/plan-eligibility";
import { eventsNamed, readTollgateEvents, type ReadTollgateEventsParameters } from "../internal/tollgate-events";
import type { TollgateClient } from "../tollgate-client";

export type GetCatalogParameters = ReadTollgateEventsParameters;

export interface CatalogModel {
  modelId: number;
  providerId: number;
  name: string;
  /** The model's bit in its provider's credit plan masks. */
  localIndex: number;
  paused: boolean;
  /** Every price epoch, in order; prices in token base units per million tokens. */
  epochs: PriceEpoch[];
  /** The epoch in force at chain time (null before the first takes effect). */
  current: PriceEpoch | null;
  /** Epochs that take effect after chain time: announced price changes. */
  scheduled: PriceEpoch[];
}

export interface CatalogPlan {
  planId: bigint;
  providerId: number;
  pricePerCredit: bigint;
  valuePerCredit: bigint;
  modelMask: bigint;
  /** The provider's models the plan covers (its mask decoded), by id and name. */
  modelIds: number[];
  models: string[];
  /** Unix seconds; usage served at or after it is not covered. 0: never expires. */
  expiresAt: number;
  expired: boolean;
}

export interface CatalogProvider {
  providerId: number;
  owner: Address;
  payout: Address;
  metadataURI: string;
  models: CatalogModel[];
  plans: CatalogPlan[];
}

export interface GetCatalogReturnType {
  providers: CatalogProvider[];
  /** The block everything was read at, and its time (what "in force", "scheduled" and "expired" are relative to). */
  blockNumber: bigint;
  chainTime: number;
  /** The first block whose logs were read. */
  fromBlock: bigint;
}
/** ChainHistoryLoadError when the RPC fails past its retries or refuses even one block's logs; viem errors otherwise. */
export type GetCatalogErrorType = Error;

export async function getCatalog(client: Pick<TollgateClient, "public" | "contracts">, parameters: GetCatalogParameters = {}): Promise<GetCatalogReturnType> {
  const read = await readTollgateEvents(client, [{ events: ["ProviderRegistered", "ProviderUpdated", "ModelListed", "CreditPlanDefined"] }], parameters);
  const blockNumber = read.toBlock;
  const chainTime = Number((await client.public.getBlock({ blockNumber })).timestamp);
  const reader = new MarketplaceReader(client.public, client.contracts.tollgate);

  const metadata = new Map<number, string>();
  for (const event of read.events) {
    if (event.eventName === "ProviderRegistered" || event.eventName === "ProviderUpdated") metadata.set(event.args.providerId, event.args.metadataURI);
  }
  const listed = eventsNamed(read.events, "ModelListed");
  const providerIds = [...new Set(eventsNamed(read.events, "ProviderRegistered").map((event) => event.args.providerId))];

  const providers = await Promise.all(
    providerIds.map(async (providerId): Promise<CatalogProvider> => {
      const view = await client.public.readContract({ address: client.contracts.tollgate, abi: tollgateAbi, functionName: "providerOf", args: [providerId], blockNumber });
      const models = await Promise.all(
        listed
          .filter((event) => event.args.providerId === providerId)
          .map(async (event): Promise<CatalogModel> => {
            const terms = await reader.modelTerms(event.args.modelId, blockNumber);
            return {
              modelId: event.args.modelId,
              providerId,
              name: event.args.name,
              localIndex: terms.localIndex,
              paused: terms.paused,
              epochs: terms.epochs,
              current: priceEpochAt(terms.epochs, chainTime) ?? null,
              scheduled: terms.epochs.filter((epoch) => epoch.effectiveFrom > chainTime),
            };
          }),
      );
      const plans = eventsNamed(read.events, "CreditPlanDefined")
        .filter((event) => event.args.providerId === providerId)
        .map((event): CatalogPlan => {
          const { planId, pricePerCredit, valuePerCredit, modelMask } = event.args;
          const expiresAt = Number(event.args.expiresAt);
          const covered = models.filter((model) => planCoversModel({ modelMask }, model.localIndex));
          return {
            planId,
            providerId,
            pricePerCredit,
            valuePerCredit,
            modelMask,
            modelIds: covered.map((model) => model.modelId),
            models: covered.map((model) => model.name),
            expiresAt,
            expired: !planActiveAt({ expiresAt }, chainTime),
          };
        });
      return { providerId, owner: view.owner, payout: view.payout, metadataURI: metadata.get(providerId) ?? "", models, plans };
    }),
  );
  return { providers, blockNumber, chainTime, fromBlock: read.fromBlock };
}
