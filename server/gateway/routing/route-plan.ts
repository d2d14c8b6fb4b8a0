/**
 * Which models a call to an alias may go to, in the order to try them: the candidates whose tier meets what
 * the request needs, that the API key may use, that are on sale with a price in force and can produce the
 * `max_tokens` asked, cheapest first. Cheapest means the smallest reservation, i.e. the most the call could
 * cost at each model's prices in force (the prompt at its input price plus every output token it may produce
 * at its output price): integers, the same figure the meter reserves. The rest of the order is the fallback
 * order when a model server fails.
 */
import { priceEpochAt } from "../../chain/marketplace-reader";
import type { ApiKeyRecord } from "../../store/usage-store";
import type { GatewayContext } from "../context";
import { GatewayError, invalidRequest } from "../errors";
import type { ModelOnSale } from "../marketplace-state";
import { reservationCost } from "../metering/reservation-cost";
import { MIN_TIER_HEADER } from "../http/min-tier-hint";
import { minTierFor } from "./min-tier";
import { REASONING_EFFORTS, tierLabel, type ReasoningEffort, type RoutingPolicy } from "./routing-config";

export interface RouteAttempt {
  model: ModelOnSale;
  /** The prompt counted with this model's encoding. */
  promptTokens: number;
  /** Output tokens per choice this attempt reserves and asks the upstream for at most. */
  maxTokens: number;
  /** The worst-case cost that ranked it. */
  reservation: bigint;
}

export interface RoutePlan {
  alias: string;
  reason: string;
  tier: number;
  /** Cheapest first; the first is served unless its upstream fails. */
  attempts: RouteAttempt[];
  policyModels: ModelOnSale[];
}

export interface RoutedRequest {
  messages: Record<string, unknown>[];
  tools: unknown[] | undefined;
  reasoningEffort: unknown;
  /** `max_completion_tokens ?? max_tokens`, if the buyer set one. */
  maxTokens: number | undefined;
  choices: number;
  /** The buyer's `x-tollgate-min-tier`, resolved. */
  hint: number | undefined;
}

export async function planRoute(ctx: GatewayContext, levels: readonly string[], policy: RoutingPolicy, key: ApiKeyRecord, request: RoutedRequest): Promise<RoutePlan> {
  const tierOf = new Map(policy.candidates.map((candidate) => [candidate.name, candidate.tier]));
  const policyModels = policy.candidates.map((candidate) => ctx.state.model(candidate.name)).filter((model): model is ModelOnSale => model !== undefined);

  if (request.hint !== undefined) {
    if (!policy.honorHint) throw invalidRequest(`The model \`${policy.alias}\` does not take a ${MIN_TIER_HEADER} hint; call a model by its name instead.`, MIN_TIER_HEADER, "invalid_min_tier");
    if (request.hint > policy.maxTier) {
      throw invalidRequest(
        `${MIN_TIER_HEADER} asks for tier ${tierLabel(request.hint, levels)}, but \`${policy.alias}\` routes to tiers up to ${tierLabel(policy.maxTier, levels)}.`,
        MIN_TIER_HEADER,
        "invalid_min_tier",
      );
    }
  }

  // Candidates may tokenize differently: count once per encoding, and let the prompt rule see the largest count.
  const promptTokens = new Map<string, number>();
  for (const model of policyModels) {
    const encoding = model.config.encoding;
    if (promptTokens.has(encoding)) continue;
    const count =
      ctx.tokenizer.countChatPromptSync(encoding, request.messages, request.tools) ?? (await ctx.tokenizer.countChatPrompt(encoding, request.messages, request.tools));
    promptTokens.set(encoding, count);
  }
  const effort = REASONING_EFFORTS.includes(request.reasoningEffort as ReasoningEffort) ? (request.reasoningEffort as ReasoningEffort) : undefined;
  const { tier, reason } = minTierFor(policy, {
    promptTokens: Math.max(...promptTokens.values()),
    tools: Array.isArray(request.tools) && request.tools.length > 0,
    reasoningEffort: effort,
    hint: request.hint,
  });

  const now = ctx.state.now();
  const attempts: RouteAttempt[] = [];
  const excluded: { name: string; why: "key" | "max_tokens" | "unavailable"; detail: string }[] = [];
  for (const model of policyModels) {
    const name = model.config.name;
    if (tierOf.get(name)! < tier) continue;
    if (key.models && !key.models.includes(name)) {
      excluded.push({ name, why: "key", detail: `API key ${key.id} may not use it` });
      continue;
    }
    if (request.maxTokens !== undefined && request.maxTokens > model.config.maxOutputTokens) {
      excluded.push({ name, why: "max_tokens", detail: `it produces at most ${model.config.maxOutputTokens} tokens per choice` });
      continue;
    }
    const epoch = priceEpochAt(model.terms.epochs, now);
    if (model.terms.paused || !epoch) {
      excluded.push({ name, why: "unavailable", detail: model.terms.paused ? "paused by its provider" : "no price in force yet" });
      continue;
    }
    const prompt = promptTokens.get(model.config.encoding)!;
    const maxTokens = request.maxTokens ?? model.config.maxOutputTokens;
    attempts.push({ model, promptTokens: prompt, maxTokens, reservation: reservationCost(epoch, prompt, maxTokens * request.choices).amount });
  }
  // Array.prototype.sort is stable: equal costs keep the provider's order.
  attempts.sort((a, b) => (a.reservation < b.reservation ? -1 : a.reservation > b.reservation ? 1 : 0));

  if (attempts.length === 0) {
    const why = excluded.map((entry) => `\`${entry.name}\`: ${entry.detail}`).join("; ");
    const message = `No model behind \`${policy.alias}\` can serve this call at tier ${tierLabel(tier, levels)} (${reason}): ${why}.`;
    if (excluded.every((entry) => entry.why === "key")) throw new GatewayError(403, "permission_error", message, "model_not_allowed", "model");
    if (excluded.every((entry) => entry.why !== "unavailable")) {
      throw invalidRequest(message, request.maxTokens !== undefined ? "max_tokens" : "model", "max_tokens_too_large");
    }
    throw new GatewayError(503, "server_error", message, "model_paused", "model", { "retry-after": "60" });
  }
  return { alias: policy.alias, reason, tier, attempts, policyModels };
}
