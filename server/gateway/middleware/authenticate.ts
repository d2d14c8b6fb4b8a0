/**
 * `Authorization: Bearer <key>` → the buyer's API key record (or, on the read routes, its read session). A malformed, unknown, revoked or expired
 * key all get the same 401 after the same work. Keys are cached in memory by hash; the cache is the
 * store's rows, so a revocation through this gateway takes effect at once.
 */
import type { RequestHandler } from "express";
import type { Hex } from "viem";
import type { ApiKeyRecord, ReadSession, UsageStore } from "../../store/usage-store";
import { hashApiKey, keyHashesEqual, looksLikeApiKey, looksLikeSessionToken } from "../api-keys/key-material";
import { GatewayError, invalidApiKey } from "../errors";

declare module "express-serve-static-core" {
  interface Request {
    apiKey?: ApiKeyRecord;
    /** Set instead of `apiKey` on the read routes when the bearer is a wallet-signed read session. */
    readSession?: ReadSession;
  }
}

/** The buyer whose data a read route serves: the API key's or the read session's. */
export function readerOf(req: { apiKey?: ApiKeyRecord; readSession?: ReadSession }): ApiKeyRecord["buyer"] {
  const buyer = req.apiKey?.buyer ?? req.readSession?.buyer;
  if (buyer === undefined) throw new Error("a read route ran without authenticateReader before it");
  return buyer;
}

function bearerOf(header: string | undefined): string {
  // The auth scheme is case-insensitive (RFC 9110); the key itself is not.
  const match = /^bearer +(\S+)\s*$/i.exec(header ?? "");
  return match ? match[1] : "";
}

/**
 * A read session can never pay for a call: only an API key carries a spend cap, models and tags. Said
 * plainly, since a web app user holding a session is the one most likely to paste it into a client.
 */
export const sessionNotApiKey = () =>
  new GatewayError(
    401,
    "authentication_error",
    "This is a read session token: it reads usage, balance and keys, but model calls need an API key. Create one with your wallet (POST /v1/keys) and send it as `Authorization: Bearer <key>`.",
    "session_not_api_key",
  );

export class ApiKeyCache {
  private readonly byHash = new Map<Hex, ApiKeyRecord>();

  constructor(private readonly store: UsageStore) {}

  find(keyHash: Hex): ApiKeyRecord | undefined {
    let key = this.byHash.get(keyHash);
    if (!key) {
      key = this.store.findApiKeyByHash(keyHash);
      if (key) this.byHash.set(keyHash, key);
    }
    return key;
  }

  revoked(id: string): void {
    for (const [hash, key] of this.byHash) if (key.id === id) this.byHash.delete(hash);
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * The live API key an `Authorization` header presents, or the `GatewayError` (401) to answer with: the one check
 * behind `authenticate` and the data plane's.
 */
export function apiKeyOf(keys: ApiKeyCache, authorization: string | undefined, now: () => number = nowSeconds): ApiKeyRecord | GatewayError {
  const presented = bearerOf(authorization);
  if (looksLikeSessionToken(presented)) return sessionNotApiKey();
  // Hash even a malformed key, so every failure costs the same.
  const presentedHash = hashApiKey(presented);
  const key = looksLikeApiKey(presented) ? keys.find(presentedHash) : undefined;
  const valid =
    keyHashesEqual(presentedHash, key?.keyHash) &&
    key !== undefined &&
    key.revokedAt === null &&
    (key.expiresAt === null || key.expiresAt > now());
  return valid ? key : invalidApiKey();
}

export function authenticate(keys: ApiKeyCache, now: () => number = nowSeconds): RequestHandler {
  return (req, _res, next) => {
    const key = apiKeyOf(keys, req.headers.authorization, now);
    if (key instanceof GatewayError) return next(key);
    req.apiKey = key;
    next();
  };
}

/**
 * For the read routes (usage, balance, key list): an API key as above, or a live read session
 * (`tgs_…`, opened with `POST /v1/sessions`). An unknown, ended or expired session gets the same 401 as a
 * bad key.
 */
export function authenticateReader(keys: ApiKeyCache, store: UsageStore, now: () => number = () => Math.floor(Date.now() / 1000)): RequestHandler {
  const byKey = authenticate(keys, now);
  return (req, res, next) => {
    const presented = bearerOf(req.headers.authorization);
    if (!looksLikeSessionToken(presented)) return byKey(req, res, next);
    const presentedHash = hashApiKey(presented);
    const session = store.findReadSession(presentedHash, now());
    if (!keyHashesEqual(presentedHash, session?.tokenHash) || session === undefined) return next(invalidApiKey());
    req.readSession = session;
    next();
  };
}

/** Only a read session: for ending it (`DELETE /v1/sessions/current`). */
export function authenticateSession(store: UsageStore, now: () => number = () => Math.floor(Date.now() / 1000)): RequestHandler {
  return (req, _res, next) => {
    const presented = bearerOf(req.headers.authorization);
    const presentedHash = hashApiKey(presented);
    const session = looksLikeSessionToken(presented) ? store.findReadSession(presentedHash, now()) : undefined;
    if (!keyHashesEqual(presentedHash, session?.tokenHash) || session === undefined) return next(invalidApiKey());
    req.readSession = session;
    next();
  };
}
