/**
 * Key management, authorized by the buyer's wallet: each request carries an EIP-712 message and its
 * signature (see `api-keys/wallet-messages.ts`). `POST /v1/keys` creates a key and shows it once;
 * `POST /v1/keys/list` lists them (never the key itself); `POST /v1/keys/revoke` revokes one. `GET /v1/keys`
 * lists them for a read session (see `routes/sessions.ts`).
 */
import type { Request, Response } from "express";
import type { Address, Hex } from "viem";
import type { z } from "zod";
import type { ApiKeyRecord } from "../../store/usage-store";
import { generateApiKey } from "../api-keys/key-material";
import {
  createApiKeyMessage,
  gatewayDomain,
  listApiKeysMessage,
  revokeApiKeyMessage,
  signedRequest,
  verifyBuyerSignature,
  type ApiKeyMessageType,
} from "../api-keys/wallet-messages";
import type { GatewayContext } from "../context";
import { GatewayError, invalidRequest } from "../errors";
import { parseBody } from "../http/parse-body";
import { readerOf } from "../middleware/authenticate";

const MAX_UINT64 = 2n ** 64n - 1n;

/** `spentElsewhere`: fleet mode, what the provider's other instances served with the key (its `spent` is fleet-wide). */
export function describeKey(ctx: GatewayContext, key: ApiKeyRecord, spentElsewhere = 0n) {
  const spent = key.spent + spentElsewhere;
  return {
    id: key.id,
    object: "api_key",
    buyer: key.buyer,
    label: key.label,
    spend_cap: key.spendCap?.toString() ?? null,
    spent: spent.toString(),
    spent_formatted: ctx.state.formatAmount(spent),
    models: key.models,
    tags: key.tags,
    expires_at: key.expiresAt,
    created_at: key.createdAt,
    revoked_at: key.revokedAt,
  };
}

/** Checks freshness, the signature and the nonce, in that order; consumes the nonce only if all pass. */
export async function authorize<M extends { buyer: Address; issuedAt: bigint; nonce: Hex }>(
  ctx: GatewayContext,
  primaryType: ApiKeyMessageType,
  signed: { message: M; signature: Hex },
  rawMessage: Record<string, unknown>,
): Promise<void> {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const { issuedAt } = signed.message;
  const maxAge = BigInt(ctx.signatureMaxAgeSeconds);
  if (issuedAt > now + 60n || issuedAt + maxAge < now) {
    throw new GatewayError(401, "authentication_error", `The signed message's issuedAt (${issuedAt}) is not within ${maxAge}s of the gateway's clock (${now}). Sign a fresh message.`, "signature_expired", "message.issuedAt");
  }
  const message = { ...rawMessage, ...signed.message };
  const valid = await verifyBuyerSignature(ctx.client, gatewayDomain(ctx.chainId, ctx.tollgate), primaryType, message, signed.signature);
  if (!valid) {
    throw new GatewayError(401, "authentication_error", `The signature is not ${signed.message.buyer}'s signature of this ${primaryType} message for this gateway (domain "Tollgate Gateway", chain ${ctx.chainId}, contract ${ctx.tollgate}).`, "invalid_signature", "signature");
  }
  const nonceExpiresAt = Number(issuedAt + maxAge + 60n);
  const fresh =
    ctx.store.consumeNonce(signed.message.buyer, signed.message.nonce, nonceExpiresAt) &&
    // Fleet mode: used on another instance counts as used (a replayed CreateApiKey would hand the replayer a key).
    (!ctx.fleetSessions || (await ctx.fleetSessions.consumeNonce(signed.message.buyer, signed.message.nonce, nonceExpiresAt)));
  if (!fresh) {
    throw new GatewayError(401, "authentication_error", "This signed message was already used. Sign a new one with a fresh nonce.", "nonce_reused", "message.nonce");
  }
}

export function rawMessageOf(body: unknown): Record<string, unknown> {
  return ((body as { message?: Record<string, unknown> })?.message ?? {}) as Record<string, unknown>;
}

