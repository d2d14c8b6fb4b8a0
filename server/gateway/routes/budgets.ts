/**
 * Budgets, managed by the buyer's wallet exactly as API keys are (an EIP-712 message with issuedAt and a
 * one-time nonce, checked by `authorize`): `POST /v1/budgets` creates one, `POST /v1/budgets/list` lists them,
 * `POST /v1/budgets/delete` deletes one; `GET /v1/budgets` lists them for a read session or an API key.
 * Enforcement is in the reservation step (metering/meter.ts); alerts go out from budgets/budget-webhooks.ts.
 */
import { randomBytes } from "node:crypto";
import type { Request, Response } from "express";
import type { Address, Hex } from "viem";
import type { z } from "zod";
import { BudgetExistsError, type Budget } from "../../store/usage-store";
import { DEFAULT_THRESHOLDS_BPS, createBudgetMessage, deleteBudgetMessage, listBudgetsMessage } from "../budgets/budget-messages";
import { budgetView } from "../budgets/budget-status";
import { webhookUrlProblem } from "../budgets/webhook-destination";
import { signedRequest } from "../api-keys/wallet-messages";
import type { GatewayContext } from "../context";
import { GatewayError, invalidRequest } from "../errors";
import { parseBody } from "../http/parse-body";
import { readerOf } from "../middleware/authenticate";
import { authorize, rawMessageOf } from "./api-keys";

const budgetExists = (id: string) =>
  new GatewayError(409, "invalid_request_error", `You already have budget ${id} on this scope, target and period. Delete it first to set a new limit.`, "budget_exists", "message.target");

export function createBudget(ctx: GatewayContext) {
  const schema = signedRequest(createBudgetMessage);
  return async (req: Request, res: Response): Promise<void> => {
    const signed = parseBody(schema, req.body) as { message: z.infer<typeof createBudgetMessage>; signature: Hex };
    const { message } = signed;
    if (message.degradeModel !== "" && !ctx.state.model(message.degradeModel)) {
      throw invalidRequest(`Unknown degrade model ${message.degradeModel}. GET /v1/models lists the models on sale.`, "message.degradeModel", "model_not_found");
    }
    const destination = message.webhookUrl === "" ? null : webhookUrlProblem(message.webhookUrl, ctx.webhookAllowPrivateNetworks);
    if (destination !== null) {
      throw invalidRequest(`Alerts cannot be sent to ${message.webhookUrl}: ${destination}. Give a webhook on the public internet.`, "message.webhookUrl", "webhook_url_not_allowed");
    }
    await authorize(ctx, "CreateBudget", signed, {
      ...rawMessageOf(req.body),
      limit: message.limit,
      thresholdsBps: message.thresholdsBps,
      degradeThresholdBps: message.degradeThresholdBps,
      issuedAt: message.issuedAt,
    });

    const now = ctx.state.now();
    const webhookSecret = message.webhookUrl === "" ? null : `whsec_${randomBytes(32).toString("base64url")}`;
    const budget: Budget = {
      id: `bud_${randomBytes(9).toString("base64url")}`,
      buyer: message.buyer,
      scope: message.scope,
      target: message.target,
      period: message.period,
      limit: message.limit,
      thresholdsBps: message.thresholdsBps.length === 0 ? DEFAULT_THRESHOLDS_BPS : message.thresholdsBps,
      webhookUrl: message.webhookUrl === "" ? null : message.webhookUrl,
      webhookSecret,
      degrade: message.degradeModel === "" ? null : { thresholdBps: message.degradeThresholdBps, model: message.degradeModel },
      label: message.label,
      createdAt: now,
      deletedAt: null,
    };
    // Fleet mode: the fleet's budgets are adopted first, so one made on another instance is a duplicate here too.
    await ctx.fleetDefinitions?.syncBuyer(budget.buyer);
    let spend;
    try {
      spend = ctx.store.createBudget(budget, now);
    } catch (error) {
      if (error instanceof BudgetExistsError) throw budgetExists(error.existingId);
      throw error;
    }
    if (ctx.fleet && ctx.fleetDefinitions) {
      try {
        await ctx.fleetDefinitions.putBudget(budget);
      } catch (error) {
        // Not shared, so not made: a budget only this instance enforces would mislead the buyer.
        ctx.store.deleteBudget(budget.buyer, budget.id, now);
        throw error;
      }
      ctx.fleet.publishSpent(ctx.fleet.budgetPart(budget.id, spend.periodStart), spend.spent);
    }
    ctx.logger.info({ requestId: req.id, buyer: budget.buyer, budgetId: budget.id, scope: budget.scope, target: budget.target, period: budget.period, limit: budget.limit.toString() }, "budget created");
    res.status(201).json({
      ...budgetView(ctx, budget),
      webhook_secret: webhookSecret,
      note: webhookSecret
        ? "The webhook secret is shown only now: keep it to check each alert's tollgate-signature header (see the README)."
        : "No webhook: threshold crossings are logged by the gateway only.",
    });
  };
}

async function listOf(ctx: GatewayContext, buyer: Address) {
  // Redis down: the budgets this instance holds (a listing is no reason to fail).
  await ctx.fleetDefinitions?.syncBuyer(buyer).catch(() => undefined);
  return { object: "list", data: ctx.store.listBudgets(buyer).map((budget) => budgetView(ctx, budget)) };
}

export function listBudgets(ctx: GatewayContext) {
  const schema = signedRequest(listBudgetsMessage);
  return async (req: Request, res: Response): Promise<void> => {
    const signed = parseBody(schema, req.body) as { message: z.infer<typeof listBudgetsMessage>; signature: Hex };
    await authorize(ctx, "ListBudgets", signed, { ...rawMessageOf(req.body), issuedAt: signed.message.issuedAt });
    res.json(await listOf(ctx, signed.message.buyer));
  };
}

/** `GET /v1/budgets` with a read session (or an API key): the same answer as `POST /v1/budgets/list`, no signature. */
export function listBudgetsOfReader(ctx: GatewayContext) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await listOf(ctx, readerOf(req)));
  };
}

export function deleteBudget(ctx: GatewayContext) {
  const schema = signedRequest(deleteBudgetMessage);
  return async (req: Request, res: Response): Promise<void> => {
    const signed = parseBody(schema, req.body) as { message: z.infer<typeof deleteBudgetMessage>; signature: Hex };
    await authorize(ctx, "DeleteBudget", signed, { ...rawMessageOf(req.body), issuedAt: signed.message.issuedAt });
    const { buyer, budgetId } = signed.message;
    const at = ctx.state.now();
    if (ctx.fleetDefinitions) {
      // Fleet mode: adopted first (it may have been made elsewhere), the deletion shared before it is local.
      await ctx.fleetDefinitions.syncBuyer(buyer);
      const budget = ctx.store.listBudgets(buyer).find((candidate) => candidate.id === budgetId);
      if (budget) await ctx.fleetDefinitions.putBudget({ ...budget, deletedAt: at });
    }
    if (!ctx.store.deleteBudget(buyer, budgetId, at)) {
      throw new GatewayError(404, "not_found_error", `${buyer} has no budget ${budgetId}.`, "budget_not_found", "message.budgetId");
    }
    ctx.logger.info({ requestId: req.id, buyer, budgetId }, "budget deleted");
    res.json({ id: budgetId, object: "budget", deleted: true });
  };
}
