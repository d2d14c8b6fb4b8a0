/**
 * The provider's routing declaration, from the gateway config's `routing` section: a tier per chat model (an
 * integer, or a level named in `levels`, lowest first) and policies that map an alias a buyer may call
 * (`auto`, or any name the provider picks) to candidate models and the rules that set the least tier a request
 * needs. Checked once at start-up, so a typo in a policy stops the gateway with a message instead of sending
 * buyers to a model nobody meant.
 *
 *   "routing": {
 *     "levels": ["small", "large"],
 *     "tiers": { "small-model": "small", "large-model": "large" },
 *     "policies": {
 *       "auto": {
 *         "candidates": ["small-model", "large-model"],
 *         "rules": { "promptTokens": [{ "atLeast": 2000, "tier": "large" }], "tools": "large", "reasoningEffort": { "high": "large" } }
 *       }
 *     }
 *   }
 */
import { z } from "zod";

/** The OpenAI `reasoning_effort` values a rule may name. */
export const REASONING_EFFORTS = ["minimal", "low", "medium", "high"] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];

const MAX_TIER = 1_000;
const tierSchema = z.union([z.number().int().min(0).max(MAX_TIER), z.string().min(1).max(32)]);
type TierValue = z.infer<typeof tierSchema>;

const policySchema = z.strictObject({
  /** The models this alias may serve. Ties in cost go to the one listed first. */
  candidates: z.array(z.string().min(1)).min(1, "list at least one candidate model"),
  /** The least tier of any call to this alias (default: the lowest). */
  minTier: tierSchema.optional(),
  rules: z
    .strictObject({
      /** A prompt of at least `atLeast` tokens needs `tier`. */
      promptTokens: z.array(z.strictObject({ atLeast: z.number().int().positive(), tier: tierSchema })).default([]),
      /** A request that offers tools needs this tier. */
      tools: tierSchema.optional(),
      /** A request asking for this `reasoning_effort` needs the tier given. */
      reasoningEffort: z.partialRecord(z.enum(REASONING_EFFORTS), tierSchema).default({}),
      /** Whether a buyer may raise the tier with the `x-tollgate-min-tier` header (it can never lower it). */
      honorHint: z.boolean().default(true),
    })
    .prefault({}),
});

export const routingSchema = z.strictObject({
  /** Names for tiers, lowest first: "small" is tier 0 in ["small", "large"]. Optional: tiers may be plain integers. */
  levels: z.array(z.string().regex(/^[A-Za-z][\w-]{0,31}$/, "a letter, then letters, digits, _ or -")).default([]),
  /** Each routed model's tier: an integer, or a name from `levels`. */
  tiers: z.record(z.string(), tierSchema).default({}),
  /** Alias → policy. An alias is called as a model name, so it follows the same spelling. */
  policies: z.record(z.string().regex(/^[\w.:/-]{1,64}$/, "letters, digits and . _ : / - only"), policySchema).default({}),
});

export type RoutingFileConfig = z.infer<typeof routingSchema>;

/** One policy with every tier resolved to an integer. */
export interface RoutingPolicy {
  alias: string;
  /** In the provider's order (the tie-break between equal costs). */
  candidates: readonly { name: string; tier: number }[];
  minTier: number;
  /** Highest threshold first, so the first match is the one that decides. */
  promptTokens: readonly { atLeast: number; tier: number }[];
  tools: number | undefined;
  reasoningEffort: Partial<Record<ReasoningEffort, number>>;
  honorHint: boolean;
  /** The highest tier any candidate has: a request needing more cannot be served. */
  maxTier: number;
}

export interface CompiledRouting {
  levels: readonly string[];
  policies: ReadonlyMap<string, RoutingPolicy>;
}

export interface RoutingProblem {
  path: (string | number)[];
  message: string;
}

/** A tier as a buyer or a config spells it (an integer, or a level's name) → its integer, or undefined. */
export function parseTier(value: string | number, levels: readonly string[]): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 && value <= MAX_TIER && (levels.length === 0 || value < levels.length) ? value : undefined;
  if (/^\d{1,4}$/.test(value)) return parseTier(Number(value), levels);
  const index = levels.indexOf(value);
  return index < 0 ? undefined : index;
}

/** How a tier reads in messages: its level name when it has one. */
export function tierLabel(tier: number, levels: readonly string[]): string {
  return levels[tier] !== undefined ? `${tier} (${levels[tier]})` : String(tier);
}

/**
 * Resolves the declaration against the configured models and lists every problem with its path: an unknown
 * model, an alias that shadows a model's name, a candidate without a tier, a rule no candidate can meet.
 */
