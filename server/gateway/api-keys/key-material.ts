/**
 * API keys (and read session tokens): 256 random bits, shown once, stored only as their SHA-256. The lookup is by hash (an
 * attacker learns nothing from the index about a key it does not have), and the found hash is compared
 * again in constant time, so every failure path costs the same.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Hex } from "viem";

const KEY_PREFIX = "tg_";
const KEY_PATTERN = /^tg_[A-Za-z0-9_-]{43}$/;
// A read session token: another prefix, so neither can be mistaken for the other by a person or a route.
const SESSION_PREFIX = "tgs_";
const SESSION_PATTERN = /^tgs_[A-Za-z0-9_-]{43}$/;
const DUMMY_HASH = Buffer.alloc(32);

export function generateApiKey(): { key: string; id: string; keyHash: Hex } {
  const key = KEY_PREFIX + randomBytes(32).toString("base64url");
  const id = "key_" + randomBytes(9).toString("base64url");
  return { key, id, keyHash: hashApiKey(key) };
}

export function generateSessionToken(): { token: string; tokenHash: Hex } {
  const token = SESSION_PREFIX + randomBytes(32).toString("base64url");
  return { token, tokenHash: hashApiKey(token) };
}

export function looksLikeSessionToken(token: string): boolean {
  return SESSION_PATTERN.test(token);
}

/** The same SHA-256 for keys and session tokens: the prefix keeps the two apart. */
export function hashApiKey(key: string): Hex {
  return `0x${createHash("sha256").update(key).digest("hex")}`;
}

/** False for anything that is not shaped like one of our keys, without touching the store. */
export function looksLikeApiKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** Constant-time equality of two key hashes; a missing stored hash still costs one comparison. */
export function keyHashesEqual(presented: Hex, stored: Hex | undefined): boolean {
  const a = Buffer.from(presented.slice(2), "hex");
  const b = stored ? Buffer.from(stored.slice(2), "hex") : DUMMY_HASH;
  return timingSafeEqual(a, b) && stored !== undefined;
}
