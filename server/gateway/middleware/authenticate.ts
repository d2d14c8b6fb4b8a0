/**
 * `Authorization: Bearer <key>` → the buyer's API key record. A malformed, unknown, revoked or expired
 * key all get the same 401 after the same work. Keys are cached in memory by hash; the cache is the
 * store's rows, so a revocation through this gateway takes effect at once.
 */
import type { RequestHandler } from "express";
import type { Hex } from "viem";
import type { ApiKeyRecord, UsageStore } from "../../store/usage-store";
import { hashApiKey, keyHashesEqual, looksLikeApiKey } from "../api-keys/key-material";
import { invalidApiKey } from "../errors";

declare module "express-serve-static-core" {
  interface Request {
    apiKey?: ApiKeyRecord;
  }
}

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

export function authenticate(keys: ApiKeyCache, now: () => number = () => Math.floor(Date.now() / 1000)): RequestHandler {
  return (req, _res, next) => {
    const header = req.headers.authorization ?? "";
    // The auth scheme is case-insensitive (RFC 9110); the key itself is not.
    const match = /^bearer +(\S+)\s*$/i.exec(header);
    const presented = match ? match[1] : "";
    // Hash even a malformed key, so every failure costs the same.
    const presentedHash = hashApiKey(presented);
    const key = looksLikeApiKey(presented) ? keys.find(presentedHash) : undefined;
    const valid =
      keyHashesEqual(presentedHash, key?.keyHash) &&
      key !== undefined &&
      key.revokedAt === null &&
      (key.expiresAt === null || key.expiresAt > now());
    if (!valid) return next(invalidApiKey());
    req.apiKey = key;
    next();
  };
}
