/**
 * Everything the Funds page reads for one buyer, re-read after each confirmed transaction: the chain's
 * position (wallet, vault, credits, withdrawal, limits), the market (plans and models, for names and the
 * buy form), what the token can do (permit, faucet), and any dispute award.
 */
import { useCallback } from "react";
import type { Address } from "viem";
import { getBuyerPosition, getDisputeAward, getTokenCapabilities } from "../../../../client";
import { useApp } from "../../app-state";
import { useCatalog } from "../../lib/catalog";
import { useLoad } from "../../lib/use-load";

export function useFunds(buyer: Address) {
  const { client } = useApp();
  const position = useLoad(
    useCallback(() => getBuyerPosition(client, { buyer }), [client, buyer]),
    [client, buyer],
  );
  const catalog = useCatalog();
  // What the token can do does not change with each transaction, but reading it again is two cheap calls.
  const capabilities = useLoad(
    useCallback(() => getTokenCapabilities(client, { owner: buyer }), [client, buyer]),
    [client, buyer],
  );
  const award = useLoad(
    useCallback(() => getDisputeAward(client, { beneficiary: buyer }), [client, buyer]),
    [client, buyer],
  );
  return { position, catalog, capabilities, award };
}
export type Funds = ReturnType<typeof useFunds>;
