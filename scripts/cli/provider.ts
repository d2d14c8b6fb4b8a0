/**
 * `tollgate provider …`: register, list models with per-million-token prices, schedule price changes
 * (effective after the deployment's notice period), define credit plans, name the gateway keys allowed to
 * report usage, withdraw earnings, bond the gateways (`provider bond`, in provider-bond.ts), and show all of it. Every transaction is a client action (client/actions/).
 */
import type { Command } from "commander";
import type { Address } from "viem";
import {
  defineCreditPlan,
  listModel as listModelAction,
  registerProvider as registerProviderAction,
  scheduleModelPrice,
  setModelPaused as setModelPausedAction,
  setSignerAuthorization,
  updateProvider,
  withdrawEarnings as withdrawEarningsAction,
} from "../../client";
import { tollgateAbi } from "../../server/chain/abis";
import { formatDuration, formatTimestamp, MAX_UINT32, parseAddress, parseId, parseList, parseTimestamp } from "./arguments";
import { examples, type CliContext, type Connection, type ContextFactory } from "./context";
import { CliError } from "./errors";
import { registerProviderBond } from "./provider-bond";
import { registerProviderSubscriptionPlans } from "./subscriptions";

interface PriceOptions {
  input?: string;
  cachedInput?: string;
  output?: string;
}

interface Prices {
  input: bigint;
  cachedInput: bigint;
  output: bigint;
}

/** Prices are per million tokens in token units ("0.15" = 0.15 tUSD per million); zero is a valid price. */
async function parsePrices(ctx: CliContext, options: PriceOptions, current?: Prices): Promise<Prices> {
  const price = async (text: string | undefined, flag: string, fallback: bigint | undefined) => {
    if (text !== undefined) return ctx.parseAmount(text, { what: flag, allowZero: true });
    if (fallback !== undefined) return fallback;
    throw new CliError(`${flag} is required`, `give the price per million tokens in token units, e.g. ${flag} 0.15`);
  };
  const input = await price(options.input, "--input", current?.input);
  // Without a cache discount, cached input costs what input costs.
  const cachedInput = await price(options.cachedInput, "--cached-input", current?.cachedInput ?? input);
  const output = await price(options.output, "--output", current?.output);
  return { input, cachedInput, output };
}

async function describePrices(ctx: CliContext, prices: Prices): Promise<string> {
  return `${await ctx.amount(prices.input)} input / ${await ctx.amount(prices.cachedInput)} cached input / ${await ctx.amount(prices.output)} output per million tokens`;
}

function priceJson(ctx: CliContext, prices: Prices) {
  return { input: ctx.money(prices.input), cachedInput: ctx.money(prices.cachedInput), output: ctx.money(prices.output) };
}

async function register(ctx: CliContext, payoutText: string, metadataUri: string): Promise<void> {
  const account = await ctx.signer();
  await ctx.connect();
  const payout = parseAddress(payoutText, "payout address");
  ctx.out.say(`registering a provider owned by ${account.address}, paid at ${payout}`);
  const { hash, providerId } = await registerProviderAction(await ctx.client(), { payout, metadataUri });
  ctx.out.say(`registered provider ${providerId} (metadata ${metadataUri})`);
  ctx.out.result({ action: "register", providerId, owner: account.address, payout, metadataUri, hash });
}

async function update(ctx: CliContext, providerText: string, payoutText: string, metadataUri: string): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const payout = parseAddress(payoutText, "payout address");
  ctx.out.say(`updating provider ${providerId}: payout ${payout}, metadata ${metadataUri}`);
  const { hash } = await updateProvider(await ctx.client(), { providerId, payout, metadataUri });
  ctx.out.say("updated");
  ctx.out.result({ action: "update", providerId, payout, metadataUri, hash });
}

async function listModel(ctx: CliContext, providerText: string, name: string, options: PriceOptions): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const prices = await parsePrices(ctx, options);
  ctx.out.say(`listing model "${name}" for provider ${providerId} at ${await describePrices(ctx, prices)}, in force at once`);
  const { hash, modelId, localIndex } = await listModelAction(await ctx.client(), { providerId, name, prices });
  ctx.out.say(`listed model ${modelId} "${name}" (provider ${providerId}, credit-plan bit ${localIndex})`);
  ctx.out.result({ action: "list-model", modelId, providerId, name, localIndex, prices: priceJson(ctx, prices), hash });
}

