/**
 * Subscriptions on the command line: `tollgate provider subscription-plan define|list` for the provider, and
 * `tollgate buyer subscribe|subscription|unsubscribe|renew` for the buyer. Each transaction is a client action
 * (client/actions/), each read too; what is here is the checks that name the problem before anything is signed
 * (a plan that does not exist, a balance short of the period price, a renewal not yet due) and what is printed.
 * Every command that shows a plan or a subscription says that unused included usage does not roll over.
 */
import type { Command } from "commander";
import type { Address } from "viem";
import {
  cancelSubscription,
  defineSubscriptionPlan,
  getBuyerPosition,
  getSubscription,
  getSubscriptionPlans,
  renewSubscription,
  subscribe as subscribeAction,
  type SubscriptionInfo,
  type SubscriptionOverage,
  type SubscriptionPlanInfo,
} from "../../client";
import { tollgateAbi, tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { formatDuration, formatTimestamp, parseAddress, parseDuration, parseId, parseInteger, parseList } from "./arguments";
import { examples, type CliContext, type Connection, type ContextFactory } from "./context";
import { CliError } from "./errors";

export const NO_ROLLOVER = "unused included usage does not roll over: what a period leaves unused is forfeited when it ends";

/** The satellite's longest period (`MAX_PERIOD`, 366 days): a longer one is refused before signing. */
const MAX_PERIOD_SECONDS = 366n * 86_400n;

const OVERAGE_FLAGS: Record<string, SubscriptionOverage> = { "bill-balance": "billBalance", refuse: "refuse" };

function describeOverage(overage: SubscriptionOverage): string {
  return overage === "refuse" ? "overage refused (beyond the included usage nothing is charged; the gateway refuses such calls)" : "overage billed from credits, then balance, at list prices";
}

async function planLines(ctx: CliContext, plan: SubscriptionPlanInfo): Promise<string[]> {
  return [
    `plan ${plan.planId}: ${await ctx.amount(plan.price)} per ${formatDuration(plan.periodSeconds)} (${plan.periodSeconds}s), includes ${await ctx.amount(plan.includedValue)} of usage per period at list prices`,
    `    models ${plan.models.map((name, i) => `${plan.modelIds[i]} ${name}`).join(", ")}; ${describeOverage(plan.overage)}`,
  ];
}

function planJson(ctx: CliContext, plan: SubscriptionPlanInfo) {
  return { ...plan, price: ctx.money(plan.price), includedValue: ctx.money(plan.includedValue), modelMask: plan.modelMask.toString() };
}

interface DefineOptions {
  period: string;
  price: string;
  included: string;
  models: string;
  overage: string;
}

async function definePlan(ctx: CliContext, providerText: string, options: DefineOptions): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const period = parseDuration(options.period, "--period", MAX_PERIOD_SECONDS);
  const price = await ctx.parseAmount(options.price, { what: "--price", allowZero: true });
  const includedValue = await ctx.parseAmount(options.included, { what: "--included" });
  const modelIds = parseList(options.models).map((id) => parseId(id, "model id in --models"));
  if (modelIds.length === 0) throw new CliError("--models names no model", "list the model ids the plan covers, e.g. --models 1,2");
  const overage = OVERAGE_FLAGS[options.overage];
  if (!overage) throw new CliError(`--overage "${options.overage}" is not one of ${Object.keys(OVERAGE_FLAGS).join(", ")}`, "bill-balance: usage beyond the included value is billed as usual; refuse: it is refused");
  ctx.out.say(
    `defining a subscription plan for provider ${providerId}: ${await ctx.amount(price)} per ${formatDuration(period)}, including ${await ctx.amount(includedValue)} of usage ` +
      `on models ${modelIds.join(", ")} per period; ${describeOverage(overage)}`,
  );
  const { hash, planId } = await defineSubscriptionPlan(await ctx.client(), { providerId, periodSeconds: Number(period), price, includedValue, modelIds, overage });
  ctx.out.say(`defined subscription plan ${planId}; buyers subscribe with \`tollgate buyer subscribe ${planId}\``);
  ctx.out.say(`note: ${NO_ROLLOVER}`);
  ctx.out.result({ action: "subscription-plan-define", planId, providerId, periodSeconds: Number(period), price: ctx.money(price), includedValue: ctx.money(includedValue), modelIds, overage, rollsOver: false, hash });
}

