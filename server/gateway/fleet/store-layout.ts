/**
 * Where the fleet keeps what it shares, under one prefix per marketplace and provider (several fleets, or a test's
 * several runs, can share one Redis). Every value that is money is a decimal string (see lua-decimal.ts).
 *
 *   leases                 ZSET  instance id → lease expiry (ms, Redis clock); a reservation counts only while its
 *                                instance's lease runs
 *   instances              HASH  instance id → signer address (whose nextSequence every snapshot reads)
 *   b:<buyer>              HASH  r:<instance> → what that instance's calls in flight hold against the buyer
 *   k:<key id>             HASH  r:<instance> → held against the key;  s:<instance> → what it recorded with the key
 *   g:<budget>:<period>    HASH  the same for a budget's period
 *   u:<buyer>:<signer>     ZSET  sequence → "sequence:cost", the signer's records the chain had not settled when seen
 *   ut:<buyer>             HASH  signer → the sum of that set
 *   uw:<buyer>             HASH  signer → "N:t": a snapshot showed nextSequence N at t; entries below N go after a grace
 *   us:<buyer>:<signer>    HASH  N → the sum of u:<buyer>:<signer>'s entries below N, for each N a snapshot showed
 *   held:<instance>        SET   the hashes holding r:<instance>, cleared when the instance re-publishes
 *   kd:<key hash>          STRING an API key's definition (JSON, with revokedAt), fleet-definitions.ts
 *   kb:<buyer>             SET   the buyer's key hashes
 *   gd:<buyer>             HASH  budget id → its definition (JSON, with deletedAt)
 *   dv:<buyer>             STRING the version of the buyer's keys and budgets, bumped by every change of them
 *   rs:<token hash>        STRING a read session (JSON), expiring with it, fleet-sessions.ts
 *   n:<buyer>:<nonce>      STRING a used nonce of a wallet-signed message, expiring with the message
 */
import type { Address } from "viem";

export function fleetKeyPrefix(chainId: number, tollgate: Address, providerId: number): string {
  return `tollgate:${chainId}:${tollgate.toLowerCase()}:${providerId}:`;
}

export const fleetKeys = {
  leases: (prefix: string) => `${prefix}leases`,
  instances: (prefix: string) => `${prefix}instances`,
  buyer: (prefix: string, buyer: Address) => `${prefix}b:${buyer.toLowerCase()}`,
  key: (prefix: string, keyId: string) => `${prefix}k:${keyId}`,
  budget: (prefix: string, budgetId: string, periodStart: number) => `${prefix}g:${budgetId}:${periodStart}`,
};

/** Addresses as the scripts see them: lower case, so a checksummed and a plain spelling are one signer. */
export const lower = (address: Address): string => address.toLowerCase();
