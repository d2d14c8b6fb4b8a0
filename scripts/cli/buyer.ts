/**
 * `tollgate buyer …`: fund the vault (approve + deposit, or a permit), buy and move credits, cap what a
 * provider may charge, withdraw, claim dispute awards, see the balance, and manage gateway API keys (`buyer keys`,
 * in buyer-keys.ts) and budgets (`buyer budgets`, in buyer-budgets.ts).
 * Every transaction is a client action (client/actions/), signed by the key from the environment; what is
 * here is the checks that name the shortfall before anything is signed, and what the command prints.
 */
import type { Command } from "commander";
import type { Address, LocalAccount } from "viem";
import {
  buyCredits as buyCreditsAction,
  cancelWithdrawal,
  claimDisputeAwards,
  clearSpendingLimit as clearSpendingLimitAction,
  deposit as depositAction,
  depositWithPermit as depositWithPermitAction,
  executeWithdrawal,
  getBuyerPosition,
  getDisputeAward,
  mintTestTokens,
  requestWithdrawal,
  setSpendingLimit as setSpendingLimitAction,
  transferCredits as transferCreditsAction,
  type GetBuyerPositionReturnType,
} from "../../client";
import { tollgateAbi, tollgateCreditsAbi } from "../../server/chain/abis";
import { formatDuration, formatTimestamp, MAX_UINT32, parseAddress, parseDuration, parseId, parseInteger } from "./arguments";
import { registerBudgetCommands } from "./buyer-budgets";
import { registerKeyCommands, gatewayBalance } from "./buyer-keys";
import { registerBuyerSubscriptions } from "./subscriptions";
import { CliError } from "./errors";
import { ENV, envValue, examples, type CliContext, type Connection, type ContextFactory } from "./context";

/** Credits are whole ERC-1155 units; one purchase may buy at most uint128 of them. */
const MAX_CREDITS = 2n ** 128n - 1n;

/** The buyer's wallet and vault only: no plan or provider given, so no credits or limits are read. */
function vaultPosition(conn: Connection, buyer: Address): Promise<GetBuyerPositionReturnType> {
  return getBuyerPosition(conn.tollgateClient, { buyer, planIds: [], providerIds: [] });
}

/** Errors out before anything is signed when the wallet cannot cover `needed`, naming both amounts. */
async function requireWalletFunds(ctx: CliContext, conn: Connection, owner: Address, needed: bigint): Promise<void> {
  const { wallet } = await vaultPosition(conn, owner);
  if (wallet < needed) {
    throw new CliError(
      `your wallet ${owner} holds ${await ctx.amount(wallet)}, less than the ${await ctx.amount(needed)} needed`,
      `send ${conn.token.symbol} to ${owner} first`,
    );
  }
}

/**
 * Mints the test token to the caller. Only for deployments whose deploy step made the token (TestUSD lets
 * anyone mint): a buyer on a fresh local chain has nothing to deposit otherwise.
 */
async function faucet(ctx: CliContext, amountText: string, options: { for?: string }): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  if (conn.deployment.parameters?.testToken !== true) {
    throw new CliError(
      `the payment token ${conn.token.symbol} (${conn.token.address}) is not a test token of this deployment`,
      "the faucet works only where the deploy step deployed TestUSD (deployment file: parameters.testToken); get real tokens to your wallet instead",
    );
  }
  const amount = await ctx.parseAmount(amountText, { what: "faucet amount" });
  const to = options.for ? parseAddress(options.for, "--for") : account.address;
  ctx.out.say(`minting ${await ctx.amount(amount)} of the test token to ${to}`);
  const { hash } = await mintTestTokens(await ctx.client(), { amount, to });
  const { wallet } = await vaultPosition(conn, to);
  ctx.out.say(`${to} now holds ${await ctx.amount(wallet)}`);
  ctx.out.result({ action: "faucet", to, minted: ctx.money(amount), wallet: ctx.money(wallet), hash });
}

/** What `deposit` and `deposit-permit` share: the amount, the credited buyer, and the wallet check. */
async function prepareDeposit(ctx: CliContext, amountText: string, options: { for?: string }) {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const amount = await ctx.parseAmount(amountText, { what: "deposit amount" });
  const buyer = options.for ? parseAddress(options.for, "--for") : account.address;
  await requireWalletFunds(ctx, conn, account.address, amount);
  return { conn, amount, buyer };
}

