/**
 * `Authorization: Bearer <key>` → the buyer's API key record (or, on the read routes, its read session). A malformed, unknown, revoked or expired
 * key all get the same 401 after the same work. Keys are cached in memory by hash; the cache is the
 * store's rows, so a revocation through this gateway takes effect at once. In fleet mode a key this instance does
 * not hold is looked up in the fleet's store (`ApiKeyCache.adopt`), and sessions are the fleet's (fleet/fleet-sessions.ts).
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

/** Fleet mode: where a read session is looked up (fleet/fleet-sessions.ts). */
export interface SessionLookup {
  find(tokenHash: Hex, now: number): Promise<ReadSession | undefined>;
}

export class ApiKeyCache {
  private readonly byHash = new Map<Hex, ApiKeyRecord>();
  /** Fleet mode: a key made on another instance, adopted into this store (fleet/fleet-definitions.ts). */
  adopt?: (keyHash: Hex) => Promise<ApiKeyRecord | undefined>;

  constructor(private readonly store: UsageStore) {}

  find(keyHash: Hex): ApiKeyRecord | undefined {
    let key = this.byHash.get(keyHash);
    if (!key) {
      key = this.store.findApiKeyByHash(keyHash);
      if (key) this.byHash.set(keyHash, key);
    }
    return key;
  }

  /** `at`: when; a call already holding the cached record sees it revoked too (the fleet's check refuses it). */
  revoked(id: string, at?: number): void {
    for (const [hash, key] of this.byHash) {
      if (key.id !== id) continue;
      if (at !== undefined) key.revokedAt = at;
      this.byHash.delete(hash);
    }
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * The live API key an `Authorization` header presents, or the `GatewayError` (401) to answer with: the one check
 * behind `authenticate` and the data plane's.
 */
export function apiKeyOf(keys: ApiKeyCache, authorization: string | undefined, now: () => number = nowSeconds): ApiKeyRecord | GatewayError | Promise<ApiKeyRecord | GatewayError> {
  const presented = bearerOf(authorization);
  if (looksLikeSessionToken(presented)) return sessionNotApiKey();
  // Hash even a malformed key, so every failure costs the same.
  const presentedHash = hashApiKey(presented);
  const wellFormed = looksLikeApiKey(presented);
  const key = wellFormed ? keys.find(presentedHash) : undefined;
  const check = (found: ApiKeyRecord | undefined) =>
    keyHashesEqual(presentedHash, found?.keyHash) && found !== undefined && found.revokedAt === null && (found.expiresAt === null || found.expiresAt > now())
      ? found
      : invalidApiKey();
  // Only an unknown key costs a round trip to the fleet: a known one is answered from memory, as without a fleet.
  if (key === undefined && wellFormed && keys.adopt) {
    return keys.adopt(presentedHash).then(
      (adopted) => check(adopted && keys.find(presentedHash)),
      (error: unknown) => (error instanceof GatewayError ? error : invalidApiKey()),
    );
  }
  return check(key);
}

export function authenticate(keys: ApiKeyCache, now: () => number = nowSeconds): RequestHandler {
  return (req, _res, next) => {
    const use = (key: ApiKeyRecord | GatewayError) => {
      if (key instanceof GatewayError) return next(key);
      req.apiKey = key;
      next();
    };
    const key = apiKeyOf(keys, req.headers.authorization, now);
    if (key instanceof Promise) key.then(use, next);
    else use(key);
  };
}

/** The live session a token hash names: the fleet's when there is one, else this store's. */
function findSession(store: UsageStore, sessions: SessionLookup | undefined, tokenHash: Hex, now: number): ReadSession | undefined | Promise<ReadSession | undefined> {
  return sessions ? sessions.find(tokenHash, now) : store.findReadSession(tokenHash, now);
}

function useSession(req: { readSession?: ReadSession }, next: (error?: unknown) => void, presentedHash: Hex, session: ReadSession | undefined): void {
  if (!keyHashesEqual(presentedHash, session?.tokenHash) || session === undefined) return next(invalidApiKey());
  req.readSession = session;
  next();
}

/**
 * For the read routes (usage, balance, key list): an API key as above, or a live read session
 * (`tgs_…`, opened with `POST /v1/sessions`). An unknown, ended or expired session gets the same 401 as a
 * bad key.
 */
export function authenticateReader(keys: ApiKeyCache, store: UsageStore, now: () => number = () => Math.floor(Date.now() / 1000), sessions?: SessionLookup): RequestHandler {
  const byKey = authenticate(keys, now);
  return (req, res, next) => {
    const presented = bearerOf(req.headers.authorization);
    if (!looksLikeSessionToken(presented)) return byKey(req, res, next);
    const presentedHash = hashApiKey(presented);
    const session = findSession(store, sessions, presentedHash, now());
    if (session instanceof Promise) session.then((found) => useSession(req, next, presentedHash, found), next);
    else useSession(req, next, presentedHash, session);
  };
}

/** Only a read session: for ending it (`DELETE /v1/sessions/current`). */
export function authenticateSession(store: UsageStore, now: () => number = () => Math.floor(Date.now() / 1000), sessions?: SessionLookup): RequestHandler {
  return (req, _res, next) => {
    const presented = bearerOf(req.headers.authorization);
    const presentedHash = hashApiKey(presented);
    const session = looksLikeSessionToken(presented) ? findSession(store, sessions, presentedHash, now()) : undefined;
    if (session instanceof Promise) session.then((found) => useSession(req, next, presentedHash, found), next);
    else useSession(req, next, presentedHash, session);
  };
}
