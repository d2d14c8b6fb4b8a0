/** Subscriptions for gateway and oracle tests: a plan of the harness's provider and a buyer subscribed to it, through the client actions. */
import type { Address } from "viem";
import { defineSubscriptionPlan, subscribe, type SubscriptionOverage } from "../../client";
import type { GatewayHarness } from "./gateway-harness";

type Signer = GatewayHarness["market"]["buyers"][number];

export interface PlanTerms {
  periodSeconds: number;
  price: bigint;
  includedValue: bigint;
  overage: SubscriptionOverage;
  /** Default: the small model only. */
  modelIds?: number[];
}

/** Defines the plan as the provider and subscribes `buyer` (who must hold `price` in the vault). */
export async function subscribeBuyer(h: GatewayHarness, buyer: Signer, terms: PlanTerms) {
  const seller = h.market.clientOf(h.market.provider.address as Address);
  const { planId } = await defineSubscriptionPlan(seller, {
    providerId: Number(h.market.providerId),
    periodSeconds: terms.periodSeconds,
    price: terms.price,
    includedValue: terms.includedValue,
    modelIds: terms.modelIds ?? [Number(h.market.smallModel)],
    overage: terms.overage,
  });
  const subscribed = await subscribe(h.market.clientOf(buyer.address as Address), { planId });
  // The in-process chain's clock runs ahead of the wall clock after many blocks; calls served before the
  // subscription's start on the gateway's clock would (rightly) not be covered, so let the gateway catch up now.
  await h.gateway.ctx.state.refresh();
  return { planId, ...subscribed };
}

/** `GET /v1/balance` with the buyer's key. */
export async function balanceOf(h: GatewayHarness, key: string): Promise<Record<string, any>> {
  const response = await fetch(`${h.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });
  if (response.status !== 200) throw new Error(`GET /v1/balance: ${response.status} ${await response.text()}`);
  return (await response.json()) as Record<string, any>;
}

export function spendableOf(balance: Record<string, any>, model: string): bigint {
  return BigInt(balance.spendable_by_model.find((entry: { model: string }) => entry.model === model).spendable);
}