export function createKey(ctx: GatewayContext) {
  const schema = signedRequest(createApiKeyMessage);
  return async (req: Request, res: Response): Promise<void> => {
    const signed = parseBody(schema, req.body) as { message: z.infer<typeof createApiKeyMessage>; signature: Hex };
    const { message } = signed;
    if (message.expiresAt > MAX_UINT64) throw invalidRequest("expiresAt must fit in a uint64", "message.expiresAt");
    const now = Math.floor(Date.now() / 1000);
    if (message.expiresAt !== 0n && message.expiresAt <= BigInt(now)) throw invalidRequest("expiresAt is in the past", "message.expiresAt", "invalid_value");
    const unknown = message.models.filter((name) => !ctx.state.model(name));
    if (unknown.length > 0) throw invalidRequest(`Unknown models: ${unknown.join(", ")}. GET /v1/models lists the models on sale.`, "message.models", "model_not_found");
    await authorize(ctx, "CreateApiKey", signed, { ...rawMessageOf(req.body), spendCap: message.spendCap, expiresAt: message.expiresAt, issuedAt: message.issuedAt });

    const { key, id, keyHash } = generateApiKey();
    const record = {
      id,
      buyer: message.buyer,
      keyHash,
      label: message.label,
      spendCap: message.spendCap === 0n ? null : message.spendCap,
      models: message.models.length === 0 ? null : message.models,
      tags: message.tags,
      expiresAt: message.expiresAt === 0n ? null : Number(message.expiresAt),
      createdAt: now,
    };
    // Fleet mode: shared first, so a key the fleet did not take exists nowhere (the buyer gets a 503 and retries).
    await ctx.fleetDefinitions?.putKey({ ...record, revokedAt: null });
    ctx.store.insertApiKey(record);
    ctx.logger.info({ requestId: req.id, buyer: message.buyer, keyId: id }, "api key created");
    res.status(201).json({ ...describeKey(ctx, { ...record, revokedAt: null, spent: 0n }), key, note: "This is the only time the key is shown. Store it now." });
  };
}

export function listKeys(ctx: GatewayContext) {
  const schema = signedRequest(listApiKeysMessage);
  return async (req: Request, res: Response): Promise<void> => {
    const signed = parseBody(schema, req.body) as { message: z.infer<typeof listApiKeysMessage>; signature: Hex };
    await authorize(ctx, "ListApiKeys", signed, { ...rawMessageOf(req.body), issuedAt: signed.message.issuedAt });
    res.json(await keysOf(ctx, signed.message.buyer));
  };
}

/** The buyer's keys; in fleet mode every instance's (adopted first), with what each spent on all of them. */
async function keysOf(ctx: GatewayContext, buyer: Address) {
  // Redis down: this instance's keys, with its own spend (a listing is no reason to fail).
  const elsewhere = await ctx.fleetDefinitions?.syncBuyer(buyer).catch(() => undefined);
  return { object: "list", data: ctx.store.listApiKeys(buyer).map((key) => describeKey(ctx, key, elsewhere?.get(key.id))) };
}

/** `GET /v1/keys` with a read session (or an API key): the same answer as `POST /v1/keys/list`, no signature. */
export function listKeysOfReader(ctx: GatewayContext) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await keysOf(ctx, readerOf(req)));
  };
}

export function revokeKey(ctx: GatewayContext) {
  const schema = signedRequest(revokeApiKeyMessage);
  return async (req: Request, res: Response): Promise<void> => {
    const signed = parseBody(schema, req.body) as { message: z.infer<typeof revokeApiKeyMessage>; signature: Hex };
    await authorize(ctx, "RevokeApiKey", signed, { ...rawMessageOf(req.body), issuedAt: signed.message.issuedAt });
    const { buyer, keyId } = signed.message;
    const at = Math.floor(Date.now() / 1000);
    // Fleet mode: a key made on another instance is adopted first, and the revocation is shared before it is local.
    await ctx.fleetDefinitions?.syncBuyer(buyer);
    const key = ctx.store.listApiKeys(buyer).find((candidate) => candidate.id === keyId && candidate.revokedAt === null);
    if (key) await ctx.fleetDefinitions?.putKey({ ...key, revokedAt: at });
    if (!key || !ctx.store.revokeApiKey(buyer, keyId, at)) {
      throw new GatewayError(404, "not_found_error", `${buyer} has no active API key ${keyId}.`, "key_not_found", "message.keyId");
    }
    ctx.keys.revoked(keyId, at);
    ctx.logger.info({ requestId: req.id, buyer, keyId }, "api key revoked");
    res.json({ id: keyId, object: "api_key", revoked: true });
  };
}
