/**
 * `tollgate buyer …`: fund the vault (approve + deposit, or a permit), buy and move credits, cap what a
 * provider may charge, withdraw, see the balance, and manage gateway API keys (`buyer keys`, in buyer-keys.ts).
 */
import type { Command } from "commander";
import { parseEventLogs, parseSignature, type Address, type LocalAccount, type TypedDataDomain } from "viem";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi } from "../../server/chain/abis";
import { permitTypes } from "../../server/chain/permit";
import { formatDuration, formatTimestamp, MAX_UINT32, parseAddress, parseDuration, parseId, parseInteger } from "./arguments";
import { registerKeyCommands, gatewayBalance } from "./buyer-keys";
import { CliError } from "./errors";
import { ENV, envValue, examples, type CliContext, type Connection, type ContextFactory } from "./context";

/** Credits are whole ERC-1155 units; one purchase may buy at most uint128 of them. */
const MAX_CREDITS = 2n ** 128n - 1n;
/** How long a deposit permit stays valid: long enough to be mined, short enough not to linger. */
const PERMIT_LIFETIME_SECONDS = 30n * 60n;

/** Errors out before anything is signed when the wallet cannot cover `needed`, naming both amounts. */
async function requireWalletFunds(ctx: CliContext, conn: Connection, owner: Address, needed: bigint): Promise<bigint> {
  const held = await conn.client.readContract({ address: conn.token.address, abi: testUsdAbi, functionName: "balanceOf", args: [owner] });
  if (held < needed) {
    throw new CliError(
      `your wallet ${owner} holds ${await ctx.amount(held)}, less than the ${await ctx.amount(needed)} needed`,
      `send ${conn.token.symbol} to ${owner} first`,
    );
  }
  return held;
}

/**
 * Approves the vault for exactly `needed` when the allowance falls short. Exact rather than unlimited, so no
 * standing allowance outlives the command.
 */
async function ensureAllowance(ctx: CliContext, conn: Connection, owner: Address, needed: bigint): Promise<string | undefined> {
  const allowance = await conn.client.readContract({
    address: conn.token.address,
    abi: testUsdAbi,
    functionName: "allowance",
    args: [owner, conn.tollgate],
  });
  if (allowance >= needed) return undefined;
  const { hash } = await ctx.send(`approve ${await ctx.amount(needed)} for the vault`, {
    address: conn.token.address,
    abi: testUsdAbi,
    functionName: "approve",
    args: [conn.tollgate, needed],
  });
  return hash;
}

async function vaultBalance(conn: Connection, buyer: Address) {
  return conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "accountOf", args: [buyer] });
}

async function creditsToken(conn: Connection): Promise<Address> {
  return conn.deployment.credits ?? conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "credits" });
}

async function chainTime(conn: Connection): Promise<bigint> {
  return (await conn.client.getBlock({ blockTag: "latest" })).timestamp;
}

/** The EIP-712 domain of the token's permit, read from the token (ERC-5267) rather than assumed. */
async function permitDomain(conn: Connection): Promise<TypedDataDomain> {
  try {
    const [, name, version, chainId, verifyingContract] = await conn.client.readContract({
      address: conn.token.address,
      abi: testUsdAbi,
      functionName: "eip712Domain",
    });
    return { name, version, chainId: Number(chainId), verifyingContract };
  } catch {
    // Tokens older than ERC-5267 (USDC's is version "2") cannot be asked; OpenZeppelin's ERC20Permit uses "1".
    const name = await conn.client.readContract({ address: conn.token.address, abi: testUsdAbi, functionName: "name" });
    return { name, version: "1", chainId: conn.chain.id, verifyingContract: conn.token.address };
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
  const { hash } = await ctx.send("mint", { address: conn.token.address, abi: testUsdAbi, functionName: "mint", args: [to, amount] });
  const held = await conn.client.readContract({ address: conn.token.address, abi: testUsdAbi, functionName: "balanceOf", args: [to] });
  ctx.out.say(`${to} now holds ${await ctx.amount(held)}`);
  ctx.out.result({ action: "faucet", to, minted: ctx.money(amount), wallet: ctx.money(held), hash });
}

async function deposit(ctx: CliContext, amountText: string, options: { for?: string }): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const amount = await ctx.parseAmount(amountText, { what: "deposit amount" });
  const buyer = options.for ? parseAddress(options.for, "--for") : account.address;
  await requireWalletFunds(ctx, conn, account.address, amount);
  ctx.out.say(`depositing ${await ctx.amount(amount)} into the vault for ${buyer}`);
  const approveTx = await ensureAllowance(ctx, conn, account.address, amount);
  const { hash, receipt } = await ctx.send("deposit", {
    address: conn.tollgate,
    abi: tollgateAbi,
    functionName: "deposit",
    args: [buyer, amount],
  });
  await reportDeposit(ctx, conn, buyer, receipt.logs, { hash, approveTx });
}

