/**
 * The market as the chain lists it (`getCatalog`: providers with payout and metadata, their models with every
 * price epoch, the one in force and those scheduled, their credit plans), read once per page and again after
 * each confirmed transaction. Used by the Market page and the Funds page's forms.
 */
import { useCallback } from "react";
import { getCatalog, type CatalogPlan, type GetCatalogReturnType } from "../../../client";
import { useApp } from "../app-state";
import { useLoad, type Loaded } from "./use-load";

export type Catalog = GetCatalogReturnType;

export function useCatalog(): Loaded<Catalog> {
  const { client, config } = useApp();
  // Log reads start where the deployment began when config.json says so; else getCatalog finds that block.
  const fromBlock = config.deployBlock ?? undefined;
  const read = useCallback(() => getCatalog(client, { fromBlock: fromBlock === undefined ? undefined : BigInt(fromBlock) }), [client, fromBlock]);
  return useLoad(read, [read]);
}

/** Every provider's plans, in plan order. */
export function allPlans(catalog: Catalog): CatalogPlan[] {
  return catalog.providers.flatMap((provider) => provider.plans).sort((a, b) => (a.planId < b.planId ? -1 : 1));
}
