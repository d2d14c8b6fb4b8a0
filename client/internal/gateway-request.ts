/**
 * One request to the gateway. OpenAI-format errors become a `GatewayRequestError` carrying the HTTP status,
 * the gateway's error code and a hint of what to do; an unreachable gateway is one too (no status).
 */
import { GatewayRequestError } from "../errors";
import type { TollgateGatewayClient } from "../tollgate-client";

/** What to do about the gateway's error codes (server/gateway/errors.ts and its routes). */
export const GATEWAY_HINTS: Record<string, string> = {
  signature_expired: "the gateway's clock and this machine's differ by more than it allows; sync the system clock and try again",
  invalid_signature: "the signature binds the chain id and Tollgate address; check it is the deployment the gateway serves",
  nonce_reused: "try again; each request signs with a fresh nonce",
  model_not_found: "GET <gateway>/v1/models lists the models on sale; name them as the gateway does",
  key_not_found: "list your keys to see which exist and which are revoked",
  invalid_api_key: "the API key (or read session) is not live at this gateway; create a key, or open a new session",
  session_not_api_key: "a read session only reads; model calls need an API key (createApiKey)",
  invalid_value: "fix the value named above and try again",
  trace_not_found: "an outcome belongs to a run: send x-tollgate-trace-id with the run's calls (with this buyer's key), then record it",
  outcome_exists: "a run has one outcome per type; record a different type, or leave this one as it is",
  unknown_parameter: "remove or correct the parameter named above",
  budget_exists: "a budget on that tag or trace and period is live; delete it first to set a new limit",
  budget_not_found: "list your budgets to see which are live",
  budget_exceeded: "the budget refuses calls until its period resets; raise it (delete and create a larger one) or lower max_tokens",
};

export interface GatewayRequest {
  method: "GET" | "POST" | "DELETE";
  body?: unknown;
  /** Sent as `Authorization: Bearer`: an API key (`tg_…`) or a read session token (`tgs_…`). */
  apiKey?: string;
  /** The raw text instead of parsed JSON (CSV exports). */
  text?: boolean;
}

/** JSON has no bigints, and uint256 does not fit a double: integers travel as decimal strings. */
export function toWireJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v));
}

export function gatewayOf(client: TollgateGatewayClient, action: string): { url: string; timeoutMs: number } {
  if (!client.gateway) throw new GatewayRequestError(`${action} talks to the gateway, but the Tollgate client has no gateway URL`, { hint: "create the client with gateway: { url }" });
  return { url: client.gateway.url.replace(/\/+$/, ""), timeoutMs: client.gateway.timeoutMs ?? 20_000 };
}

export async function gatewayRequest<T>(client: TollgateGatewayClient, path: string, init: GatewayRequest): Promise<T> {
  const gateway = gatewayOf(client, path);
  const headers: Record<string, string> = { accept: init.text ? "text/csv, application/json" : "application/json" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.apiKey) headers.authorization = `Bearer ${init.apiKey}`;
  let response: Response;
  try {
    response = await fetch(`${gateway.url}${path}`, {
      method: init.method,
      headers,
      body: init.body === undefined ? undefined : toWireJson(init.body),
      signal: AbortSignal.timeout(gateway.timeoutMs),
    });
  } catch (cause) {
    throw new GatewayRequestError(`cannot reach the gateway at ${gateway.url}`, { hint: `is the gateway running at ${gateway.url}?`, cause });
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
      { hint: code ? GATEWAY_HINTS[code] : undefined, status: response.status, code },
    );
  }
  if (init.text) return text as T;
  if (body === undefined) throw new GatewayRequestError(`the gateway at ${gateway.url} answered ${path} with something other than JSON`, { hint: "is this a Tollgate gateway?" });
  return body as T;
}

/** What a read action (usage, balance, keys) authenticates with: an API key, or a wallet-signed read session. */
export type ReadCredential = { apiKey: string; session?: undefined } | { session: string; apiKey?: undefined };

export function bearerOf(credential: { apiKey?: string; session?: string }, action: string): string {
  const bearer = credential.apiKey ?? credential.session;
  if (!bearer) throw new GatewayRequestError(`${action} needs an API key or a read session`, { hint: "pass { apiKey } or { session } (openSession opens one with the wallet)" });
  return bearer;
}
