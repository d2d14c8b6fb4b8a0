/**
 * A subscription plan as `TollgateSubscriptions` defines it, one shape for the gateway's reads and the auditor's
 * replay of `SubscriptionPlanDefined` (browser-safe: types and a pure function only).
 */

/** What settlement does with covered usage beyond the included value: bill it from the balance, or refuse it. */
export type OverageRule = "bill_balance" | "refuse";

/** A subscription plan; plans never change once defined. */
export interface SubscriptionPlanTerms {
  planId: bigint;
  providerId: number;
  /** Period length in seconds. */
  period: number;
  price: bigint;
  /** Usage value (token base units, at list prices) each paid period includes; unused value does not roll over. */
  includedValue: bigint;
  /** Bit i set: covers the provider's model of local index i. */
  modelMask: bigint;
  overage: OverageRule;
}

/** The contract's `OverageRule` enum (0 BILL_BALANCE, 1 REFUSE). */
export function overageRuleOf(value: number): OverageRule {
  return value === 1 ? "refuse" : "bill_balance";
}