async function latestEpoch(conn: Connection, modelId: number) {
  const model = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "modelOf", args: [modelId] });
  const epoch = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "priceEpochOf", args: [modelId, model.epochCount - 1n] });
  return { model, epoch };
}

async function setPrice(ctx: CliContext, modelText: string, options: PriceOptions): Promise<void> {
  await ctx.signer();
  const conn = await ctx.connect();
  const modelId = parseId(modelText, "model id");
  if (options.input === undefined && options.cachedInput === undefined && options.output === undefined) {
    throw new CliError("no new price given", "give at least one of --input, --cached-input, --output (the others keep their latest value)");
  }
  const [{ epoch }, notice] = await Promise.all([
    latestEpoch(conn, modelId),
    conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "priceNoticePeriod" }),
  ]);
  const prices = await parsePrices(ctx, options, { input: epoch.input, cachedInput: epoch.cachedInput, output: epoch.output });
  ctx.out.say(`scheduling model ${modelId} at ${await describePrices(ctx, prices)}, after the ${formatDuration(notice)} notice period (${notice}s)`);
  const { hash, effectiveFrom, epochIndex, replacedEpochIndex } = await scheduleModelPrice(await ctx.client(), { modelId, prices });
  if (replacedEpochIndex !== undefined) ctx.out.say(`  replaced the not-yet-effective price epoch ${replacedEpochIndex}`);
  ctx.out.say(`new prices take effect at ${formatTimestamp(effectiveFrom)} (unix ${effectiveFrom}) as epoch ${epochIndex}; usage served before then keeps the old prices`);
  ctx.out.result({
    action: "set-price",
    modelId,
    prices: priceJson(ctx, prices),
    effectiveFrom,
    epochIndex,
    noticeSeconds: notice,
    replacedEpoch: replacedEpochIndex ?? null,
    hash,
  });
}

async function setModelPaused(ctx: CliContext, modelText: string, paused: boolean): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const modelId = parseId(modelText, "model id");
  ctx.out.say(`${paused ? "pausing" : "resuming"} model ${modelId}${paused ? " (gateways stop serving it; usage already served still settles)" : ""}`);
  const { hash } = await setModelPausedAction(await ctx.client(), { modelId, paused });
  ctx.out.say(paused ? "paused" : "resumed");
  ctx.out.result({ action: paused ? "pause-model" : "resume-model", modelId, paused, hash });
}

interface PlanOptions {
  price: string;
  value: string;
  models: string;
  expiresAt?: string;
}

async function definePlan(ctx: CliContext, providerText: string, options: PlanOptions): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const price = await ctx.parseAmount(options.price, { what: "--price", allowZero: true });
  const value = await ctx.parseAmount(options.value, { what: "--value" });
  const modelIds = parseList(options.models).map((id) => parseId(id, "model id in --models"));
  if (modelIds.length === 0) throw new CliError("--models names no model", 'list the model ids the credits cover, e.g. --models 1,2');
  const expiresAt = options.expiresAt === undefined ? 0n : parseTimestamp(options.expiresAt, "--expires-at", MAX_UINT32);
  ctx.out.say(
    `defining a credit plan for provider ${providerId}: ${await ctx.amount(price)} per credit, worth ${await ctx.amount(value)} of usage ` +
      `on models ${modelIds.join(", ")}, ${expiresAt === 0n ? "never expiring" : `expiring ${formatTimestamp(expiresAt)}`}`,
  );
  const { hash, planId } = await defineCreditPlan(await ctx.client(), {
    providerId,
    pricePerCredit: price,
    valuePerCredit: value,
    modelIds,
    expiresAt: Number(expiresAt),
  });
  ctx.out.say(`defined credit plan ${planId}; buyers buy it with \`tollgate buyer buy-credits ${planId} <count>\``);
  ctx.out.result({
    action: "define-plan",
    planId,
    providerId,
    pricePerCredit: ctx.money(price),
    valuePerCredit: ctx.money(value),
    modelIds,
    expiresAt,
    hash,
  });
}

async function setSigner(ctx: CliContext, providerText: string, signerText: string, authorized: boolean): Promise<void> {
  await ctx.signer();
  const conn = await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const signer = parseAddress(signerText, "signer address");
  ctx.out.say(
    authorized
      ? `authorizing gateway key ${signer} to sign usage batches for provider ${providerId} (a key serves one provider for life)`
      : `revoking gateway key ${signer} for provider ${providerId}; its unsettled batches will no longer settle`,
  );
  const { hash } = await setSignerAuthorization(await ctx.client(), { providerId, signer, authorized });
  const view = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] });
  ctx.out.say(`${signer} is now ${view.authorized ? "authorized" : "revoked"} for provider ${view.providerId}; next sequence ${view.nextSequence}`);
  ctx.out.result({ action: authorized ? "authorize-signer" : "revoke-signer", providerId, signer, authorized: view.authorized, nextSequence: view.nextSequence, hash });
}

