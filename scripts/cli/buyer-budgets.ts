/**
 * `tollgate buyer budgets …`: limits on what calls of one key tag or one trace may cost per UTC day, week (from
 * Monday) or month, authorized by the buyer's wallet like `buyer keys`: the client's createBudget, listBudgets
 * and deleteBudget sign an EIP-712 message with the key from the environment and POST it to the gateway.
 */
import type { Command } from "commander";
import { createBudget, deleteBudget, listBudgets, type GatewayBudget } from "../../client";
import { formatAmount } from "./amounts";
import { examples, type CliContext, type ContextFactory } from "./context";
import { CliError } from "./errors";

const PERIODS = ["day", "week", "month"] as const;

/** "80" or "12.5" (percent) → basis points, without a float: 12.5 → 1250. */
export function percentToBps(text: string, what: string): number {
  const match = /^(\d{1,3})(?:\.(\d{1,2}))?$/.exec(text.trim());
  const bps = match ? Number(match[1]) * 100 + Number((match[2] ?? "").padEnd(2, "0")) : NaN;
  if (!match || bps < 1 || bps > 10_000) throw new CliError(`${what} "${text}" is not a percentage from 0.01 to 100`, 'write it like "80" or "12.5"');
  return bps;
}

function describeBudgetLines(budget: GatewayBudget, amount: (units: string) => string): string[] {
  const what = budget.scope === "tag" ? `tag ${budget.target}` : `trace ${budget.target}`;
  return [
    `${budget.id}  ${what}, per ${budget.period}${budget.label ? `  "${budget.label}"` : ""}`,
    `    limit ${amount(budget.limit)}; this ${budget.period} spent ${amount(budget.spent)}, ${amount(budget.reserved)} in flight, ${amount(budget.remaining)} left`,
    `    resets ${budget.resets_at}; alerts at ${budget.thresholds_bps.map((bps) => `${bps / 100}%`).join(", ")}${budget.webhook_url ? ` to ${budget.webhook_url}` : " (logged only)"}`,
    ...(budget.degrade ? [`    degrade to ${budget.degrade.model} past ${budget.degrade.threshold_bps / 100}% (refused at the limit)`] : []),
  ];
}

/** Formats base units when the chain can be reached; the budget commands otherwise need only the gateway. */
async function amountFormatter(ctx: CliContext): Promise<(units: string) => string> {
  try {
    const { token } = await ctx.connect();
    return (units) => formatAmount(BigInt(units), token);
  } catch {
    return (units) => `${units} base units`;
  }
}

interface CreateOptions {
  tag?: string;
  trace?: string;
  period: string;
  limit: string;
  label?: string;
  thresholds?: string;
  webhook?: string;
  degradeTo?: string;
  degradeAt?: string;
}

async function create(ctx: CliContext, options: CreateOptions): Promise<void> {
  if ((options.tag === undefined) === (options.trace === undefined)) {
    throw new CliError("name exactly one of --tag and --trace", 'e.g. --tag team:support, or --trace run-2026-12-06');
  }
  if (!(PERIODS as readonly string[]).includes(options.period)) throw new CliError(`--period "${options.period}" is not one of ${PERIODS.join(", ")}`, "weeks start on Monday; all periods are UTC");
  if ((options.degradeTo === undefined) !== (options.degradeAt === undefined)) throw new CliError("give --degrade-to and --degrade-at together, or neither");
  await ctx.signer();
  const limit = await ctx.parseAmount(options.limit, { what: "--limit" });
  const budget = await createBudget(await ctx.gatewayClient(), {
    scope: options.tag !== undefined ? "tag" : "trace",
    target: (options.tag ?? options.trace)!,
    period: options.period as (typeof PERIODS)[number],
    limit,
    label: options.label,
    thresholdsBps: (options.thresholds ?? "").split(",").filter((part) => part.trim() !== "").map((part) => percentToBps(part, "--thresholds")),
    webhookUrl: options.webhook,
    degrade: options.degradeTo === undefined ? undefined : { model: options.degradeTo, thresholdBps: percentToBps(options.degradeAt!, "--degrade-at") },
  });
  const amount = await amountFormatter(ctx);
  ctx.out.say(`created budget ${budget.id} for ${budget.buyer} at ${ctx.options.gateway}`);
  for (const line of describeBudgetLines(budget, amount).slice(1)) ctx.out.say(line);
  if (budget.webhook_secret) {
    ctx.out.say("");
    ctx.out.say(`  webhook secret ${budget.webhook_secret}`);
    ctx.out.say("");
    ctx.out.say("This is the only time the secret is shown: the receiver checks each alert's tollgate-signature header with it.");
  }
  ctx.out.result({ action: "budgets-create", ...budget });
}

