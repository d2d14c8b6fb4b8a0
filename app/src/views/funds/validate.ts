/**
 * Field checks said before the wallet is asked: an amount that is not one, has more decimals than the
 * token, or is more than the source holds. Each returns the value or the message shown under the field.
 */
import { isAddress, getAddress, type Address } from "viem";
import { formatAmount, parseAmount, parseWhole, type ParsedAmount, type TokenInfo } from "../../lib/amounts";

export function amountUpTo(text: string, token: TokenInfo, available: bigint, source: string, options: { allowZero?: boolean } = {}): ParsedAmount {
  const parsed = parseAmount(text, token, options);
  if (!parsed.ok) return parsed;
  if (parsed.value > available) return { ok: false, error: `That is more than ${source} (${formatAmount(available, token)}).` };
  return parsed;
}

export function creditsUpTo(text: string, available: bigint | undefined, what = "credits"): ParsedAmount {
  const parsed = parseWhole(text, what, { min: 1n });
  if (!parsed.ok) return parsed;
  if (available !== undefined && parsed.value > available) return { ok: false, error: `You hold ${available} ${what} of this plan.` };
  return parsed;
}

export type ParsedAddress = { ok: true; value: Address } | { ok: false; error: string };

export function recipientAddress(text: string, self?: Address): ParsedAddress {
  const cleaned = text.trim();
  if (cleaned === "") return { ok: false, error: "Enter the recipient's address (0x followed by 40 hex digits)." };
  if (!isAddress(cleaned, { strict: false })) return { ok: false, error: "That is not an address: 0x followed by 40 hex digits." };
  const value = getAddress(cleaned);
  if (value === "0x0000000000000000000000000000000000000000") return { ok: false, error: "Credits sent to the zero address would be lost." };
  if (self && value === self) return { ok: false, error: "That is your own address." };
  return { ok: true, value };
}

/** The message to show under a field: none until the user typed or tried to submit. */
export function shownError(parsed: { ok: boolean; error?: string }, text: string, submitted: boolean): string | undefined {
  return !parsed.ok && (submitted || text.trim() !== "") ? parsed.error : undefined;
}