async function withdrawEarnings(ctx: CliContext, providerText: string): Promise<void> {
  await ctx.signer();
  const conn = await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const earnings = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "earningsOf", args: [providerId] });
  ctx.out.say(`withdrawing provider ${providerId}'s earnings of ${await ctx.amount(earnings)}`);
  const { hash, amount, payout } = await withdrawEarningsAction(await ctx.client(), { providerId });
  ctx.out.say(`paid ${await ctx.amount(amount)} to ${payout}`);
  ctx.out.result({ action: "withdraw-earnings", providerId, amount: ctx.money(amount), payout, hash });
}

/** Names and metadata live only in events; a node that limits log queries still gets the rest of `show`. */
async function eventsOfProvider(conn: Connection, providerId: number) {
  const fromBlock = BigInt(conn.deployment.deployBlock ?? 0);
  const common = { address: conn.tollgate, abi: tollgateAbi, fromBlock, toBlock: "latest" } as const;
  try {
    const [listed, registered, updated, signers] = await Promise.all([
      conn.client.getContractEvents({ ...common, eventName: "ModelListed", args: { providerId } }),
      conn.client.getContractEvents({ ...common, eventName: "ProviderRegistered", args: { providerId } }),
      conn.client.getContractEvents({ ...common, eventName: "ProviderUpdated", args: { providerId } }),
      conn.client.getContractEvents({ ...common, eventName: "SignerAuthorizationChanged", args: { providerId } }),
    ]);
    const names = new Map<number, string>(listed.map((log) => [Number(log.args.modelId), log.args.name ?? ""]));
    const metadataURI = updated.at(-1)?.args.metadataURI ?? registered.at(-1)?.args.metadataURI;
    const signerAddresses = [...new Set(signers.map((log) => log.args.signer).filter((a): a is Address => a !== undefined))];
    return { names, metadataURI, signerAddresses };
  } catch {
    return undefined;
  }
}

