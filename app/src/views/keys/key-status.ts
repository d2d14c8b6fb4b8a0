/** A key's state as a word, never only a colour: revoked, expired (by the reader's clock, as the gateway's), or active. */
import type { GatewayApiKey } from "../../../../client";

export type KeyStatus = "active" | "revoked" | "expired";

export function keyStatus(key: Pick<GatewayApiKey, "revoked_at" | "expires_at">, nowSeconds: number): KeyStatus {
  if (key.revoked_at !== null) return "revoked";
  if (key.expires_at !== null && key.expires_at <= nowSeconds) return "expired";
  return "active";
}

export const STATUS_BADGE: Record<KeyStatus, string> = { active: "badge ok", revoked: "badge bad", expired: "badge warn" };