async function listPlans(ctx: CliContext, providerText: string): Promise<void> {
  const conn = await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const { plans } = await getSubscriptionPlans(conn.tollgateClient, { providerId, fromBlock: deployBlockOf(conn) });
  ctx.out.say(plans.length === 0 ? `provider ${providerId} sells no subscription plan` : `subscription plans of provider ${providerId}:`);
  for (const plan of plans) for (const line of await planLines(ctx, plan)) ctx.out.say(`  ${line}`);
  if (plans.length > 0) ctx.out.say(`  ${NO_ROLLOVER}`);
  ctx.out.result({ providerId, plans: plans.map((plan) => planJson(ctx, plan)), note: NO_ROLLOVER });
}

function deployBlockOf(conn: Connection): bigint | undefined {
  return conn.deployment.deployBlock === undefined ? undefined : BigInt(conn.deployment.deployBlock);
}

async function subscribe(ctx: CliContext, planText: string): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const planId = parseInteger(planText, "plan id", { min: 1n });
  const subscriptions = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "subscriptions" });
  const count = await conn.client.readContract({ address: subscriptions, abi: tollgateSubscriptionsAbi, functionName: "subscriptionPlanCount" });
  if (planId > count) throw new CliError(`no subscription plan has id ${planId} (${count} defined)`, "`tollgate provider subscription-plan list <providerId>` lists a provider's plans");
  const plan = await conn.client.readContract({ address: subscriptions, abi: tollgateSubscriptionsAbi, functionName: "subscriptionPlanOf", args: [planId] });
  const { subscription } = await getSubscription(conn.tollgateClient, { buyer: account.address, providerId: plan.providerId });
  if (subscription && (subscription.status === "active" || subscription.status === "cancelled" || subscription.status === "renewal-due")) {
    throw new CliError(
      `you already hold subscription plan ${subscription.planId} with provider ${plan.providerId} (${subscription.status}, paid until ${formatTimestamp(subscription.paidUntil)})`,
      subscription.status === "cancelled" ? "subscribe again once it has ended" : `one subscription per provider: cancel it with \`tollgate buyer unsubscribe --provider ${plan.providerId}\` and subscribe after it ends`,
    );
  }
  const { balance } = await getBuyerPosition(conn.tollgateClient, { buyer: account.address, planIds: [], providerIds: [] });
  if (balance < plan.price) {
    throw new CliError(
      `your vault balance is ${await ctx.amount(balance)}, less than the ${await ctx.amount(plan.price)} the first period costs`,
      "deposit more with `tollgate buyer deposit <amount>`; each period is paid from the vault balance",
    );
  }
  ctx.out.say(`subscribing ${account.address} to plan ${planId} of provider ${plan.providerId}: ${await ctx.amount(plan.price)} per ${formatDuration(plan.period)}, paid now from your vault balance`);
  const result = await subscribeAction(await ctx.client(), { planId });
  ctx.out.say(
    `subscribed (subscription ${result.subscriptionId}): the first period runs ${formatTimestamp(result.periodStart)} to ${formatTimestamp(result.periodEnd)} ` +
      `and includes ${await ctx.amount(result.includedValue)} of usage; it renews from your vault balance at each period's start unless you unsubscribe`,
  );
  ctx.out.say(`note: ${NO_ROLLOVER}`);
  ctx.out.result({ action: "subscribe", buyer: account.address, planId, providerId: plan.providerId, subscriptionId: result.subscriptionId, periodStart: result.periodStart, periodEnd: result.periodEnd, price: ctx.money(result.price), includedValue: ctx.money(result.includedValue), rollsOver: false, hash: result.hash });
}

