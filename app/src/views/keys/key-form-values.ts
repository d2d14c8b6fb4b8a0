/**
 * The create-key form's text as the gateway's `CreateApiKey` message, or why it is not one. The tag rule is
 * the gateway's own zod schema (server/gateway/api-keys/wallet-messages.ts), so the page refuses exactly what
 * the gateway would, before the wallet is asked to sign.
 */
import type { CreateApiKeyParameters } from "../../../../client";
import { createApiKeyMessage } from "../../../../server/gateway/api-keys/wallet-messages";
import { parseAmount, type TokenInfo } from "../../lib/amounts";

export interface KeyFormText {
  label: string;
  spendCap: string;
  models: string[];
  /** A `datetime-local` value ("2027-01-31T18:00") in the reader's time zone, or "". */
  expiresAt: string;
  tags: string;
}

export type KeyFormErrors = Partial<Record<keyof KeyFormText, string>>;

const tagSchema = createApiKeyMessage.shape.tags.element;
const MAX_TAGS = 16;
const MAX_LABEL = 100;

/** "team:search, workflow:nightly" or one per line: commas, spaces and line breaks all separate. */
export function splitTags(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

export function parseKeyForm(text: KeyFormText, token: TokenInfo, nowSeconds: number): { ok: true; value: CreateApiKeyParameters } | { ok: false; errors: KeyFormErrors } {
  const errors: KeyFormErrors = {};
  const label = text.label.trim();
  if (label.length > MAX_LABEL) errors.label = `A label may be at most ${MAX_LABEL} characters (this one has ${label.length}).`;

  let spendCap: bigint | undefined;
  if (text.spendCap.trim() !== "") {
    const parsed = parseAmount(text.spendCap, token);
    if (parsed.ok) spendCap = parsed.value;
    else errors.spendCap = parsed.error;
  }

  let expiresAt: bigint | undefined;
  if (text.expiresAt !== "") {
    const millis = new Date(text.expiresAt).getTime();
    if (Number.isNaN(millis)) errors.expiresAt = "Enter a date and time, or leave it empty for a key that never expires.";
    else if (Math.floor(millis / 1000) <= nowSeconds) errors.expiresAt = "Pick a time in the future, or leave it empty for a key that never expires.";
    else expiresAt = BigInt(Math.floor(millis / 1000));
  }

  const tags = splitTags(text.tags);
  const badTag = tags.find((tag) => !tagSchema.safeParse(tag).success);
  if (badTag !== undefined) errors.tags = `“${badTag}” is not a tag: tags look like team:search or workflow:nightly-report (a name, a colon, a value; letters, digits, _ . - /; at most 64 characters).`;
  else if (tags.length > MAX_TAGS) errors.tags = `A key may carry at most ${MAX_TAGS} tags (${tags.length} given).`;

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, value: { label, spendCap, models: text.models, tags, expiresAt } };
}