async function reportDeposit(ctx: CliContext, conn: Connection, buyer: Address, credited: bigint, txs: Record<string, string | undefined>): Promise<void> {
  const { balance } = await vaultPosition(conn, buyer);
  ctx.out.say(`deposited ${await ctx.amount(credited)}; vault balance of ${buyer} is now ${await ctx.amount(balance)}`);
  ctx.out.result({ action: "deposit", buyer, credited: ctx.money(credited), balance: ctx.money(balance), ...txs });
}

async function deposit(ctx: CliContext, amountText: string, options: { for?: string }): Promise<void> {
  const { conn, amount, buyer } = await prepareDeposit(ctx, amountText, options);
  ctx.out.say(`depositing ${await ctx.amount(amount)} into the vault for ${buyer}`);
  const { hash, approveHash, credited } = await depositAction(await ctx.client(), { amount, buyer });
  await reportDeposit(ctx, conn, buyer, credited, { hash, approveTx: approveHash });
}

async function depositWithPermit(ctx: CliContext, amountText: string, options: { for?: string }): Promise<void> {
  const { conn, amount, buyer } = await prepareDeposit(ctx, amountText, options);
  ctx.out.say(`depositing ${await ctx.amount(amount)} into the vault for ${buyer} with a permit (no approve transaction)`);
  const { hash, credited } = await depositWithPermitAction(await ctx.client(), { amount, buyer });
  await reportDeposit(ctx, conn, buyer, credited, { hash });
}

async function buyCredits(ctx: CliContext, planText: string, countText: string, options: { fromBalance?: boolean; for?: string }): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const planId = parseInteger(planText, "plan id", { min: 1n });
  const count = parseInteger(countText, "credit count", { min: 1n, max: MAX_CREDITS });
  const recipient = options.for ? parseAddress(options.for, "--for") : account.address;
  const plan = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "creditPlanOf", args: [planId] });
  const cost = plan.pricePerCredit * count;
  ctx.out.say(
    `buying ${count} credits of plan ${planId} (provider ${plan.providerId}; ${await ctx.amount(plan.pricePerCredit)} each, ` +
      `worth ${await ctx.amount(plan.valuePerCredit)} of usage each) for ${await ctx.amount(cost)}, paid from your ${options.fromBalance ? "vault balance" : "wallet"}`,
  );
  if (options.fromBalance) {
    const { balance } = await vaultPosition(conn, account.address);
    if (balance < cost) {
      throw new CliError(
        `your vault balance is ${await ctx.amount(balance)}, less than the ${await ctx.amount(cost)} the credits cost`,
        "deposit more with `tollgate buyer deposit <amount>`, or pay from the wallet (leave out --from-balance)",
      );
    }
  } else {
    await requireWalletFunds(ctx, conn, account.address, cost);
  }
  const { hash, approveHash, paid } = await buyCreditsAction(await ctx.client(), {
    planId,
    count,
    payFrom: options.fromBalance ? "balance" : "wallet",
    recipient,
  });
  const held = await conn.client.readContract({
    address: conn.tollgateClient.contracts.credits,
    abi: tollgateCreditsAbi,
    functionName: "balanceOf",
    args: [recipient, planId],
  });
  ctx.out.say(`bought ${count} credits of plan ${planId} for ${await ctx.amount(paid)}; ${recipient} now holds ${held}`);
  ctx.out.result({ action: "buy-credits", planId, count, recipient, paid: ctx.money(paid), creditsHeld: held, hash, approveTx: approveHash });
}

