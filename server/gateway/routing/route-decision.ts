/**
 * What a routed call keeps with its record: the alias, the rule that chose the tier, how many candidates
 * failed before it, and what the dearest model of the policy would have charged for the very counts this call
 * was billed, each at its own price in force when the call was served. The difference is what routing saved.
 */
import { priceEpochAt } from "../../chain/marketplace-reader";
import { recordCost, type TokenCounts } from "../../chain/pricing";
import type { RoutingDecision } from "../../store/routing-decisions";
import type { ModelOnSale } from "../marketplace-state";

/** The route a reserved call took, carried on `ReservedCall.route` until its record is written. */
export interface RouteTaken {
  alias: string;
  reason: string;
  /** Candidates tried before this one; each failed upstream and was released uncharged. */
  fallbacks: number;
  /** Every candidate of the policy, whatever its tier: the dearest of them is the comparison. */
  policyModels: readonly ModelOnSale[];
}

export function routingDecision(route: RouteTaken, counts: TokenCounts, servedAt: number): RoutingDecision {
  let dearestModel = "";
  let dearestCost = -1n;
  for (const model of route.policyModels) {
    const epoch = priceEpochAt(model.terms.epochs, servedAt);
    // A candidate with no price yet could not have served this call: it is no comparison.
    if (!epoch) continue;
    const cost = recordCost(counts, epoch);
    if (cost > dearestCost) {
      dearestCost = cost;
      dearestModel = model.config.name;
    }
  }
  // The model that served is a candidate with a price in force, so the loop found at least that one.
  return { alias: route.alias, reason: route.reason, dearestModel, dearestCost, fallbacks: route.fallbacks };
}