async function reportDeposit(
  ctx: CliContext,
  conn: Connection,
  buyer: Address,
  logs: Parameters<typeof parseEventLogs>[0]["logs"],
  txs: Record<string, string | undefined>,
): Promise<void> {
  const [event] = parseEventLogs({ abi: tollgateAbi, logs, eventName: "Deposited" });
  const credited = event?.args.credited ?? 0n;
  const after = await vaultBalance(conn, buyer);
  ctx.out.say(`deposited ${await ctx.amount(credited)}; vault balance of ${buyer} is now ${await ctx.amount(after.balance)}`);
  ctx.out.result({ action: "deposit", buyer, credited: ctx.money(credited), balance: ctx.money(after.balance), ...txs });
}

async function depositWithPermit(ctx: CliContext, amountText: string, options: { for?: string }): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const amount = await ctx.parseAmount(amountText, { what: "deposit amount" });
  const buyer = options.for ? parseAddress(options.for, "--for") : account.address;
  await requireWalletFunds(ctx, conn, account.address, amount);
  const [domain, nonce, now] = await Promise.all([
    permitDomain(conn),
    conn.client.readContract({ address: conn.token.address, abi: testUsdAbi, functionName: "nonces", args: [account.address] }),
    chainTime(conn),
  ]);
  // Chain time, not the local clock: a test chain may run days ahead.
  const deadline = now + PERMIT_LIFETIME_SECONDS;
  const signature = await account.signTypedData({
    domain,
    types: permitTypes,
    primaryType: "Permit",
    message: { owner: account.address, spender: conn.tollgate, value: amount, nonce, deadline },
  });
  const { r, s, v, yParity } = parseSignature(signature);
  ctx.out.say(`depositing ${await ctx.amount(amount)} into the vault for ${buyer} with a permit (no approve transaction)`);
  const { hash, receipt } = await ctx.send("depositWithPermit", {
    address: conn.tollgate,
    abi: tollgateAbi,
    functionName: "depositWithPermit",
    args: [buyer, amount, deadline, Number(v ?? 27n + BigInt(yParity)), r, s],
  });
  await reportDeposit(ctx, conn, buyer, receipt.logs, { hash });
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
  let approveTx: string | undefined;
  if (options.fromBalance) {
    const vault = await vaultBalance(conn, account.address);
    if (vault.balance < cost) {
      throw new CliError(
        `your vault balance is ${await ctx.amount(vault.balance)}, less than the ${await ctx.amount(cost)} the credits cost`,
        "deposit more with `tollgate buyer deposit <amount>`, or pay from the wallet (leave out --from-balance)",
      );
    }
  } else {
    await requireWalletFunds(ctx, conn, account.address, cost);
    approveTx = await ensureAllowance(ctx, conn, account.address, cost);
  }
  const { hash, receipt } = await ctx.send(options.fromBalance ? "buyCreditsWithBalance" : "buyCredits", {
    address: conn.tollgate,
    abi: tollgateAbi,
    functionName: options.fromBalance ? "buyCreditsWithBalance" : "buyCredits",
    args: [planId, count, recipient],
  });
  const [event] = parseEventLogs({ abi: tollgateAbi, logs: receipt.logs, eventName: "CreditsPurchased" });
  const held = await conn.client.readContract({
    address: await creditsToken(conn),
    abi: tollgateCreditsAbi,
    functionName: "balanceOf",
    args: [recipient, planId],
  });
  const paid = event?.args.paid ?? cost;
  ctx.out.say(`bought ${count} credits of plan ${planId} for ${await ctx.amount(paid)}; ${recipient} now holds ${held}`);
  ctx.out.result({ action: "buy-credits", planId, count, recipient, paid: ctx.money(paid), creditsHeld: held, hash, approveTx });
}

async function transferCredits(ctx: CliContext, toText: string, planText: string, countText: string): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const to = parseAddress(toText, "recipient");
  const planId = parseInteger(planText, "plan id", { min: 1n });
  const count = parseInteger(countText, "credit count", { min: 1n });
  const credits = await creditsToken(conn);
  const held = await conn.client.readContract({ address: credits, abi: tollgateCreditsAbi, functionName: "balanceOf", args: [account.address, planId] });
  if (held < count) {
    throw new CliError(`you hold ${held} credits of plan ${planId}, fewer than ${count}`, "`tollgate buyer balance` shows the credits you hold");
  }
  ctx.out.say(`transferring ${count} credits of plan ${planId} from ${account.address} to ${to}`);
  const { hash } = await ctx.send("safeTransferFrom", {
    address: credits,
    abi: tollgateCreditsAbi,
    functionName: "safeTransferFrom",
    args: [account.address, to, planId, count, "0x"],
  });
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
  const { hash } = await ctx.send("setSpendingLimit", {
    address: conn.tollgate,
    abi: tollgateAbi,
    functionName: "setSpendingLimit",
    args: [providerId, limit, Number(period)],
  });
  const set = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "spendingLimitOf", args: [account.address, providerId] });
  ctx.out.say(
    `limit set: ${await ctx.amount(set.limitPerPeriod)} per ${formatDuration(set.period)} (${set.period}s), ` +
      `${await ctx.amount(set.spentInWindow)} already spent in the current window`,
  );
  ctx.out.result({ action: "set-spending-limit", buyer: account.address, providerId, limitPerPeriod: ctx.money(set.limitPerPeriod), periodSeconds: set.period, spentInWindow: ctx.money(set.spentInWindow), hash });
}

