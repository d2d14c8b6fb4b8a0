/**
 * The market as the chain lists it: providers (payout, metadata), their models (names, paused, every price
 * epoch) and credit plans, read with one hook by the Market page and the Funds page's forms.
 *
 * TEMPORARY READER: `getCatalog` (client/actions, branch wt-gw) replaces `readCatalog` below when it lands;
 * the `Catalog` shape and the helpers under it stay, so the pages do not change.
 */
import { useCallback } from "react";
import type { Address } from "viem";
import { tollgateAbi } from "../../../server/chain/abis";
import { chainTime, type TollgateClient } from "../../../client";
import { useApp } from "../app-state";
import { useLoad, type Loaded } from "./use-load";

export interface CatalogPriceEpoch {
  index: number;
  /** Unix seconds (chain time). */
  effectiveFrom: number;
  input: bigint;
  cachedInput: bigint;
  output: bigint;
}
export interface CatalogProvider {
  providerId: number;
  owner: Address;
  payout: Address;
  metadataUri: string;
}
export interface CatalogModel {
  modelId: number;
  providerId: number;
  /** Its bit in a credit plan's model mask. */
  localIndex: number;
  name: string;
  paused: boolean;
  epochs: CatalogPriceEpoch[];
}
export interface CatalogPlan {
  planId: bigint;
  providerId: number;
  pricePerCredit: bigint;
  valuePerCredit: bigint;
  modelMask: bigint;
  /** Unix seconds; 0: never. */
  expiresAt: number;
}
export interface Catalog {
  /** The chain's clock when read: what "in force now" and "expired" are judged by. */
  chainTime: bigint;
  providers: CatalogProvider[];
  models: CatalogModel[];
  plans: CatalogPlan[];
}

async function readCatalog(client: TollgateClient): Promise<Catalog> {
  const read = { address: client.contracts.tollgate, abi: tollgateAbi } as const;
  const [now, providerCount, modelCount, planCount, registered, updated, listed] = await Promise.all([
    chainTime(client),
    client.public.readContract({ ...read, functionName: "providerCount" }),
    client.public.readContract({ ...read, functionName: "modelCount" }),
    client.public.readContract({ ...read, functionName: "creditPlanCount" }),
    client.public.getContractEvents({ ...read, eventName: "ProviderRegistered", fromBlock: 0n }),
    client.public.getContractEvents({ ...read, eventName: "ProviderUpdated", fromBlock: 0n }),
    client.public.getContractEvents({ ...read, eventName: "ModelListed", fromBlock: 0n }),
  ]);
  const metadata = new Map<number, string>();
  for (const event of [...registered, ...updated].sort((a, b) => Number(a.blockNumber - b.blockNumber) || a.logIndex - b.logIndex)) metadata.set(event.args.providerId!, event.args.metadataURI!);
  const names = new Map(listed.map((event) => [event.args.modelId!, event.args.name!]));
  const providers = await Promise.all(
    Array.from({ length: Number(providerCount) }, async (_, i) => {
      const providerId = i + 1;
      const view = await client.public.readContract({ ...read, functionName: "providerOf", args: [providerId] });
      return { providerId, owner: view.owner, payout: view.payout, metadataUri: metadata.get(providerId) ?? "" };
    }),
  );
  const models = await Promise.all(
    Array.from({ length: Number(modelCount) }, async (_, i) => {
      const modelId = i + 1;
      const view = await client.public.readContract({ ...read, functionName: "modelOf", args: [modelId] });
      const epochs = await Promise.all(
        Array.from({ length: Number(view.epochCount) }, async (_, index) => {
          const epoch = await client.public.readContract({ ...read, functionName: "priceEpochOf", args: [modelId, BigInt(index)] });
          return { index, effectiveFrom: epoch.effectiveFrom, input: epoch.input, cachedInput: epoch.cachedInput, output: epoch.output };
        }),
      );
      return { modelId, providerId: view.providerId, localIndex: view.localIndex, name: names.get(modelId) ?? `model ${modelId}`, paused: view.paused, epochs };
    }),
  );
  const plans = await Promise.all(
    Array.from({ length: Number(planCount) }, async (_, i) => {
      const planId = BigInt(i + 1);
      const plan = await client.public.readContract({ ...read, functionName: "creditPlanOf", args: [planId] });
      return { planId, providerId: plan.providerId, pricePerCredit: plan.pricePerCredit, valuePerCredit: plan.valuePerCredit, modelMask: plan.modelMask, expiresAt: plan.expiresAt };
    }),
  );
  return { chainTime: now, providers, models, plans };
}

export function useCatalog(): Loaded<Catalog> {
  const { client } = useApp();
  const read = useCallback(() => readCatalog(client), [client]);
  return useLoad(read, [read]);
}

/** The epoch in force at `now` (the last one started), and those scheduled after it. */
export function pricesAt(model: CatalogModel, now: bigint): { current?: CatalogPriceEpoch; scheduled: CatalogPriceEpoch[] } {
  const started = model.epochs.filter((epoch) => BigInt(epoch.effectiveFrom) <= now);
  return { current: started[started.length - 1], scheduled: model.epochs.filter((epoch) => BigInt(epoch.effectiveFrom) > now) };
}

/** The models a plan's mask covers (bit i = the provider's model with local index i). */
export function modelsOfPlan(catalog: Pick<Catalog, "models">, plan: Pick<CatalogPlan, "providerId" | "modelMask">): CatalogModel[] {
  return catalog.models.filter((model) => model.providerId === plan.providerId && ((plan.modelMask >> BigInt(model.localIndex)) & 1n) === 1n);
}

export function planExpired(plan: Pick<CatalogPlan, "expiresAt">, now: bigint): boolean {
  return plan.expiresAt !== 0 && BigInt(plan.expiresAt) <= now;
}