async function transferCredits(ctx: CliContext, toText: string, planText: string, countText: string): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const to = parseAddress(toText, "recipient");
  const planId = parseInteger(planText, "plan id", { min: 1n });
  const count = parseInteger(countText, "credit count", { min: 1n });
  const credits = conn.tollgateClient.contracts.credits;
  const held = await conn.client.readContract({ address: credits, abi: tollgateCreditsAbi, functionName: "balanceOf", args: [account.address, planId] });
  if (held < count) {
    throw new CliError(`you hold ${held} credits of plan ${planId}, fewer than ${count}`, "`tollgate buyer balance` shows the credits you hold");
  }
  ctx.out.say(`transferring ${count} credits of plan ${planId} from ${account.address} to ${to}`);
  const { hash } = await transferCreditsAction(await ctx.client(), { to, planId, count });
  const [mine, theirs] = await conn.client.readContract({
    address: credits,
    abi: tollgateCreditsAbi,
    functionName: "balanceOfBatch",
    args: [[account.address, to], [planId, planId]],
  });
  ctx.out.say(`transferred; you hold ${mine} credits of plan ${planId}, ${to} holds ${theirs}`);
  ctx.out.result({ action: "transfer-credits", from: account.address, to, planId, count, fromHolds: mine, toHolds: theirs, hash });
}

async function setSpendingLimit(ctx: CliContext, providerText: string, amountText: string, periodText: string): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  // Zero is a real limit: the provider may charge nothing (everything becomes recorded shortfall).
  const limit = await ctx.parseAmount(amountText, { what: "amount per period", allowZero: true });
  const period = parseDuration(periodText, "period", MAX_UINT32);
  ctx.out.say(`capping what provider ${providerId} may charge ${account.address} at ${await ctx.amount(limit)} per ${formatDuration(period)} (${period}s)`);
  const { hash } = await setSpendingLimitAction(await ctx.client(), { providerId, limitPerPeriod: limit, periodSeconds: Number(period) });
  const set = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "spendingLimitOf", args: [account.address, providerId] });
  ctx.out.say(
    `limit set: ${await ctx.amount(set.limitPerPeriod)} per ${formatDuration(set.period)} (${set.period}s), ` +
      `${await ctx.amount(set.spentInWindow)} already spent in the current window`,
  );
  ctx.out.result({ action: "set-spending-limit", buyer: account.address, providerId, limitPerPeriod: ctx.money(set.limitPerPeriod), periodSeconds: set.period, spentInWindow: ctx.money(set.spentInWindow), hash });
}

async function clearSpendingLimit(ctx: CliContext, providerText: string): Promise<void> {
  const account = await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  ctx.out.say(`removing ${account.address}'s spending limit for provider ${providerId}`);
  const { hash } = await clearSpendingLimitAction(await ctx.client(), { providerId });
  ctx.out.say("limit removed");
  ctx.out.result({ action: "clear-spending-limit", buyer: account.address, providerId, hash });
}

/** When the pending withdrawal can be executed, in words. */
function withdrawalStatus(position: GetBuyerPositionReturnType): string {
  if (position.pendingWithdrawal === 0n) return "none pending";
  if (position.withdrawableNow) return "withdrawable now (`tollgate buyer withdraw execute`)";
  return `withdrawable at ${formatTimestamp(position.withdrawableAt)}, in ${formatDuration(position.withdrawableAt - position.chainTime)}`;
}

async function withdrawRequest(ctx: CliContext, amountText: string): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const amount = await ctx.parseAmount(amountText, { what: "withdrawal amount" });
  ctx.out.say(`requesting a withdrawal of ${await ctx.amount(amount)}; it stays chargeable for usage already served until the delay passes`);
  const { hash } = await requestWithdrawal(await ctx.client(), { amount });
  const position = await vaultPosition(conn, account.address);
  ctx.out.say(`pending withdrawal now ${await ctx.amount(position.pendingWithdrawal)}, ${withdrawalStatus(position)}; balance ${await ctx.amount(position.balance)}`);
  ctx.out.result({
    action: "withdraw-request",
    buyer: account.address,
    requested: ctx.money(amount),
    pendingWithdrawal: ctx.money(position.pendingWithdrawal),
    withdrawableAt: position.withdrawableAt,
    balance: ctx.money(position.balance),
    hash,
  });
}

async function withdrawCancel(ctx: CliContext): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  ctx.out.say("cancelling the pending withdrawal; its amount returns to the balance");
  const { hash, returned } = await cancelWithdrawal(await ctx.client());
  const { balance } = await vaultPosition(conn, account.address);
  ctx.out.say(`returned ${await ctx.amount(returned)} to the balance, now ${await ctx.amount(balance)}`);
  ctx.out.result({ action: "withdraw-cancel", buyer: account.address, returned: ctx.money(returned), balance: ctx.money(balance), hash });
}

