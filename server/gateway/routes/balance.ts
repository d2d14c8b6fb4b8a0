/**
 * `GET /v1/balance`: what the key's (or read session's) buyer can spend now, per model, and why: on-chain balance, credits,
 * this gateway's unsettled usage, calls in flight, the pending withdrawal (not spendable here: it may
 * leave before settlement), the on-chain spending limit, the subscription to this provider (its period, included
 * value, what is used and left, overage rule, renewal, and that unused included usage does not roll over), and the budgets that bind the key (every budget of the
 * buyer for a read session) with this period's spend and reset. Amounts are base-unit strings.
 *
 * Fleet mode: `fleet` names what the provider's other instances hold for the buyer's calls in flight and served that the
 * chain has not settled (as the reserve check counts them), and every `spendable` figure has both taken off, so it is
 * what a call on this instance can reserve now. When the shared store cannot answer, `fleet.state` says so (and paid
 * calls get 503 anyway).
 */
import type { Request, Response } from "express";
import { planCoversModel } from "../../chain/plan-eligibility";
import { subscriptionView } from "../metering/subscription-view";
import { budgetView } from "../budgets/budget-status";
import type { GatewayContext } from "../context";
import { readerOf } from "../middleware/authenticate";

export function balance(ctx: GatewayContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = req.apiKey;
    const buyer = readerOf(req);
    const snapshot = await ctx.state.snapshot(buyer);
    const now = ctx.state.now();
    const amount = (value: bigint) => value.toString();
    const others = ctx.fleet && (await ctx.fleet.othersOf(buyer, snapshot.fleetNextSequences ?? new Map()));
    const elsewhere = others ? others.held + others.unsettled : 0n;
    const models = ctx.state.models().map((model) => {
      const b = ctx.ledger.breakdown(snapshot, model.terms, now);
      const spendable = b.spendable > elsewhere ? b.spendable - elsewhere : 0n;
      return {
        model: model.config.name,
        spendable: amount(spendable),
        spendable_formatted: ctx.state.formatAmount(spendable),
        credit_value: amount(b.creditValue),
      };
    });
    const any = ctx.state.models()[0];
    const summary = ctx.ledger.breakdown(snapshot, any.terms, now);
    const keyRemaining = key && key.spendCap !== null ? key.spendCap - key.spent : null;
    const standing = ctx.ledger.subscriptionStanding(snapshot, now);
    res.json({
      object: "balance",
      buyer,
      block_number: snapshot.blockNumber.toString(),
      token: ctx.state.token,
      balance: amount(snapshot.balance),
      pending_withdrawal: amount(snapshot.pendingWithdrawal),
      withdrawable_at: snapshot.withdrawableAt,
      credits: snapshot.credits
        .filter((held) => held.credits > 0n || held.change > 0n)
        .map((held) => ({
          plan_id: held.plan.planId.toString(),
          credits: amount(held.credits),
          value_per_credit: amount(held.plan.valuePerCredit),
          change: amount(held.change),
          expires_at: held.plan.expiresAt,
          models: ctx.state.models().filter((m) => planCoversModel(held.plan, m.terms.localIndex)).map((m) => m.config.name),
        })),
      unsettled_usage: amount(summary.unsettledUsage),
      open_reservations: amount(summary.openReservations),
      ...(ctx.fleet && {
        fleet: others
          ? { state: "ready", instance: ctx.fleet.instanceId, other_instances_unsettled_usage: amount(others.unsettled), other_instances_open_reservations: amount(others.held) }
          : { state: ctx.fleet.state, instance: ctx.fleet.instanceId, note: "The fleet's shared store cannot answer now: other instances' usage is not shown, and paid calls get 503 until it is back." },
      }),
      spending_limit:
        summary.limitRemaining === null
          ? null
          : { limit_per_period: amount(snapshot.spendingLimit.limitPerPeriod), period_seconds: snapshot.spendingLimit.period, remaining: amount(summary.limitRemaining) },
      // A read session is no key: it has no cap or spend of its own.
      subscription: standing && {
        ...subscriptionView(standing, now),
        models: ctx.state.models().filter((m) => planCoversModel(standing.status.plan, m.terms.localIndex)).map((m) => m.config.name),
      },
      key: key ? { id: key.id, spend_cap: key.spendCap?.toString() ?? null, spent: amount(key.spent), remaining: keyRemaining === null ? null : amount(keyRemaining) } : null,
      spendable_by_model: models,
      // Trace budgets bind calls by their header, not by the key: a key sees its tags' budgets only.
      budgets: (key ? ctx.store.applicableBudgets(buyer, key.tags, undefined) : ctx.store.listBudgets(buyer)).map((budget) => budgetView(ctx, budget)),
    });
  };
}
