/**
 * The signature on a budget alert: `tollgate-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * Signing the timestamp with the body lets a receiver refuse an old alert replayed to it; the secret is the
 * budget's own (`webhook_secret`, shown once at creation). The README shows the check in a few lines of Node.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "tollgate-signature";

export function signWebhook(secret: string, timestamp: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return `t=${timestamp},v1=${mac}`;
}

/**
 * True when `header` signs `body` with `secret` and its time is within `toleranceSeconds` of `now`: the check a
 * receiver makes, kept here so the gateway's tests check deliveries the way a receiver would.
 */
export function verifyWebhook(secret: string, header: string, body: string, now = Math.floor(Date.now() / 1000), toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(",").map((part) => part.split("=", 2) as [string, string]));
  const timestamp = Number(parts.t);
  if (!Number.isSafeInteger(timestamp) || Math.abs(now - timestamp) > toleranceSeconds || typeof parts.v1 !== "string") return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body).split("v1=")[1], "hex");
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