async function withdrawExecute(ctx: CliContext): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  ctx.out.say(`withdrawing what is left of ${account.address}'s pending withdrawal to the wallet`);
  const { hash, withdrawn } = await executeWithdrawal(await ctx.client());
  const { wallet } = await vaultPosition(conn, account.address);
  ctx.out.say(`withdrew ${await ctx.amount(withdrawn)}; wallet now holds ${await ctx.amount(wallet)}`);
  ctx.out.result({ action: "withdraw-execute", buyer: account.address, withdrawn: ctx.money(withdrawn), wallet: ctx.money(wallet), hash });
}

/** When an unclaimed dispute award can be claimed, in words. */
function awardStatus(claimableAt: bigint, chainTime: bigint): string {
  if (chainTime >= claimableAt) return "claimable now (`tollgate buyer claim-awards`)";
  return `claimable at ${formatTimestamp(claimableAt)}, in ${formatDuration(claimableAt - chainTime)}`;
}

async function claimAwards(ctx: CliContext): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  ctx.out.say(`claiming ${account.address}'s dispute awards (refunds and penalties from provider bonds) to the wallet`);
  const { hash, amount } = await claimDisputeAwards(await ctx.client());
  const { wallet } = await vaultPosition(conn, account.address);
  ctx.out.say(`claimed ${await ctx.amount(amount)}; wallet now holds ${await ctx.amount(wallet)}`);
  ctx.out.result({ action: "claim-awards", buyer: account.address, claimed: ctx.money(amount), wallet: ctx.money(wallet), hash });
}