/** Who a read is about: --address, or the signing key's account. */
async function accountOf(ctx: CliContext, addressText: string | undefined): Promise<Address> {
  if (addressText) return parseAddress(addressText, "--address");
  try {
    return (await ctx.signer()).address;
  } catch (error) {
    if (error instanceof CliError) throw new CliError(error.message, `${error.hint}; or name the account with --address <address>`);
    throw error;
  }
}

/** The buyer's subscriptions: with one provider, or with every provider it ever subscribed to. */
async function subscriptionsOf(conn: Connection, buyer: Address, providerText: string | undefined): Promise<SubscriptionInfo[]> {
  const providerIds = providerText
    ? [parseId(providerText, "--provider")]
    : Array.from({ length: Number(await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "providerCount" })) }, (_, i) => i + 1);
  const found = await Promise.all(providerIds.map((providerId) => getSubscription(conn.tollgateClient, { buyer, providerId })));
  return found.map((read) => read.subscription).filter((subscription): subscription is SubscriptionInfo => subscription !== null);
}

async function subscriptionLines(ctx: CliContext, sub: SubscriptionInfo): Promise<string[]> {
  const plan = sub.plan;
  const head = `provider ${sub.providerId}: plan ${sub.planId} (subscription ${sub.subscriptionId}), ${await ctx.amount(plan.price)} per ${formatDuration(plan.periodSeconds)}, ${describeOverage(plan.overage)}`;
  const state = {
    active: `renews ${formatTimestamp(sub.paidUntil)} from your vault balance`,
    cancelled: `cancelled: covered until ${formatTimestamp(sub.paidUntil)}, then it ends (no refund)`,
    "renewal-due": `paid until ${formatTimestamp(sub.paidUntil)}: renewal due (the next \`tollgate buyer renew\` pays it from the balance, or ends it if the balance is short)`,
    ended: `ended (paid until ${formatTimestamp(sub.paidUntil)})`,
  }[sub.status];
  const lines = [head, `    ${state}`];
  const period = sub.currentPeriod;
  if (period) {
    lines.push(
      `    period ${period.index} (${formatTimestamp(period.start)} to ${formatTimestamp(period.end)}): ${await ctx.amount(period.includedUsed)} of ${await ctx.amount(plan.includedValue)} included usage used on-chain, ` +
        `${await ctx.amount(period.includedRemaining)} left`,
    );
  }
  return lines;
}

function subscriptionJson(ctx: CliContext, sub: SubscriptionInfo) {
  const period = sub.currentPeriod;
  return {
    ...sub,
    plan: { ...sub.plan, price: ctx.money(sub.plan.price), includedValue: ctx.money(sub.plan.includedValue), modelMask: sub.plan.modelMask.toString() },
    currentPeriod: period && { ...period, includedUsed: ctx.money(period.includedUsed), includedRemaining: ctx.money(period.includedRemaining) },
  };
}

async function show(ctx: CliContext, options: { provider?: string; address?: string }): Promise<void> {
  const buyer = await accountOf(ctx, options.address);
  const conn = await ctx.connect();
  const subs = await subscriptionsOf(conn, buyer, options.provider);
  ctx.out.say(subs.length === 0 ? `${buyer} has no subscription${options.provider ? ` with provider ${options.provider}` : ""}` : `subscriptions of ${buyer}:`);
  for (const sub of subs) for (const line of await subscriptionLines(ctx, sub)) ctx.out.say(`  ${line}`);
  if (subs.length > 0) ctx.out.say(`  included usage counts what has settled on-chain; ${NO_ROLLOVER}`);
  ctx.out.result({ buyer, subscriptions: subs.map((sub) => subscriptionJson(ctx, sub)), note: NO_ROLLOVER });
}

