/**
 * `tollgate provider bond …`: the provider's bond behind its gateway keys. Anyone may post to it; only the
 * owner may take it out, after a delay longer than the dispute window, and until then a proof that a gateway
 * key lied is paid from it. Every transaction is a client action (client/actions/).
 */
import type { Command } from "commander";
import { cancelBondWithdrawal, getBond, postBond, requestBondWithdrawal, withdrawBond } from "../../client";
import { formatDuration, formatTimestamp, parseId } from "./arguments";
import { examples, type CliContext, type ContextFactory } from "./context";

async function post(ctx: CliContext, providerText: string, amountText: string): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const amount = await ctx.parseAmount(amountText, { what: "bond amount" });
  ctx.out.say(`posting ${await ctx.amount(amount)} to provider ${providerId}'s bond`);
  const { hash, approveHash, posted } = await postBond(await ctx.client(), { providerId, amount });
  ctx.out.say(`bond grew by ${await ctx.amount(posted)}`);
  ctx.out.result({ action: "bond-post", providerId, posted: ctx.money(posted), hash, approveHash: approveHash ?? null });
}

async function requestWithdrawal(ctx: CliContext, providerText: string, amountText: string): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const amount = await ctx.parseAmount(amountText, { what: "bond amount" });
  ctx.out.say(`requesting ${await ctx.amount(amount)} of provider ${providerId}'s bond; it stays slashable until withdrawn`);
  const { hash, pending, withdrawableAt } = await requestBondWithdrawal(await ctx.client(), { providerId, amount });
  ctx.out.say(`${await ctx.amount(pending)} pending, withdrawable at ${formatTimestamp(withdrawableAt)} (unix ${withdrawableAt}) with \`tollgate provider bond withdraw ${providerId}\``);
  ctx.out.result({ action: "bond-request-withdrawal", providerId, pending: ctx.money(pending), withdrawableAt, hash });
}

async function cancelWithdrawal(ctx: CliContext, providerText: string): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const { hash, amount } = await cancelBondWithdrawal(await ctx.client(), { providerId });
  ctx.out.say(`${await ctx.amount(amount)} back in provider ${providerId}'s available bond`);
  ctx.out.result({ action: "bond-cancel-withdrawal", providerId, amount: ctx.money(amount), hash });
}

async function withdraw(ctx: CliContext, providerText: string): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const { hash, amount, payout } = await withdrawBond(await ctx.client(), { providerId });
  ctx.out.say(`paid ${await ctx.amount(amount)} of bond to ${payout}`);
  ctx.out.result({ action: "bond-withdraw", providerId, amount: ctx.money(amount), payout, hash });
}

async function show(ctx: CliContext, providerText: string): Promise<void> {
  const conn = await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const bond = await getBond(conn.tollgateClient, { providerId });
  ctx.out.say(`provider ${providerId}'s bond`);
  ctx.out.say(`  available ${await ctx.amount(bond.available)}`);
  const unlock = bond.withdrawableAt === 0n ? "" : `, withdrawable at ${formatTimestamp(bond.withdrawableAt)} (unix ${bond.withdrawableAt})`;
  ctx.out.say(`  pending   ${await ctx.amount(bond.pending)}${unlock}; still slashable until withdrawn`);
  ctx.out.say(`  a withdrawal waits ${formatDuration(bond.withdrawalDelay)}; a fraud proof is accepted for ${formatDuration(bond.disputeWindow)} after a batch settles`);
  ctx.out.result({
    action: "bond-show",
    providerId,
    available: ctx.money(bond.available),
    pending: ctx.money(bond.pending),
    withdrawableAt: bond.withdrawableAt,
    withdrawalDelaySeconds: bond.withdrawalDelay,
    disputeWindowSeconds: bond.disputeWindow,
  });
}

/** Adds `provider bond …` under the `provider` command. */
export function registerProviderBond(provider: Command, context: ContextFactory): void {
  const bond = provider.command("bond").description("the bond behind the provider's gateway keys: post, withdraw after the delay, show");
  bond
    .command("post")
    .description("add to a provider's bond from your wallet (anyone may)")
    .argument("<providerId>", "the provider")
    .argument("<amount>", "token units, e.g. 500")
    .addHelpText("after", examples("tollgate provider bond post 1 500"))
    .action((id: string, amount: string, _options: unknown, cmd: Command) => post(context(cmd), id, amount));
  bond
    .command("request-withdrawal")
    .description("move part of the bond to pending; withdrawable after the delay, slashable until then (owner only)")
    .argument("<providerId>", "the provider")
    .argument("<amount>", "token units")
    .addHelpText("after", examples("tollgate provider bond request-withdrawal 1 200"))
    .action((id: string, amount: string, _options: unknown, cmd: Command) => requestWithdrawal(context(cmd), id, amount));
  bond
    .command("cancel-withdrawal")
    .description("return the whole pending bond to the available bond (owner only)")
    .argument("<providerId>", "the provider")
    .addHelpText("after", examples("tollgate provider bond cancel-withdrawal 1"))
    .action((id: string, _options: unknown, cmd: Command) => cancelWithdrawal(context(cmd), id));
  bond
    .command("withdraw")
    .description("pay the pending bond to the payout address once the delay has passed (owner only)")
    .argument("<providerId>", "the provider")
    .addHelpText("after", examples("tollgate provider bond withdraw 1"))
    .action((id: string, _options: unknown, cmd: Command) => withdraw(context(cmd), id));
  bond
    .command("show")
    .description("a provider's bond, pending withdrawal and the dispute terms (needs no key)")
    .argument("<providerId>", "the provider")
    .addHelpText("after", examples("tollgate provider bond show 1", "tollgate provider bond show 1 --json"))
    .action((id: string, _options: unknown, cmd: Command) => show(context(cmd), id));
}
