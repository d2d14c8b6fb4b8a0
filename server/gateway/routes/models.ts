/**
 * `GET /v1/models` and `GET /v1/models/:id`: the models on sale, in OpenAI's list shape, with the
 * on-chain prices in force now and any scheduled change (per million tokens, in payment-token base units).
 *
 * The provider's aliases (`auto`, …) are listed beside them under `aliases`, not in `data`: they are not models
 * a key can be scoped to, and clients that read `data` as models on sale keep doing so. `GET /v1/models/auto`
 * describes one alias.
 */
import type { Request, Response } from "express";
import { priceEpochAt } from "../../chain/marketplace-reader";
import type { GatewayContext } from "../context";
import { modelNotFound } from "../errors";
import type { ModelOnSale } from "../marketplace-state";
import type { RoutingPolicy } from "../routing/routing-config";

function describe(ctx: GatewayContext, model: ModelOnSale, now: number) {
  const current = priceEpochAt(model.terms.epochs, now);
  const scheduled = model.terms.epochs.filter((epoch) => epoch.effectiveFrom > now);
  const prices = (epoch: { input: bigint; cachedInput: bigint; output: bigint }) => ({
    input_per_million: epoch.input.toString(),
    cached_input_per_million: epoch.cachedInput.toString(),
    output_per_million: epoch.output.toString(),
  });
  return {
    id: model.config.name,
    object: "model",
    created: current?.effectiveFrom ?? 0,
    owned_by: `provider-${model.terms.providerId}`,
    tollgate: {
      kind: model.config.kind,
      model_id: model.terms.modelId,
      provider_id: model.terms.providerId,
      paused: model.terms.paused,
      max_output_tokens: model.config.maxOutputTokens,
      token: { address: ctx.state.token.address, symbol: ctx.state.token.symbol, decimals: ctx.state.token.decimals },
      price_epoch: current?.index ?? null,
      prices: current ? prices(current) : null,
      scheduled: scheduled.map((epoch) => ({ price_epoch: epoch.index, effective_from: epoch.effectiveFrom, ...prices(epoch) })),
    },
  };
}

/** An alias as a client discovers it: what it may route to (cheapest good-enough first) and the rules that raise the tier. */
function describeAlias(ctx: GatewayContext, policy: RoutingPolicy) {
  const levels = ctx.routing?.levels ?? [];
  const tier = (value: number) => ({ tier: value, level: levels[value] ?? null });
  return {
    id: policy.alias,
    object: "model",
    created: 0,
    owned_by: "tollgate-router",
    tollgate: {
      kind: "alias",
      candidates: policy.candidates.map((candidate) => ({ model: candidate.name, ...tier(candidate.tier) })),
      min_tier: tier(policy.minTier),
      rules: {
        prompt_tokens: policy.promptTokens.map((rule) => ({ at_least: rule.atLeast, ...tier(rule.tier) })),
        tools: policy.tools === undefined ? null : tier(policy.tools),
        reasoning_effort: Object.fromEntries(Object.entries(policy.reasoningEffort).map(([effort, value]) => [effort, tier(value)])),
        min_tier_header: policy.honorHint,
      },
    },
  };
}

export function listModels(ctx: GatewayContext) {
  return (_req: Request, res: Response): void => {
    const now = ctx.state.now();
    res.json({
      object: "list",
      data: ctx.state.models().map((model) => describe(ctx, model, now)),
      aliases: [...(ctx.routing?.policies.values() ?? [])].map((policy) => describeAlias(ctx, policy)),
    });
  };
}

export function getModel(ctx: GatewayContext) {
  return (req: Request, res: Response): void => {
    const id = String(req.params.id);
    const policy = ctx.routing?.policies.get(id);
    if (policy) {
      res.json(describeAlias(ctx, policy));
      return;
    }
    const model = ctx.state.model(id);
    if (!model) throw modelNotFound(id);
    res.json(describe(ctx, model, ctx.state.now()));
  };
}