/** The one subscription a command acts on: --provider's, or the buyer's only one in `states`. */
async function pickSubscription(ctx: CliContext, conn: Connection, buyer: Address, providerText: string | undefined, states: SubscriptionInfo["status"][], verb: string): Promise<SubscriptionInfo> {
  const subs = (await subscriptionsOf(conn, buyer, providerText)).filter((sub) => states.includes(sub.status));
  if (subs.length === 1) return subs[0];
  if (subs.length === 0) {
    throw new CliError(
      `${buyer} has no subscription${providerText ? ` with provider ${providerText}` : ""} to ${verb}`,
      "`tollgate buyer subscription` shows your subscriptions and their state",
    );
  }
  throw new CliError(`${buyer} has subscriptions with providers ${subs.map((sub) => sub.providerId).join(", ")}`, `name the one to ${verb} with --provider <providerId>`);
}

async function unsubscribe(ctx: CliContext, options: { provider?: string }): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const cancelled = (await subscriptionsOf(conn, account.address, options.provider)).find((sub) => sub.status === "cancelled");
  if (cancelled && options.provider) throw new CliError(`your subscription with provider ${cancelled.providerId} is already cancelled; it ends ${formatTimestamp(cancelled.paidUntil)}`);
  const sub = await pickSubscription(ctx, conn, account.address, options.provider, ["active", "renewal-due"], "cancel");
  ctx.out.say(`cancelling your subscription with provider ${sub.providerId}: it stays covered until its paid period ends, then ends; nothing is refunded`);
  const { hash, endsAt } = await cancelSubscription(await ctx.client(), { providerId: sub.providerId });
  ctx.out.say(`cancelled; covered until ${formatTimestamp(endsAt)}, then it ends. ${NO_ROLLOVER}`);
  ctx.out.result({ action: "unsubscribe", buyer: account.address, providerId: sub.providerId, subscriptionId: sub.subscriptionId, endsAt, hash });
}

async function renew(ctx: CliContext, options: { provider?: string; address?: string }): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const buyer = options.address ? parseAddress(options.address, "--address") : account.address;
  const subs = (await subscriptionsOf(conn, buyer, options.provider)).filter((sub) => sub.status !== "ended");
  const due = subs.filter((sub) => sub.status === "renewal-due");
  if (due.length === 0) {
    const next = subs[0];
    throw new CliError(
      next ? `nothing is due: ${buyer}'s subscription with provider ${next.providerId} is paid until ${formatTimestamp(next.paidUntil)}` : `${buyer} has no live subscription${options.provider ? ` with provider ${options.provider}` : ""}`,
      next ? `run \`tollgate buyer renew\` again after ${formatTimestamp(next.paidUntil)}; anyone may renew, from the buyer's balance` : "`tollgate buyer subscription` shows your subscriptions",
    );
  }
  if (due.length > 1) throw new CliError(`${buyer} has renewals due with providers ${due.map((sub) => sub.providerId).join(", ")}`, "name one with --provider <providerId>");
  const sub = due[0];
  ctx.out.say(`renewing ${buyer}'s subscription with provider ${sub.providerId} for every period that has started, each ${await ctx.amount(sub.plan.price)} from the vault balance`);
  const result = await renewSubscription(await ctx.client(), { buyer, providerId: sub.providerId });
  if (result.periodsPaid > 0) ctx.out.say(`paid ${result.periodsPaid} period(s) for ${await ctx.amount(result.paid)}`);
  if (result.ended === "unpaid") ctx.out.say(`the subscription ended: the vault balance could not pay the next period (${await ctx.amount(sub.plan.price)}); usage from now on is billed without it`);
  if (result.ended === "cancelled") ctx.out.say("the subscription ended: it was cancelled and its paid period is over");
  ctx.out.say(`${await ctx.amount(result.forfeited)} of included usage was left unused in the period(s) that closed and is forfeited (${NO_ROLLOVER})`);
  const after = await getSubscription(conn.tollgateClient, { buyer, providerId: sub.providerId });
  if (after.subscription?.status === "active") ctx.out.say(`now paid until ${formatTimestamp(after.subscription.paidUntil)}`);
  ctx.out.result({ action: "renew", buyer, providerId: sub.providerId, periodsPaid: result.periodsPaid, paid: ctx.money(result.paid), ended: result.ended ?? null, forfeited: ctx.money(result.forfeited), paidUntil: after.subscription?.paidUntil ?? null, hash: result.hash });
}

