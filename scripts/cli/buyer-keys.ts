/**
 * `tollgate buyer keys …`: gateway API keys, authorized by the buyer's wallet. Each request is an EIP-712
 * message (types in server/gateway/api-keys/wallet-messages.ts) signed by the key from the environment and
 * POSTed to the gateway, which checks the signature, its freshness and its one-time nonce. Also the
 * gateway's `/v1/balance` view for `buyer balance`.
 */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import type { Hex } from "viem";
import { apiKeyMessageTypes, gatewayDomain, type ApiKeyMessageType } from "../../server/gateway/api-keys/wallet-messages";
import { formatAmount } from "./amounts";
import { formatTimestamp, MAX_UINT64, parseList, parseTimestamp } from "./arguments";
import { ENV, examples, type CliContext, type ContextFactory } from "./context";
import { CliError, GatewayRequestError } from "./errors";

/** What the gateway answers for one key (`describeKey` in server/gateway/routes/api-keys.ts). */
interface GatewayKey {
  id: string;
  buyer: string;
  label: string;
  spend_cap: string | null;
  spent: string;
  spent_formatted?: string;
  models: string[] | null;
  tags: string[];
  expires_at: number | null;
  created_at: number;
  revoked_at: number | null;
  key?: string;
}

/** The gateway's `GET /v1/balance` answer, as far as the CLI shows it. */
export interface GatewayBalanceView {
  buyer?: string;
  unsettled_usage?: string;
  open_reservations?: string;
  spendable_by_model?: { model: string; spendable: string }[];
  key?: { id: string; spend_cap: string | null; spent: string };
}

/** What to do about the gateway's error codes (server/gateway/routes/api-keys.ts and errors.ts). */
const GATEWAY_HINTS: Record<string, string> = {
  signature_expired: "the gateway's clock and this machine's differ by more than it allows; sync the system clock and run the command again",
  invalid_signature:
    "the signature binds the chain id and Tollgate address of --deployment; check it is the deployment the gateway serves",
  nonce_reused: "run the command again; each run signs with a fresh nonce",
  model_not_found: "`curl <gateway>/v1/models` lists the models on sale; name them as the gateway does",
  key_not_found: "`tollgate buyer keys list` shows your keys and which are revoked",
  invalid_api_key: `${ENV.apiKey} is not a live key of this gateway; create one with \`tollgate buyer keys create\``,
  invalid_value: "fix the value named above and run the command again",
};

function gatewayUrl(ctx: CliContext, path: string): string {
  return `${ctx.options.gateway.replace(/\/+$/, "")}${path}`;
}

/** One request to the gateway; OpenAI-format errors become a message with the gateway's code and a hint. */
async function callGateway<T>(ctx: CliContext, path: string, init: { method: "GET" | "POST"; body?: unknown; apiKey?: string }): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.apiKey) headers.authorization = `Bearer ${init.apiKey}`;
  let response: Response;
  try {
    response = await fetch(gatewayUrl(ctx, path), {
      method: init.method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(20_000),
    });
  } catch {
    throw new GatewayRequestError(
      `cannot reach the gateway at ${ctx.options.gateway}`,
      `is the gateway running at ${ctx.options.gateway}? Start it with \`tollgate operator start-gateway\`, or point --gateway / ${ENV.gateway} at yours`,
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = (body as { error?: { message?: string; code?: string | null } } | undefined)?.error;
    const code = error?.code ?? undefined;
    throw new GatewayRequestError(
      `the gateway refused (HTTP ${response.status}${code ? `, ${code}` : ""}): ${error?.message ?? (text.slice(0, 200) || response.statusText)}`,
      code ? GATEWAY_HINTS[code] : undefined,
      response.status,
      code,
    );
  }
  if (body === undefined) throw new GatewayRequestError(`the gateway at ${ctx.options.gateway} answered ${path} with something other than JSON`, "is --gateway a Tollgate gateway?");
  return body as T;
}

/** Signs `message` as the buyer's wallet and sends it with the signature to the gateway. */
async function signedCall<T>(ctx: CliContext, path: string, primaryType: ApiKeyMessageType, fields: Record<string, unknown>): Promise<T> {
  const account = await ctx.signer();
  const deployment = ctx.readDeployment();
  const message = {
    buyer: account.address,
    ...fields,
    // The gateway compares issuedAt with its own wall clock, so this is the local clock, not chain time.
    issuedAt: BigInt(Math.floor(Date.now() / 1000)),
    nonce: `0x${randomBytes(32).toString("hex")}` as Hex,
  };
  const signature = await account.signTypedData({
    domain: gatewayDomain(deployment.chainId, deployment.tollgate),
    types: apiKeyMessageTypes,
    primaryType,
    message,
  } as Parameters<typeof account.signTypedData>[0]);
  // Integers travel as decimal strings: JSON has no bigints and uint256 does not fit a double.
  const wire = Object.fromEntries(Object.entries(message).map(([name, value]) => [name, typeof value === "bigint" ? value.toString() : value]));
  return callGateway<T>(ctx, path, { method: "POST", body: { message: wire, signature } });
}

/** Formats base units when the chain can be reached; the key commands otherwise need only the gateway. */
async function amountFormatter(ctx: CliContext): Promise<(units: string) => string> {
  try {
    const { token } = await ctx.connect();
    return (units) => formatAmount(BigInt(units), token);
  } catch {
    return (units) => `${units} base units`;
  }
}

function describeKeyLines(key: GatewayKey, amount: (units: string) => string): string[] {
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
  const key = await signedCall<GatewayKey>(ctx, "/v1/keys", "CreateApiKey", {
    label: options.label ?? "",
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
  const { data } = await signedCall<{ data: GatewayKey[] }>(ctx, "/v1/keys/list", "ListApiKeys", {});
  const account = await ctx.signer();
  const amount = data.some((key) => key.spend_cap !== null) ? await amountFormatter(ctx) : (units: string) => units;
  ctx.out.say(data.length === 0 ? `${account.address} has no API keys at ${ctx.options.gateway}` : `API keys of ${account.address} at ${ctx.options.gateway}:`);
  for (const key of data) for (const line of describeKeyLines(key, amount)) ctx.out.say(line);
  ctx.out.result({ buyer: account.address, keys: data });
}

async function revokeKey(ctx: CliContext, keyId: string): Promise<void> {
  const result = await signedCall<{ id: string; revoked: boolean }>(ctx, "/v1/keys/revoke", "RevokeApiKey", { keyId });
  ctx.out.say(`revoked API key ${result.id}; the gateway refuses it from now on`);
  ctx.out.result({ action: "keys-revoke", id: result.id, revoked: result.revoked });
}

/**
 * The gateway's view of what the key's buyer can spend. A gateway that is down or refuses the key is a
 * note, not a failure: the on-chain part of `buyer balance` stands on its own.
 */
export async function gatewayBalance(ctx: CliContext, apiKey: string): Promise<{ view?: GatewayBalanceView; problem?: string }> {
  try {
    return { view: await callGateway<GatewayBalanceView>(ctx, "/v1/balance", { method: "GET", apiKey }) };
  } catch (error) {
    if (!(error instanceof GatewayRequestError)) throw error;
    ctx.out.warn(`note: no gateway view: ${error.message}${error.hint ? ` (${error.hint})` : ""}`);
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