async function list(ctx: CliContext): Promise<void> {
  const data = await listBudgets(await ctx.gatewayClient());
  const account = await ctx.signer();
  const amount = await amountFormatter(ctx);
  ctx.out.say(data.length === 0 ? `${account.address} has no budgets at ${ctx.options.gateway}` : `budgets of ${account.address} at ${ctx.options.gateway}:`);
  for (const budget of data) for (const line of describeBudgetLines(budget, amount)) ctx.out.say(line);
  ctx.out.result({ buyer: account.address, budgets: data });
}

async function remove(ctx: CliContext, budgetId: string): Promise<void> {
  const result = await deleteBudget(await ctx.gatewayClient(), { budgetId });
  ctx.out.say(`deleted budget ${result.id}; its limit no longer applies`);
  ctx.out.result({ action: "budgets-delete", id: result.id, deleted: result.deleted });
}

export function registerBudgetCommands(buyer: Command, context: ContextFactory): void {
  const budgets = buyer
    .command("budgets")
    .description("limits per key tag or per trace and UTC day/week/month, with alerts; authorized by your wallet's signature (uses --gateway)");

  budgets
    .command("create")
    .description("create a budget: a call that would overrun it gets HTTP 402 budget_exceeded")
    .option("--tag <tag>", 'count every call of keys carrying this tag, e.g. "team:support"')
    .option("--trace <id>", "count the calls sent with this x-tollgate-trace-id")
    .option("--period <period>", "day, week (from Monday) or month, in UTC", "month")
    .requiredOption("--limit <amount>", "most the period may spend, in token units")
    .option("--label <text>", "a name for the budget")
    .option("--thresholds <percents>", "comma-separated percentages of the limit that send an alert (default: 80,100)")
    .option("--webhook <url>", "where alerts are POSTed, signed with the secret printed once (default: logged by the gateway only)")
    .option("--degrade-to <model>", "a cheaper model that serves the budget's calls past --degrade-at")
    .option("--degrade-at <percent>", "the share of the limit past which --degrade-to serves the calls")
    .addHelpText(
      "after",
      examples(
        "tollgate buyer budgets create --tag team:support --period month --limit 250 --webhook https://hooks.example.org/tollgate",
        "tollgate buyer budgets create --trace run-2026-12-06 --period day --limit 2 --thresholds 50,90",
      ),
    )
    .action((options: CreateOptions, cmd: Command) => create(context(cmd), options));

  budgets
    .command("list")
    .description("list your budgets with what this period spent and when it resets")
    .addHelpText("after", examples("tollgate buyer budgets list", "tollgate buyer budgets list --json"))
    .action((_options: unknown, cmd: Command) => list(context(cmd)));

  budgets
    .command("delete")
    .description("delete a budget at once")
    .argument("<id>", 'the budget id from `budgets list` ("bud_…")')
    .addHelpText("after", examples("tollgate buyer budgets delete bud_AbCdEf123456"))
    .action((id: string, _options: unknown, cmd: Command) => remove(context(cmd), id));
}