async function show(ctx: CliContext, providerText: string): Promise<void> {
  const conn = await ctx.connect();
  const providerId = parseId(providerText, "provider id");
  const read = { address: conn.tollgate, abi: tollgateAbi } as const;
  const [provider, modelCount, planCount, earnings, block, events] = await Promise.all([
    conn.client.readContract({ ...read, functionName: "providerOf", args: [providerId] }),
    conn.client.readContract({ ...read, functionName: "modelCount" }),
    conn.client.readContract({ ...read, functionName: "creditPlanCount" }),
    conn.client.readContract({ ...read, functionName: "earningsOf", args: [providerId] }),
    conn.client.getBlock({ blockTag: "latest" }),
    eventsOfProvider(conn, providerId),
  ]);
  const now = block.timestamp;

  const models = [];
  // Model ids are global; the provider's are found by their providerId, stopping once all are found.
  for (let id = 1; id <= Number(modelCount) && models.length < Number(provider.modelCount); id++) {
    const model = await conn.client.readContract({ ...read, functionName: "modelOf", args: [id] });
    if (model.providerId !== providerId) continue;
    const epochs = await Promise.all(
      Array.from({ length: Number(model.epochCount) }, (_, index) =>
        conn.client.readContract({ ...read, functionName: "priceEpochOf", args: [id, BigInt(index)] }),
      ),
    );
    const current = epochs.filter((epoch) => BigInt(epoch.effectiveFrom) <= now).at(-1);
    const scheduled = epochs.filter((epoch) => BigInt(epoch.effectiveFrom) > now);
    models.push({ modelId: id, name: events?.names.get(id), localIndex: model.localIndex, paused: model.paused, current, scheduled });
  }

  const plans = [];
  for (let planId = 1n; planId <= planCount; planId++) {
    const plan = await conn.client.readContract({ ...read, functionName: "creditPlanOf", args: [planId] });
    if (plan.providerId !== providerId) continue;
    const covered = models.filter((model) => (plan.modelMask >> BigInt(model.localIndex)) & 1n).map((model) => model.modelId);
    plans.push({ planId, plan, covered });
  }

  const signers = await Promise.all(
    (events?.signerAddresses ?? []).map(async (signer) => ({ signer, view: await conn.client.readContract({ ...read, functionName: "signerOf", args: [signer] }) })),
  );

  const fmt = (value: bigint) => ctx.amount(value);
  ctx.out.say(`provider ${providerId} on chain ${conn.chain.id}`);
  ctx.out.say(`  owner     ${provider.owner}`);
  ctx.out.say(`  payout    ${provider.payout}`);
  if (events?.metadataURI) ctx.out.say(`  metadata  ${events.metadataURI}`);
  ctx.out.say(`  earnings  ${await fmt(earnings)} (withdraw with \`tollgate provider withdraw-earnings ${providerId}\`)`);
  ctx.out.say(`  models (prices per million tokens: input / cached input / output)`);
  if (models.length === 0) ctx.out.say("    none");
  for (const model of models) {
    const prices = model.current ? `${await fmt(model.current.input)} / ${await fmt(model.current.cachedInput)} / ${await fmt(model.current.output)}` : "no price in force";
    ctx.out.say(`    ${model.modelId} ${model.name ? `"${model.name}"` : "(name unknown)"}${model.paused ? " [paused]" : ""}: ${prices}`);
    for (const next of model.scheduled) {
      ctx.out.say(`      from ${formatTimestamp(next.effectiveFrom)}: ${await fmt(next.input)} / ${await fmt(next.cachedInput)} / ${await fmt(next.output)}`);
    }
  }
  ctx.out.say("  credit plans");
  if (plans.length === 0) ctx.out.say("    none");
  for (const { planId, plan, covered } of plans) {
    const expiry = plan.expiresAt === 0 ? "never expires" : `${BigInt(plan.expiresAt) <= now ? "expired" : "expires"} ${formatTimestamp(plan.expiresAt)}`;
    ctx.out.say(`    ${planId}: ${await fmt(plan.pricePerCredit)} per credit, worth ${await fmt(plan.valuePerCredit)}, models ${covered.join(", ")}, ${expiry}`);
  }
  ctx.out.say("  gateway signers");
  if (!events) ctx.out.say("    (the node refused the log query; check one with `tollgate operator status --signer <address>`)");
  else if (signers.length === 0) ctx.out.say("    none");
  for (const { signer, view } of signers) {
    ctx.out.say(`    ${signer} ${view.authorized ? "authorized" : "revoked"}, next sequence ${view.nextSequence}`);
  }

  const epochJson = (epoch: { effectiveFrom: number; input: bigint; cachedInput: bigint; output: bigint }) => ({
    effectiveFrom: epoch.effectiveFrom,
    ...priceJson(ctx, epoch),
  });
  ctx.out.result({
    providerId,
    owner: provider.owner,
    payout: provider.payout,
    metadataURI: events?.metadataURI ?? null,
    earnings: ctx.money(earnings),
    models: models.map((model) => ({
      modelId: model.modelId,
      name: model.name ?? null,
      localIndex: model.localIndex,
      paused: model.paused,
      prices: model.current ? epochJson(model.current) : null,
      scheduled: model.scheduled.map(epochJson),
    })),
    plans: plans.map(({ planId, plan, covered }) => ({
      planId,
      pricePerCredit: ctx.money(plan.pricePerCredit),
      valuePerCredit: ctx.money(plan.valuePerCredit),
      modelIds: covered,
      expiresAt: plan.expiresAt,
    })),
    signers: events ? signers.map(({ signer, view }) => ({ signer, authorized: view.authorized, nextSequence: view.nextSequence })) : null,
  });
}

const PRICE_FLAGS = (command: Command, required: boolean): Command =>
  command
    .option("--input <price>", `price per million input tokens, in token units (e.g. 0.15)${required ? " (required)" : ""}`)
    .option("--cached-input <price>", `price per million cached input tokens${required ? " (default: the input price)" : ""}`)
    .option("--output <price>", `price per million output tokens${required ? " (required)" : ""}`);

