/**
 * Which usage a credit plan pays for, decided the way `UsageSettlement` decides it when it settles a record
 * (`eligible := and(creditMask & modelBit != 0, servedAt < creditExpiry)`, an `expiresAt` of 0 meaning
 * never): the gateway uses it to count what credits can spend before a call, the oracle to choose the plan
 * a batch burns. One rule in one place, so the two never disagree with each other or with the chain.
 * Browser-safe (no Node built-ins), so client/ code may use it too.
 */
import type { CreditPlanTerms } from "./marketplace-reader";

/** A provider has at most 256 models (`ProviderRegistry.MAX_MODELS_PER_PROVIDER`): bits 0..255 of the mask. */
export const MAX_MODEL_LOCAL_INDEX = 255;

/** A model's bit in its provider's plan masks; its local index is its position among the provider's models. */
export function modelBit(localIndex: number): bigint {
  if (!Number.isInteger(localIndex) || localIndex < 0 || localIndex > MAX_MODEL_LOCAL_INDEX) {
    throw new RangeError(`a model's local index is an integer in [0, ${MAX_MODEL_LOCAL_INDEX}], got ${localIndex}`);
  }
  return 1n << BigInt(localIndex);
}

/** Whether the plan's credits may pay for the model at this local index. */
export function planCoversModel(plan: Pick<CreditPlanTerms, "modelMask">, localIndex: number): boolean {
  return (plan.modelMask & modelBit(localIndex)) !== 0n;
}

/** Whether the plan still pays for usage served at `servedAt`: strictly before `expiresAt`, or always when 0. */
export function planActiveAt(plan: Pick<CreditPlanTerms, "expiresAt">, servedAt: number): boolean {
  return plan.expiresAt === 0 || servedAt < plan.expiresAt;
}

/** Both conditions: the record of this model served at `servedAt` may be paid from the plan's credits. */
export function planCovers(plan: Pick<CreditPlanTerms, "modelMask" | "expiresAt">, localIndex: number, servedAt: number): boolean {
  return planCoversModel(plan, localIndex) && planActiveAt(plan, servedAt);
}

/** The plan's expiry as a number that orders "expires first" first; a plan that never expires sorts last. */
export function planExpiryOrder(plan: Pick<CreditPlanTerms, "expiresAt">): number {
  return plan.expiresAt === 0 ? Number.MAX_SAFE_INTEGER : plan.expiresAt;
}
