/**
 * `GET /v1/models` and `GET /v1/models/:id`: the models on sale, in OpenAI's list shape, with the
 * on-chain prices in force now and any scheduled change (per million tokens, in payment-token base units).
 */
import type { Request, Response } from "express";
import { priceEpochAt } from "../../chain/marketplace-reader";
import type { GatewayContext } from "../context";
import { modelNotFound } from "../errors";
import type { ModelOnSale } from "../marketplace-state";

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

export function listModels(ctx: GatewayContext) {
  return (_req: Request, res: Response): void => {
    const now = ctx.state.now();
    res.json({ object: "list", data: ctx.state.models().map((model) => describe(ctx, model, now)) });
  };
}

export function getModel(ctx: GatewayContext) {
  return (req: Request, res: Response): void => {
    const id = String(req.params.id);
    const model = ctx.state.model(id);
    if (!model) throw modelNotFound(id);
    res.json(describe(ctx, model, ctx.state.now()));
  };
}
