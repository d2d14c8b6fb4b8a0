/**
 * The signer key of each gateway instance on one host. Every instance signs with a key of its own, so each has
 * its own on-chain sequence and settles independently of its siblings. The keys are either listed
 * (TOLLGATE_GATEWAY_SIGNER_KEYS, one per instance, in order) or derived from one base key
 * (TOLLGATE_GATEWAY_SIGNER_KEY):
 *
 *   key_i = keccak256("tollgate/gateway-instance-signer/v1" ‖ baseKey (32 bytes) ‖ i (uint32, big-endian))
 *
 * Why this is safe: keccak256 is preimage-resistant, so a leaked instance key reveals neither the base key nor,
 * without it, any sibling's key (each sibling is a hash of the secret base, not of the leaked key). The label
 * separates this use of the base key from any other hash of it, and every part has a fixed width, so no two
 * (base, index) pairs encode to the same input. Whoever holds the base key can rebuild every instance key: it
 * is as secret as they are, and revoking a leaked instance key on-chain leaves its siblings working.
 */
import { concatHex, hexToBigInt, isHex, keccak256, numberToHex, stringToHex, type Hex } from "viem";
import { ConfigError } from "../config";

export const INSTANCE_KEY_LABEL = "tollgate/gateway-instance-signer/v1";
export const BASE_KEY_ENV = "TOLLGATE_GATEWAY_SIGNER_KEY";
export const KEY_LIST_ENV = "TOLLGATE_GATEWAY_SIGNER_KEYS";

/** secp256k1's group order: a private key must lie in [1, n-1]. */
const SECP256K1_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const MAX_INDEX = 0xffff_ffff;

export function isPrivateKey(value: string | undefined): value is Hex {
  return value !== undefined && isHex(value) && value.length === 66 && hexToBigInt(value) > 0n && hexToBigInt(value) < SECP256K1_ORDER;
}

/** Instance `index` (1-based) of the fleet whose base key is `baseKey`. Deterministic: the same inputs give the same key on every host and run. */
export function deriveInstanceSignerKey(baseKey: Hex, index: number): Hex {
  if (!isPrivateKey(baseKey)) throw new ConfigError("the base gateway key must be a 32-byte secp256k1 private key as 0x-prefixed hex");
  if (!Number.isInteger(index) || index < 1 || index > MAX_INDEX) throw new ConfigError(`instance index ${index} is not an integer from 1 to ${MAX_INDEX}`);
  const key = keccak256(concatHex([stringToHex(INSTANCE_KEY_LABEL), baseKey, numberToHex(index, { size: 4 })]));
  // A hash at or above the group order (odds about 2^-128) is no key; say so rather than wrap it silently.
  if (!isPrivateKey(key)) throw new ConfigError(`the key derived for instance ${index} is not a valid secp256k1 key; use another base key`);
  return key;
}

export interface InstanceKeys {
  keys: Hex[];
  /** Where they came from, for the start-up log: "listed" (TOLLGATE_GATEWAY_SIGNER_KEYS) or "derived" (from TOLLGATE_GATEWAY_SIGNER_KEY). */
  source: "listed" | "derived";
}

/**
 * The `count` instance keys the environment names. Both variables set is refused: which one wins would be a
 * guess, and a wrong guess signs with keys the provider never authorized.
 */
export function instanceSignerKeys(env: NodeJS.ProcessEnv, count: number): InstanceKeys {
  const listed = env[KEY_LIST_ENV]?.trim();
  const base = env[BASE_KEY_ENV]?.trim();
  if (listed && base) {
    throw new ConfigError(`both ${KEY_LIST_ENV} and ${BASE_KEY_ENV} are set: unset one (a list names each instance's key, a base key derives them)`);
  }
  if (listed) {
    const keys = listed.split(",").map((key) => key.trim());
    const bad = keys.map((key, i) => (isPrivateKey(key) ? undefined : i + 1)).filter((i) => i !== undefined);
    if (bad.length > 0) {
      // Never echo a key: name its position only.
      throw new ConfigError(`${KEY_LIST_ENV}: entries ${bad.join(", ")} are not 32-byte private keys as 0x-prefixed hex`);
    }
    if (keys.length !== count) {
      throw new ConfigError(`${KEY_LIST_ENV} lists ${keys.length} key(s) but ${count} instance(s) were asked for: list exactly one key per instance, in instance order`);
    }
    if (new Set(keys.map((key) => key.toLowerCase())).size !== keys.length) {
      throw new ConfigError(`${KEY_LIST_ENV} lists one key twice: two instances with one key would write two records under each sequence number`);
    }
    return { keys: keys as Hex[], source: "listed" };
  }
  if (base) {
    if (!isPrivateKey(base)) throw new ConfigError(`${BASE_KEY_ENV}: set it to the base gateway key's 32-byte private key as 0x-prefixed hex`);
    return { keys: Array.from({ length: count }, (_, i) => deriveInstanceSignerKey(base, i + 1)), source: "derived" };
  }
  throw new ConfigError(`set ${BASE_KEY_ENV} (a base key each instance's key is derived from) or ${KEY_LIST_ENV} (one key per instance, comma-separated)`);
}