async function balance(ctx: CliContext, options: { address?: string; provider?: string }): Promise<void> {
  let buyer: Address;
  if (options.address) {
    buyer = parseAddress(options.address, "--address");
  } else {
    let account: LocalAccount;
    try {
      account = await ctx.signer();
    } catch (error) {
      if (error instanceof CliError) throw new CliError(error.message, `${error.hint}; or name the account with --address <address>`);
      throw error;
    }
    buyer = account.address;
  }
  const conn = await ctx.connect();
  const providerIds = options.provider ? [parseId(options.provider, "--provider")] : undefined;
  const [position, award] = await Promise.all([getBuyerPosition(conn.tollgateClient, { buyer, providerIds }), getDisputeAward(conn.tollgateClient, { beneficiary: buyer })]);

  const fmt = (value: bigint) => ctx.amount(value);
  ctx.out.say(`account ${buyer} on chain ${conn.chain.id} (Tollgate ${conn.tollgate})`);
  ctx.out.say(`  wallet              ${await fmt(position.wallet)}`);
  ctx.out.say(`  vault balance       ${await fmt(position.balance)}`);
  ctx.out.say(`  pending withdrawal  ${await fmt(position.pendingWithdrawal)}${position.pendingWithdrawal > 0n ? `, ${withdrawalStatus(position)}` : ""}`);
  if (award.amount > 0n) ctx.out.say(`  dispute award       ${await fmt(award.amount)}, ${awardStatus(award.claimableAt, position.chainTime)}; not spendable until claimed`);
  if (position.credits.length === 0) ctx.out.say("  credits             none");
  for (const holding of position.credits) {
    const expiry = holding.expiresAt === 0 ? "never expire" : `expire ${formatTimestamp(holding.expiresAt)}`;
    ctx.out.say(
      `  credits plan ${holding.planId}      ${holding.credits} (provider ${holding.providerId}, worth ${await fmt(holding.valuePerCredit)} each, ${expiry})` +
        (holding.change > 0n ? ` + ${await fmt(holding.change)} change` : ""),
    );
  }
  if (position.spendingLimits.length === 0) ctx.out.say("  spending limits     none");
  for (const limit of position.spendingLimits) {
    ctx.out.say(
      `  spending limit      provider ${limit.providerId}: ${await fmt(limit.limitPerPeriod)} per ${formatDuration(limit.periodSeconds)}, ` +
        `${await fmt(limit.spentInWindow)} spent in the window from ${formatTimestamp(limit.windowStart)}`,
    );
  }

  const apiKey = envValue(ctx.io.env, ENV.apiKey);
  const gateway = apiKey ? await gatewayBalance(ctx, apiKey) : undefined;
  if (gateway?.view) {
    const g = gateway.view;
    if (g.buyer && g.buyer.toLowerCase() !== buyer.toLowerCase()) {
      ctx.out.warn(`note: ${ENV.apiKey} belongs to ${g.buyer}, not ${buyer}; the gateway view below is ${g.buyer}'s`);
    }
    ctx.out.say(`gateway ${ctx.options.gateway} (key ${g.key?.id ?? "?"}):`);
    ctx.out.say(`  unsettled usage     ${await fmt(BigInt(g.unsettled_usage ?? "0"))}`);
    ctx.out.say(`  open reservations   ${await fmt(BigInt(g.open_reservations ?? "0"))}`);
    for (const model of g.spendable_by_model ?? []) {
      ctx.out.say(`  spendable on ${model.model}: ${await fmt(BigInt(model.spendable))}`);
    }
    if (g.key?.spend_cap) ctx.out.say(`  key spend cap       ${await fmt(BigInt(g.key.spend_cap))}, ${await fmt(BigInt(g.key.spent ?? "0"))} spent`);
  }

  ctx.out.result({
    buyer,
    chainId: conn.chain.id,
    wallet: ctx.money(position.wallet),
    balance: ctx.money(position.balance),
    pendingWithdrawal: ctx.money(position.pendingWithdrawal),
    withdrawableAt: position.pendingWithdrawal > 0n ? position.withdrawableAt : null,
    withdrawableNow: position.withdrawableNow,
    disputeAward: ctx.money(award.amount),
    disputeAwardClaimableAt: award.amount > 0n ? award.claimableAt : null,
    credits: position.credits.map((holding) => ({
      planId: holding.planId,
      providerId: holding.providerId,
      credits: holding.credits,
      valuePerCredit: ctx.money(holding.valuePerCredit),
      change: ctx.money(holding.change),
      expiresAt: holding.expiresAt,
    })),
    spendingLimits: position.spendingLimits.map((limit) => ({
      providerId: limit.providerId,
      limitPerPeriod: ctx.money(limit.limitPerPeriod),
      periodSeconds: limit.periodSeconds,
      windowStart: limit.windowStart,
      spentInWindow: ctx.money(limit.spentInWindow),
    })),
    gateway: gateway ? (gateway.view ?? { unreachable: gateway.problem }) : null,
  });
}