async function clearSpendingLimit(ctx: CliContext, providerText: string): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  ctx.out.say(`removing ${account.address}'s spending limit for provider ${providerId}`);
  const { hash } = await ctx.send("clearSpendingLimit", { address: conn.tollgate, abi: tollgateAbi, functionName: "clearSpendingLimit", args: [providerId] });
  ctx.out.say("limit removed");
  ctx.out.result({ action: "clear-spending-limit", buyer: account.address, providerId, hash });
}

async function describeWithdrawal(ctx: CliContext, conn: Connection, buyer: Address) {
  const [view, now] = await Promise.all([vaultBalance(conn, buyer), chainTime(conn)]);
  const ready = view.pendingWithdrawal > 0n && view.withdrawableAt <= now;
  const when =
    view.pendingWithdrawal === 0n
      ? "none pending"
      : ready
        ? "withdrawable now (`tollgate buyer withdraw execute`)"
        : `withdrawable at ${formatTimestamp(view.withdrawableAt)}, in ${formatDuration(view.withdrawableAt - now)}`;
  return { view, now, ready, when };
}

async function withdrawRequest(ctx: CliContext, amountText: string): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  const amount = await ctx.parseAmount(amountText, { what: "withdrawal amount" });
  ctx.out.say(`requesting a withdrawal of ${await ctx.amount(amount)}; it stays chargeable for usage already served until the delay passes`);
  const { hash, receipt } = await ctx.send("requestWithdrawal", {
    address: conn.tollgate,
    abi: tollgateAbi,
    functionName: "requestWithdrawal",
    args: [amount],
  });
  const [event] = parseEventLogs({ abi: tollgateAbi, logs: receipt.logs, eventName: "WithdrawalRequested" });
  const { view, when } = await describeWithdrawal(ctx, conn, account.address);
  ctx.out.say(`pending withdrawal now ${await ctx.amount(view.pendingWithdrawal)}, ${when}; balance ${await ctx.amount(view.balance)}`);
  ctx.out.result({
    action: "withdraw-request",
    buyer: account.address,
    requested: ctx.money(event?.args.amount ?? amount),
    pendingWithdrawal: ctx.money(view.pendingWithdrawal),
    withdrawableAt: view.withdrawableAt,
    balance: ctx.money(view.balance),
    hash,
  });
}

async function withdrawCancel(ctx: CliContext): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  ctx.out.say("cancelling the pending withdrawal; its amount returns to the balance");
  const { hash, receipt } = await ctx.send("cancelWithdrawal", { address: conn.tollgate, abi: tollgateAbi, functionName: "cancelWithdrawal", args: [] });
  const [event] = parseEventLogs({ abi: tollgateAbi, logs: receipt.logs, eventName: "WithdrawalCancelled" });
  const view = await vaultBalance(conn, account.address);
  const returned = event?.args.amount ?? 0n;
  ctx.out.say(`returned ${await ctx.amount(returned)} to the balance, now ${await ctx.amount(view.balance)}`);
  ctx.out.result({ action: "withdraw-cancel", buyer: account.address, returned: ctx.money(returned), balance: ctx.money(view.balance), hash });
}

async function withdrawExecute(ctx: CliContext): Promise<void> {
  const account = await ctx.signer();
  const conn = await ctx.connect();
  ctx.out.say(`withdrawing what is left of ${account.address}'s pending withdrawal to the wallet`);
  const { hash, receipt } = await ctx.send("withdraw", { address: conn.tollgate, abi: tollgateAbi, functionName: "withdraw", args: [] });
  const [event] = parseEventLogs({ abi: tollgateAbi, logs: receipt.logs, eventName: "Withdrawn" });
  const amount = event?.args.amount ?? 0n;
  const wallet = await conn.client.readContract({ address: conn.token.address, abi: testUsdAbi, functionName: "balanceOf", args: [account.address] });
  ctx.out.say(`withdrew ${await ctx.amount(amount)}; wallet now holds ${await ctx.amount(wallet)}`);
  ctx.out.result({ action: "withdraw-execute", buyer: account.address, withdrawn: ctx.money(amount), wallet: ctx.money(wallet), hash });
}

