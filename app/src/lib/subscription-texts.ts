/** How the pages word a subscription plan: its overage rule, and the no-rollover rule every plan shares. */
import type { SubscriptionOverage } from "../../../client";

export const NO_ROLLOVER = "Unused included usage does not roll over: what a period leaves unused is forfeited when it ends.";

export function overageText(overage: SubscriptionOverage): string {
  return overage === "refuse" ? "Refused: beyond the included usage, calls are refused and nothing more is charged" : "Billed: beyond the included usage, credits then balance pay at list prices";
}