export function registerBuyer(program: Command, context: ContextFactory): void {
  const buyer = program
    .command("buyer")
    .description("fund the vault, buy and move credits, set spending limits, withdraw, manage API keys");

  buyer
    .command("faucet")
    .description("mint test tokens to your wallet (only on deployments with the TestUSD test token)")
    .argument("<amount>", "amount in token units, e.g. 100")
    .option("--for <address>", "mint to another address")
    .addHelpText("after", examples("tollgate buyer faucet 100"))
    .action((amount: string, options: { for?: string }, cmd: Command) => faucet(context(cmd), amount, options));

  buyer
    .command("deposit")
    .description("deposit tokens from your wallet into your vault balance (approves the vault first if needed)")
    .argument("<amount>", "amount in token units, e.g. 12.5")
    .option("--for <address>", "credit another buyer's balance (you pay)")
    .addHelpText("after", examples("tollgate buyer deposit 25", "tollgate buyer deposit 12.5 --for 0x70997970C51812dc3A010C7d01b50e0d17dc79C8"))
    .action((amount: string, options: { for?: string }, cmd: Command) => deposit(context(cmd), amount, options));

  buyer
    .command("deposit-permit")
    .description("deposit with an EIP-2612 permit signature instead of an approve transaction")
    .argument("<amount>", "amount in token units, e.g. 12.5")
    .option("--for <address>", "credit another buyer's balance (you pay)")
    .addHelpText("after", examples("tollgate buyer deposit-permit 20"))
    .action((amount: string, options: { for?: string }, cmd: Command) => depositWithPermit(context(cmd), amount, options));

  buyer
    .command("buy-credits")
    .description("buy credits of a provider's plan (ERC-1155, transferable), paid from your wallet or your vault balance")
    .argument("<planId>", "the credit plan (see `tollgate provider show <providerId>`)")
    .argument("<count>", "how many whole credits")
    .option("--from-balance", "pay from your vault balance instead of your wallet")
    .option("--for <address>", "send the credits to another address")
    .addHelpText("after", examples("tollgate buyer buy-credits 1 100", "tollgate buyer buy-credits 1 100 --from-balance"))
    .action((plan: string, count: string, options: { fromBalance?: boolean; for?: string }, cmd: Command) => buyCredits(context(cmd), plan, count, options));

  buyer
    .command("transfer-credits")
    .description("send credits to another address (ERC-1155 safeTransferFrom); unused change of a burned credit stays with you")
    .argument("<to>", "recipient address")
    .argument("<planId>", "the credit plan")
    .argument("<count>", "how many whole credits")
    .addHelpText("after", examples("tollgate buyer transfer-credits 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC 1 10"))
    .action((to: string, plan: string, count: string, _options: unknown, cmd: Command) => transferCredits(context(cmd), to, plan, count));

  buyer
    .command("set-spending-limit")
    .description("cap what one provider may charge you per period; usage beyond it is recorded as shortfall, not charged")
    .argument("<providerId>", "the provider")
    .argument("<amountPerPeriod>", "most the provider may charge per period, in token units (0 blocks all charges)")
    .argument("<period>", 'period length: seconds ("86400") or with a unit ("1d", "12h", "1w")')
    .addHelpText("after", examples("tollgate buyer set-spending-limit 1 50 1d", "tollgate buyer set-spending-limit 1 200 604800"))
    .action((provider: string, amount: string, period: string, _options: unknown, cmd: Command) => setSpendingLimit(context(cmd), provider, amount, period));

  buyer
    .command("clear-spending-limit")
    .description("remove your spending limit for a provider")
    .argument("<providerId>", "the provider")
    .addHelpText("after", examples("tollgate buyer clear-spending-limit 1"))
    .action((provider: string, _options: unknown, cmd: Command) => clearSpendingLimit(context(cmd), provider));

  const withdraw = buyer
    .command("withdraw")
    .description("take money out of the vault: request, wait the withdrawal delay, execute (or cancel)");
  withdraw
    .command("request")
    .description("move an amount of your balance into a pending withdrawal; restarts the delay for the whole pending amount")
    .argument("<amount>", "amount in token units, e.g. 12.5")
    .addHelpText("after", examples("tollgate buyer withdraw request 10"))
    .action((amount: string, _options: unknown, cmd: Command) => withdrawRequest(context(cmd), amount));
  withdraw
    .command("cancel")
    .description("return the whole pending withdrawal to your balance")
    .addHelpText("after", examples("tollgate buyer withdraw cancel"))
    .action((_options: unknown, cmd: Command) => withdrawCancel(context(cmd)));
  withdraw
    .command("execute")
    .description("send what is left of the pending withdrawal to your wallet, once the delay has passed")
    .addHelpText("after", examples("tollgate buyer withdraw execute"))
    .action((_options: unknown, cmd: Command) => withdrawExecute(context(cmd)));

  buyer
    .command("claim-awards")
    .description("send your dispute awards (refunds and penalties from a lying gateway's bond) to your wallet, 15 days after the latest award")
    .addHelpText("after", examples("tollgate buyer claim-awards"))
    .action((_options: unknown, cmd: Command) => claimAwards(context(cmd)));

  registerKeyCommands(buyer, context);
  registerBudgetCommands(buyer, context);
  registerBuyerSubscriptions(buyer, context);

  buyer
    .command("balance")
    .description(`your wallet, vault balance, pending withdrawal, credits and spending limits; with ${ENV.apiKey} set, also the gateway's view`)
    .option("--address <address>", "show another account (needs no key)")
    .option("--provider <providerId>", "show the spending limit for this provider only")
    .addHelpText("after", examples("tollgate buyer balance", "tollgate buyer balance --address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json"))
    .action((options: { address?: string; provider?: string }, cmd: Command) => balance(context(cmd), options));
}
