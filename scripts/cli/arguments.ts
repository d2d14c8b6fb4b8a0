/**
 * Command-line arguments other than token amounts: ids, counts, durations, times, addresses and lists.
 * Each parser names the argument in its error, so a typo is reported as what it is before any chain call.
 */
import { getAddress, isAddress, zeroAddress, type Address } from "viem";
import { CliError } from "./errors";

const MAX_UINT256 = 2n ** 256n - 1n;
export const MAX_UINT32 = 2n ** 32n - 1n;
export const MAX_UINT64 = 2n ** 64n - 1n;

/** A whole number for an id, a count or seconds; `max` is the type's bound on-chain (uint32 ids). */
export function parseInteger(text: string, what: string, options: { min?: bigint; max?: bigint } = {}): bigint {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) {
    throw new CliError(`${what} "${text}" is not a whole number`, `write it in digits, e.g. "1"`);
  }
  const value = BigInt(trimmed);
  const min = options.min ?? 0n;
  const max = options.max ?? MAX_UINT256;
  if (value < min) throw new CliError(`${what} must be at least ${min}, got ${value}`);
  if (value > max) throw new CliError(`${what} must be at most ${max}, got ${value}`);
  return value;
}

const DURATION_UNITS: Record<string, bigint> = { s: 1n, m: 60n, h: 3600n, d: 86_400n, w: 604_800n };

/** Seconds, plain ("3600") or with a unit ("90m", "1d", "2w"), because limits are usually per day or week. */
export function parseDuration(text: string, what: string, max = MAX_UINT32): bigint {
  const match = /^(\d+)([smhdw]?)$/.exec(text.trim());
  if (!match) throw new CliError(`${what} "${text}" is not a duration`, `seconds ("86400") or a number with s, m, h, d or w ("1d", "12h")`);
  const seconds = BigInt(match[1]) * DURATION_UNITS[match[2] || "s"];
  if (seconds === 0n) throw new CliError(`${what} must be more than zero seconds`);
  if (seconds > max) throw new CliError(`${what} is ${seconds} seconds, more than the most allowed (${max})`);
  return seconds;
}

/**
 * A point in time as unix seconds ("1767225600") or an ISO 8601 date ("2026-12-31", "2026-12-31T18:00:00Z").
 * "0" and "never" mean no expiry, as the contracts and the gateway read 0.
 */
export function parseTimestamp(text: string, what: string, max = MAX_UINT64): bigint {
  const trimmed = text.trim();
  if (trimmed === "never") return 0n;
  if (/^\d+$/.test(trimmed)) {
    const value = BigInt(trimmed);
    if (value > max) throw new CliError(`${what} ${value} is beyond the largest allowed time (${max})`);
    return value;
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(trimmed)) {
    const millis = Date.parse(trimmed);
    if (!Number.isNaN(millis)) {
      const value = BigInt(Math.floor(millis / 1000));
      if (value < 0n || value > max) throw new CliError(`${what} ${trimmed} is out of range`);
      return value;
    }
  }
  throw new CliError(`${what} "${text}" is not a time`, `unix seconds ("1767225600"), an ISO date ("2026-12-31" or "2026-12-31T18:00:00Z"), or "never"`);
}

/** Unix seconds → "2026-12-31T18:00:00Z", the form `parseTimestamp` reads back. */
export function formatTimestamp(seconds: bigint | number): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

/** 266400 → "3d 2h"; for "withdrawable in …" lines. */
export function formatDuration(seconds: bigint | number): string {
  let rest = Number(seconds);
  if (rest <= 0) return "0s";
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** A provider or model id: uint32 on-chain, and ids start at 1. */
export function parseId(text: string, what: string): number {
  return Number(parseInteger(text, what, { min: 1n, max: MAX_UINT32 }));
}

export function parseAddress(text: string, what: string, options: { allowZero?: boolean } = {}): Address {
  const trimmed = text.trim();
  if (!isAddress(trimmed, { strict: false })) {
    throw new CliError(`${what} "${text}" is not an address`, "an address is 0x followed by 40 hex digits");
  }
  // A mixed-case address with a wrong checksum is more likely a typo than a choice.
  if (trimmed !== trimmed.toLowerCase() && trimmed.slice(2) !== trimmed.slice(2).toUpperCase() && !isAddress(trimmed)) {
    throw new CliError(`${what} "${text}" has a wrong checksum`, "check it for a typo, or write it all in lower case");
  }
  const address = getAddress(trimmed);
  if (address === zeroAddress && !options.allowZero) throw new CliError(`${what} must not be the zero address`);
  return address;
}

/** "1,2, 3" → ["1", "2", "3"]; empty entries dropped. */
export function parseList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}
