/**
 * The buyer's `x-tollgate-min-tier` header: the least tier a routed call may be served at, as an integer or
 * one of the provider's level names. It can only raise what the policy's rules ask, never lower it, so a buyer
 * who sends it pays for a larger model and nothing else changes. A value that is neither gets a 400.
 */
import type { IncomingHttpHeaders } from "node:http";
import { parseTier } from "../routing/routing-config";
import { invalidRequest } from "../errors";

export const MIN_TIER_HEADER = "x-tollgate-min-tier";

export function minTierHint(headers: IncomingHttpHeaders, levels: readonly string[]): number | undefined {
  const value = headers[MIN_TIER_HEADER];
  if (value === undefined) return undefined;
  const tier = typeof value === "string" ? parseTier(value.trim(), levels) : undefined;
  if (tier === undefined) {
    const allowed = levels.length > 0 ? `one of ${levels.map((level, index) => `${level} (${index})`).join(", ")}` : "a non-negative integer";
    throw invalidRequest(`The ${MIN_TIER_HEADER} header must be ${allowed}.`, MIN_TIER_HEADER, "invalid_min_tier");
  }
  return tier;
}