export function registerProviderSubscriptionPlans(provider: Command, context: ContextFactory): void {
  const plans = provider.command("subscription-plan").description("sell subscriptions: a period price that includes a usage value per period (no rollover)");
  plans
    .command("define")
    .description("define a subscription plan; it never changes once defined")
    .argument("<providerId>", "the provider")
    .requiredOption("--period <duration>", 'period length: seconds ("2592000") or with a unit ("30d", "1w", "12h"), at most 366d')
    .requiredOption("--price <amount>", "what a buyer pays per period from its vault balance, in token units")
    .requiredOption("--included <amount>", "usage value each paid period includes, at list prices, in token units")
    .requiredOption("--models <ids>", "comma-separated ids of the provider's models the plan covers, e.g. 1,2")
    .option("--overage <rule>", "beyond the included usage: bill-balance (credits, then balance, at list prices) or refuse", "bill-balance")
    .addHelpText("after", examples("tollgate provider subscription-plan define 1 --period 30d --price 20 --included 25 --models 1,2", "tollgate provider subscription-plan define 1 --period 1w --price 5 --included 5 --models 1 --overage refuse"))
    .action((id: string, options: DefineOptions, cmd: Command) => definePlan(context(cmd), id, options));
  plans
    .command("list")
    .description("a provider's subscription plans (needs no key)")
    .argument("<providerId>", "the provider")
    .addHelpText("after", examples("tollgate provider subscription-plan list 1", "tollgate provider subscription-plan list 1 --json"))
    .action((id: string, _options: unknown, cmd: Command) => listPlans(context(cmd), id));
}

export function registerBuyerSubscriptions(buyer: Command, context: ContextFactory): void {
  buyer
    .command("subscribe")
    .description("subscribe to a provider's plan, paying the first period from your vault balance; it renews each period unless you unsubscribe")
    .argument("<planId>", "the subscription plan (see `tollgate provider subscription-plan list <providerId>`)")
    .addHelpText("after", examples("tollgate buyer subscribe 1"))
    .action((plan: string, _options: unknown, cmd: Command) => subscribe(context(cmd), plan));
  buyer
    .command("subscription")
    .description("your subscriptions: plan, paid until, the current period's included usage used on-chain and left")
    .option("--provider <providerId>", "only the subscription with this provider")
    .option("--address <address>", "show another account (needs no key)")
    .addHelpText("after", examples("tollgate buyer subscription", "tollgate buyer subscription --provider 1 --json"))
    .action((options: { provider?: string; address?: string }, cmd: Command) => show(context(cmd), options));
  buyer
    .command("unsubscribe")
    .description("cancel your subscription: covered until the paid period ends, then it ends; no refund")
    .option("--provider <providerId>", "the provider (needed when you subscribe to several)")
    .addHelpText("after", examples("tollgate buyer unsubscribe", "tollgate buyer unsubscribe --provider 1"))
    .action((options: { provider?: string }, cmd: Command) => unsubscribe(context(cmd), options));
  buyer
    .command("renew")
    .description("renew a subscription whose period has ended (anyone may): pays each due period from the buyer's balance, or ends it")
    .option("--provider <providerId>", "the provider (needed when several renewals are due)")
    .option("--address <address>", "renew another buyer's subscription (paid from its balance, not yours)")
    .addHelpText("after", examples("tollgate buyer renew", "tollgate buyer renew --provider 1 --address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8"))
    .action((options: { provider?: string; address?: string }, cmd: Command) => renew(context(cmd), options));
}