export function compileRouting(
  raw: RoutingFileConfig | undefined,
  models: readonly { name: string; kind: "chat" | "embeddings" }[],
): { routing: CompiledRouting; problems: RoutingProblem[] } {
  const problems: RoutingProblem[] = [];
  const policies = new Map<string, RoutingPolicy>();
  if (!raw) return { routing: { levels: [], policies }, problems };
  const levels = raw.levels;
  const known = new Map(models.map((model) => [model.name, model.kind]));
  const have = `have: ${[...known].filter(([, kind]) => kind === "chat").map(([name]) => name).join(", ")}`;

  levels.forEach((level, index) => {
    if (levels.indexOf(level) !== index) problems.push({ path: ["routing", "levels", index], message: `duplicate level "${level}"` });
  });
  const resolve = (value: TierValue, path: (string | number)[]): number | undefined => {
    const tier = parseTier(value, levels);
    if (tier === undefined) {
      problems.push({
        path,
        message:
          typeof value === "string" && !/^\d+$/.test(value)
            ? `unknown tier level "${value}"; declare it under routing.levels (have: ${levels.join(", ") || "none"})`
            : `tier ${value} is out of range: use 0 to ${levels.length > 0 ? levels.length - 1 : MAX_TIER}`,
      });
    }
    return tier;
  };

  const tiers = new Map<string, number>();
  for (const [name, value] of Object.entries(raw.tiers)) {
    const path = ["routing", "tiers", name];
    if (!known.has(name)) problems.push({ path, message: `unknown model "${name}"; list it under "models" first (${have})` });
    else if (known.get(name) !== "chat") problems.push({ path, message: `"${name}" is an embeddings model; only chat models are routed` });
    const tier = resolve(value, path);
    if (tier !== undefined) tiers.set(name, tier);
  }

  for (const [alias, policy] of Object.entries(raw.policies)) {
    const at = (...rest: (string | number)[]) => ["routing", "policies", alias, ...rest];
    if (known.has(alias)) {
      problems.push({ path: at(), message: `the alias "${alias}" shadows the model of that name, which buyers could then no longer call; name the alias otherwise` });
    }
    const candidates: { name: string; tier: number }[] = [];
    policy.candidates.forEach((name, index) => {
      if (!known.has(name)) return problems.push({ path: at("candidates", index), message: `unknown model "${name}" (${have})` });
      if (known.get(name) !== "chat") return problems.push({ path: at("candidates", index), message: `"${name}" is an embeddings model; only chat models are routed` });
      if (policy.candidates.indexOf(name) !== index) return problems.push({ path: at("candidates", index), message: `"${name}" is listed twice` });
      const tier = tiers.get(name);
      if (tier === undefined) {
        if (!(name in raw.tiers)) problems.push({ path: at("candidates", index), message: `"${name}" has no tier; give it one under routing.tiers` });
        return;
      }
      candidates.push({ name, tier });
    });
    const maxTier = Math.max(-1, ...candidates.map((candidate) => candidate.tier));
    // A rule asking for more than every candidate has would refuse every call it matches: say so now.
    const reachable = (value: TierValue, path: (string | number)[]): number => {
      const tier = resolve(value, path);
      if (tier === undefined) return 0;
      if (candidates.length === policy.candidates.length && tier > maxTier) {
        problems.push({ path, message: `no candidate of "${alias}" reaches tier ${tierLabel(tier, levels)}; the highest is ${tierLabel(maxTier, levels)}` });
      }
      return tier;
    };
    const { rules } = policy;
    const reasoningEffort: Partial<Record<ReasoningEffort, number>> = {};
    for (const effort of REASONING_EFFORTS) {
      const value = rules.reasoningEffort[effort];
      if (value !== undefined) reasoningEffort[effort] = reachable(value, at("rules", "reasoningEffort", effort));
    }
    policies.set(alias, {
      alias,
      candidates,
      minTier: policy.minTier === undefined ? 0 : reachable(policy.minTier, at("minTier")),
      promptTokens: rules.promptTokens
        .map((rule, index) => ({ atLeast: rule.atLeast, tier: reachable(rule.tier, at("rules", "promptTokens", index, "tier")) }))
        .sort((a, b) => b.atLeast - a.atLeast),
      tools: rules.tools === undefined ? undefined : reachable(rules.tools, at("rules", "tools")),
      reasoningEffort,
      honorHint: rules.honorHint,
      maxTier,
    });
  }
  return { routing: { levels, policies }, problems };
}
