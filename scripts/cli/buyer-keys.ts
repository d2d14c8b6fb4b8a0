/**
 * `tollgate buyer keys …`: gateway API keys, authorized by the buyer's wallet: the client's createApiKey,
 * listApiKeys and revokeApiKey sign an EIP-712 message with the key from the environment and POST it to
 * the gateway. Also the gateway's `/v1/balance` view for `buyer balance`.
 */
import type { Command } from "commander";
import { createApiKey, getGatewayBalance, GatewayRequestError, listApiKeys, revokeApiKey, type GatewayApiKey, type GatewayBalance } from "../../client";
import { formatAmount } from "./amounts";
import { formatTimestamp, MAX_UINT64, parseList, parseTimestamp } from "./arguments";
import { examples, type CliContext, type ContextFactory } from "./context";
import { CliError, gatewayHint } from "./errors";

/** Formats base units when the chain can be reached; the key commands otherwise need only the gateway. */
async function amountFormatter(ctx: CliContext): Promise<(units: string) => string> {
  try {
    const { token } = await ctx.connect();
    return (units) => formatAmount(BigInt(units), token);
  } catch {
    return (units) => `${units} base units`;
  }
}

function describeKeyLines(key: GatewayApiKey, amount: (units: string) => string): string[] {
  const status = key.revoked_at !== null ? `revoked ${formatTimestamp(key.revoked_at)}` : key.expires_at !== null && key.expires_at * 1000 <= Date.now() ? "expired" : "active";
  return [
    `${key.id}  ${status}${key.label ? `  "${key.label}"` : ""}`,
    `    spend cap ${key.spend_cap === null ? "none" : amount(key.spend_cap)}, spent ${key.spent_formatted ?? amount(key.spent)}`,
    `    models ${key.models === null ? "all" : key.models.join(", ")}; tags ${key.tags.length === 0 ? "none" : key.tags.join(", ")}`,
    `    created ${formatTimestamp(key.created_at)}; expires ${key.expires_at === null ? "never" : formatTimestamp(key.expires_at)}`,
  ];
}

interface CreateOptions {
  label?: string;
  spendCap?: string;
  models?: string;
  tags?: string;
  expiresAt?: string;
}

async function createKey(ctx: CliContext, options: CreateOptions): Promise<void> {
  await ctx.signer();
  const spendCap = options.spendCap === undefined ? 0n : await ctx.parseAmount(options.spendCap, { what: "--spend-cap" });
  const expiresAt = options.expiresAt === undefined ? 0n : parseTimestamp(options.expiresAt, "--expires-at", MAX_UINT64);
  if (expiresAt !== 0n && expiresAt <= BigInt(Math.floor(Date.now() / 1000))) {
    throw new CliError(`--expires-at ${formatTimestamp(expiresAt)} is in the past`, "give a future time, or leave it out for a key that never expires");
  }
  const key = await createApiKey(await ctx.gatewayClient(), {
    label: options.label,
    spendCap,
    models: parseList(options.models ?? ""),
    tags: parseList(options.tags ?? ""),
    expiresAt,
  });
  const amount = key.spend_cap !== null ? await amountFormatter(ctx) : (units: string) => units;
  ctx.out.say(`created API key ${key.id} for ${key.buyer} at ${ctx.options.gateway}`);
  for (const line of describeKeyLines(key, amount).slice(1)) ctx.out.say(line);
  ctx.out.say("");
  ctx.out.say(`  ${key.key}`);
  ctx.out.say("");
  ctx.out.say("This is the only time the key is shown: store it now (e.g. as TOLLGATE_API_KEY or OPENAI_API_KEY).");
  ctx.out.result({ action: "keys-create", ...key });
}

async function listKeys(ctx: CliContext): Promise<void> {
  const data = await listApiKeys(await ctx.gatewayClient());
  const account = await ctx.signer();
  const amount = data.some((key) => key.spend_cap !== null) ? await amountFormatter(ctx) : (units: string) => units;
  ctx.out.say(data.length === 0 ? `${account.address} has no API keys at ${ctx.options.gateway}` : `API keys of ${account.address} at ${ctx.options.gateway}:`);
  for (const key of data) for (const line of describeKeyLines(key, amount)) ctx.out.say(line);
  ctx.out.result({ buyer: account.address, keys: data });
}

async function revokeKey(ctx: CliContext, keyId: string): Promise<void> {
  const result = await revokeApiKey(await ctx.gatewayClient(), { keyId });
  ctx.out.say(`revoked API key ${result.id}; the gateway refuses it from now on`);
  ctx.out.result({ action: "keys-revoke", id: result.id, revoked: result.revoked });
}

/**
 * The gateway's view of what the key's buyer can spend. A gateway that is down or refuses the key is a
 * note, not a failure: the on-chain part of `buyer balance` stands on its own.
 */
export async function gatewayBalance(ctx: CliContext, apiKey: string): Promise<{ view?: GatewayBalance; problem?: string }> {
  try {
    return { view: await getGatewayBalance((await ctx.connect()).tollgateClient, { apiKey }) };
  } catch (error) {
    if (!(error instanceof GatewayRequestError)) throw error;
    const hint = gatewayHint(error);
    ctx.out.warn(`note: no gateway view: ${error.message}${hint ? ` (${hint})` : ""}`);
    return { problem: error.message };
  }
}

export function registerKeyCommands(buyer: Command, context: ContextFactory): void {
  const keys = buyer
    .command("keys")
    .description("API keys for the gateway, authorized by your wallet's signature (uses --gateway)");

  keys
    .command("create")
    .description("create an API key; it is printed once and never again")
    .option("--label <text>", "a name for the key")
    .option("--spend-cap <amount>", "most the key may spend in total, in token units (default: no cap)")
    .option("--models <names>", "comma-separated model names the key may use (default: all)")
    .option("--tags <tags>", 'comma-separated tags copied onto every usage record, e.g. "team:search,env:prod"')
    .option("--expires-at <time>", 'unix seconds or an ISO date, e.g. "2026-12-31" (default: never)')
    .addHelpText(
      "after",
      examples(
        'tollgate buyer keys create --label "search backend" --spend-cap 25 --models small-model --tags team:search',
        "tollgate buyer keys create --expires-at 2026-12-31T00:00:00Z --json",
      ),
    )
    .action((options: CreateOptions, cmd: Command) => createKey(context(cmd), options));

  keys
    .command("list")
    .description("list your API keys (never the keys themselves): limits, spend, status")
    .addHelpText("after", examples("tollgate buyer keys list"))
    .action((_options: unknown, cmd: Command) => listKeys(context(cmd)));

  keys
    .command("revoke")
    .description("revoke an API key at once")
    .argument("<id>", 'the key id from `keys list` ("key_…")')
    .addHelpText("after", examples("tollgate buyer keys revoke key_AbCdEf123456"))
    .action((id: string, _options: unknown, cmd: Command) => revokeKey(context(cmd), id));
}