/** Reads in groups, so a deployment with many plans or providers does not fire thousands of requests at once. */
async function inChunks<T, R>(items: readonly T[], size: number, read: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(read))));
  return results;
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
  const read = { address: conn.tollgate, abi: tollgateAbi } as const;
  const credits = await creditsToken(conn);
  const [wallet, withdrawal, planCount, providerCount] = await Promise.all([
    conn.client.readContract({ address: conn.token.address, abi: testUsdAbi, functionName: "balanceOf", args: [buyer] }),
    describeWithdrawal(ctx, conn, buyer),
    conn.client.readContract({ ...read, functionName: "creditPlanCount" }),
    conn.client.readContract({ ...read, functionName: "providerCount" }),
  ]);
  const { view } = withdrawal;

  const planIds = Array.from({ length: Number(planCount) }, (_, i) => BigInt(i + 1));
  const held = await inChunks(planIds, 100, async (planId) => {
    const [count, change] = await Promise.all([
      conn.client.readContract({ address: credits, abi: tollgateCreditsAbi, functionName: "balanceOf", args: [buyer, planId] }),
      conn.client.readContract({ ...read, functionName: "creditChangeOf", args: [buyer, planId] }),
    ]);
    return { planId, count, change };
  });
  const plans = await Promise.all(
    held
      .filter((entry) => entry.count > 0n || entry.change > 0n)
      .map(async (entry) => ({ ...entry, plan: await conn.client.readContract({ ...read, functionName: "creditPlanOf", args: [entry.planId] }) })),
  );

  const providerIds = options.provider ? [parseId(options.provider, "--provider")] : Array.from({ length: Number(providerCount) }, (_, i) => i + 1);
  const limits = (
    await inChunks(providerIds, 100, async (providerId) => ({
      providerId,
      limit: await conn.client.readContract({ ...read, functionName: "spendingLimitOf", args: [buyer, providerId] }),
    }))
  ).filter((entry) => entry.limit.period !== 0);

  const fmt = (value: bigint) => ctx.amount(value);
  ctx.out.say(`account ${buyer} on chain ${conn.chain.id} (Tollgate ${conn.tollgate})`);
  ctx.out.say(`  wallet              ${await fmt(wallet)}`);
  ctx.out.say(`  vault balance       ${await fmt(view.balance)}`);
  ctx.out.say(`  pending withdrawal  ${await fmt(view.pendingWithdrawal)}${view.pendingWithdrawal > 0n ? `, ${withdrawal.when}` : ""}`);
  if (plans.length === 0) ctx.out.say("  credits             none");
  for (const { planId, count, change, plan } of plans) {
    const expiry = plan.expiresAt === 0 ? "never expire" : `expire ${formatTimestamp(plan.expiresAt)}`;
    ctx.out.say(
      `  credits plan ${planId}      ${count} (provider ${plan.providerId}, worth ${await fmt(plan.valuePerCredit)} each, ${expiry})` +
        (change > 0n ? ` + ${await fmt(change)} change` : ""),
    );
  }
  if (limits.length === 0) ctx.out.say("  spending limits     none");
  for (const { providerId, limit } of limits) {
    ctx.out.say(
      `  spending limit      provider ${providerId}: ${await fmt(limit.limitPerPeriod)} per ${formatDuration(limit.period)}, ` +
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
    wallet: ctx.money(wallet),
    balance: ctx.money(view.balance),
    pendingWithdrawal: ctx.money(view.pendingWithdrawal),
    withdrawableAt: view.pendingWithdrawal > 0n ? view.withdrawableAt : null,
    withdrawableNow: withdrawal.ready,
    credits: plans.map(({ planId, count, change, plan }) => ({
      planId,
      providerId: plan.providerId,
      credits: count,
      valuePerCredit: ctx.money(plan.valuePerCredit),
      change: ctx.money(change),
      expiresAt: plan.expiresAt,
    })),
    spendingLimits: limits.map(({ providerId, limit }) => ({
      providerId,
      limitPerPeriod: ctx.money(limit.limitPerPeriod),
      periodSeconds: limit.period,
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

  registerKeyCommands(buyer, context);

  buyer
    .command("balance")
    .description(`your wallet, vault balance, pending withdrawal, credits and spending limits; with ${ENV.apiKey} set, also the gateway's view`)
    .option("--address <address>", "show another account (needs no key)")
    .option("--provider <providerId>", "show the spending limit for this provider only")
    .addHelpText("after", examples("tollgate buyer balance", "tollgate buyer balance --address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json"))
    .action((options: { address?: string; provider?: string }, cmd: Command) => balance(context(cmd), options));
}
