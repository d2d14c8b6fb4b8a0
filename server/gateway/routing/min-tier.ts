/**
 * The least tier a request needs under a policy, and the rule that set it: the policy's floor, raised by
 * whichever of its rules the request meets (prompt length, tools offered, reasoning effort asked, the
 * buyer's hint). The highest wins; on a tie the rule met first in that order keeps it, so the reason
 * names the rule that actually decided rather than one that merely agreed.
 */
import type { ReasoningEffort, RoutingPolicy } from "./routing-config";

export interface RequestTraits {
  /** The prompt's tokens as the gateway counts them before reserving. */
  promptTokens: number;
  /** The request offers tools. */
  tools: boolean;
  reasoningEffort: ReasoningEffort | undefined;
  /** The buyer's `x-tollgate-min-tier`, resolved to an integer. */
  hint: number | undefined;
}

export interface MinTier {
  tier: number;
  /** "default", "prompt_tokens>=N", "tools", "reasoning_effort=high" or "hint": what the headers and the receipt say. */
  reason: string;
}

export function minTierFor(policy: RoutingPolicy, traits: RequestTraits): MinTier {
  let decided: MinTier = { tier: policy.minTier, reason: "default" };
  const raise = (tier: number | undefined, reason: string) => {
    if (tier !== undefined && tier > decided.tier) decided = { tier, reason };
  };
  for (const rule of policy.promptTokens) if (traits.promptTokens >= rule.atLeast) raise(rule.tier, `prompt_tokens>=${rule.atLeast}`);
  if (traits.tools) raise(policy.tools, "tools");
  if (traits.reasoningEffort) raise(policy.reasoningEffort[traits.reasoningEffort], `reasoning_effort=${traits.reasoningEffort}`);
  raise(traits.hint, "hint");
  return decided;
}