export function registerProvider(program: Command, context: ContextFactory): void {
  const provider = program
    .command("provider")
    .description("register, list models and prices, sell credit plans, authorize gateway keys, withdraw earnings");

  provider
    .command("register")
    .description("register yourself (the signing key) as the owner of a new provider")
    .argument("<payoutAddress>", "where earnings are paid")
    .argument("<metadataUri>", "where buyers find who you are (https:// or ipfs://), kept in the event log")
    .addHelpText("after", examples("tollgate provider register 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 https://provider.example/metadata.json"))
    .action((payout: string, uri: string, _options: unknown, cmd: Command) => register(context(cmd), payout, uri));

  provider
    .command("update")
    .description("change a provider's payout address and metadata")
    .argument("<providerId>", "the provider")
    .argument("<payoutAddress>", "where earnings are paid")
    .argument("<metadataUri>", "metadata URI")
    .addHelpText("after", examples("tollgate provider update 1 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 ipfs://bafy…"))
    .action((id: string, payout: string, uri: string, _options: unknown, cmd: Command) => update(context(cmd), id, payout, uri));

  PRICE_FLAGS(
    provider
      .command("list-model")
      .description("list a model at prices per million tokens, in force at once")
      .argument("<providerId>", "the provider")
      .argument("<name>", "the model's public name, as gateways serve it"),
    true,
  )
    .addHelpText("after", examples("tollgate provider list-model 1 small-model --input 0.15 --cached-input 0.075 --output 0.6"))
    .action((id: string, name: string, options: PriceOptions, cmd: Command) => listModel(context(cmd), id, name, options));

  PRICE_FLAGS(
    provider
      .command("set-price")
      .description("schedule new prices for a model; they apply after the deployment's price notice period (prices left out keep their latest value)")
      .argument("<modelId>", "the model"),
    false,
  )
    .addHelpText("after", examples("tollgate provider set-price 1 --output 0.5", "tollgate provider set-price 2 --input 2 --cached-input 1 --output 8"))
    .action((id: string, options: PriceOptions, cmd: Command) => setPrice(context(cmd), id, options));

  provider
    .command("pause-model")
    .description("stop gateways serving a model (usage already served still settles)")
    .argument("<modelId>", "the model")
    .action((id: string, _options: unknown, cmd: Command) => setModelPaused(context(cmd), id, true));

  provider
    .command("resume-model")
    .description("serve a paused model again")
    .argument("<modelId>", "the model")
    .action((id: string, _options: unknown, cmd: Command) => setModelPaused(context(cmd), id, false));

  provider
    .command("define-plan")
    .description("define a credit plan: buyers pay --price per credit, each credit pays --value of usage on --models")
    .argument("<providerId>", "the provider")
    .requiredOption("--price <amount>", "what a buyer pays per credit, in token units")
    .requiredOption("--value <amount>", "usage one credit pays for, in token units")
    .requiredOption("--models <ids>", "comma-separated ids of the provider's models the credits cover, e.g. 1,2")
    .option("--expires-at <time>", 'unix seconds or ISO date after which usage is not covered (default: never)')
    .addHelpText("after", examples("tollgate provider define-plan 1 --price 0.009 --value 0.01 --models 1,2", "tollgate provider define-plan 1 --price 9 --value 10 --models 1 --expires-at 2027-01-01"))
    .action((id: string, options: PlanOptions, cmd: Command) => definePlan(context(cmd), id, options));

  provider
    .command("authorize-signer")
    .description("allow a gateway key to sign usage batches for the provider")
    .argument("<providerId>", "the provider")
    .argument("<address>", "the gateway key's address")
    .addHelpText("after", examples("tollgate provider authorize-signer 1 0x90F79bf6EB2c4f870365E785982E1f101E93b906"))
    .action((id: string, signer: string, _options: unknown, cmd: Command) => setSigner(context(cmd), id, signer, true));

  provider
    .command("revoke-signer")
    .description("stop a gateway key; its unsettled batches no longer settle (revoke a stolen key at once)")
    .argument("<providerId>", "the provider")
    .argument("<address>", "the gateway key's address")
    .addHelpText("after", examples("tollgate provider revoke-signer 1 0x90F79bf6EB2c4f870365E785982E1f101E93b906"))
    .action((id: string, signer: string, _options: unknown, cmd: Command) => setSigner(context(cmd), id, signer, false));

  provider
    .command("withdraw-earnings")
    .description("send the provider's earnings to its payout address")
    .argument("<providerId>", "the provider")
    .addHelpText("after", examples("tollgate provider withdraw-earnings 1"))
    .action((id: string, _options: unknown, cmd: Command) => withdrawEarnings(context(cmd), id));

  provider
    .command("show")
    .description("a provider's owner, payout, models and prices (current and scheduled), credit plans, signers and earnings (needs no key)")
    .argument("<providerId>", "the provider")
    .addHelpText("after", examples("tollgate provider show 1", "tollgate provider show 1 --json"))
    .action((id: string, _options: unknown, cmd: Command) => show(context(cmd), id));

  registerProviderBond(provider, context);
  registerProviderSubscriptionPlans(provider, context);
}
