/**
 * A marketplace with subscribed buyers, settled across two periods, for the audit's tests: buyer X holds a
 * BILL_BALANCE plan (and credits of a credit plan on the same model, so covered usage leaves the credit bucket),
 * buyer Y a REFUSE plan. Period 0: X uses all its included value and goes beyond it (credits, then balance),
 * Y goes beyond its own (refused). The keeper renews: X pays period 1, Y cannot pay and its subscription ends
 * unpaid. Period 1: X draws a fresh included value (nothing rolled over), a record of X served late in
 * period 0 still draws period 0's remainder (none left: overage), Y's record served after its paid periods is
 * billed as without a subscription, and its late record from period 0 is refused. X cancels; the keeper ends it.
 */
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { ethers } from "hardhat";
import { getAddress, keccak256, toHex, type Address, type Hash } from "viem";
import { buyCredits, cancelSubscription, defineCreditPlan, defineSubscriptionPlan, deposit, renewSubscription, subscribe } from "../../client";
import { deployMarketplace, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { signedUsageBatch } from "../../server/chain/sign-batch";
import type { UsageRecord } from "../../server/chain/usage-batch";

export const PERIOD = 24 * 3600;
/** Each plan's period price and included value. */
export const PLAN_PRICE = USD(1);
export const INCLUDED = 30_000n;
/** A small-model call of 100,000 input and 10,000 output tokens: 15,000 + 6,000. */
export const CALL_COST = 21_000n;

export interface SubscribedMarket {
  market: Marketplace;
  tollgate: Address;
  deployBlock: bigint;
  x: Address;
  y: Address;
  keeper: Address;
  billPlan: bigint;
  refusePlan: bigint;
  creditPlan: bigint;
  /** When each subscription started (period 0's start). */
  startedX: number;
  startedY: number;
  /** The two settlement transactions. */
  settlements: Hash[];
}

export async function subscribedMarket(): Promise<SubscribedMarket> {
  const market = await deployMarketplace();
  const tollgate = getAddress(await market.tollgate.getAddress());
  const deployBlock = BigInt((await market.tollgate.deploymentTransaction()!.wait())!.blockNumber);
  const [x, y, keeper] = market.buyers.slice(0, 3).map((signer) => getAddress(signer.address));
  const as = (who: Address) => market.clientOf(who);
  const providerId = Number(market.providerId);
  const seller = as(getAddress(market.provider.address));
  const small = Number(market.smallModel);
  const large = Number(market.largeModel);

  const { planId: billPlan } = await defineSubscriptionPlan(seller, { providerId, periodSeconds: PERIOD, price: PLAN_PRICE, includedValue: INCLUDED, modelIds: [small], overage: "billBalance" });
  const { planId: refusePlan } = await defineSubscriptionPlan(seller, { providerId, periodSeconds: PERIOD, price: PLAN_PRICE, includedValue: INCLUDED, modelIds: [small], overage: "refuse" });
  const { planId: creditPlan } = await defineCreditPlan(seller, { providerId, pricePerCredit: 9_000n, valuePerCredit: 10_000n, modelIds: [small] });
  await deposit(as(x), { amount: USD(10) });
  await buyCredits(as(x), { planId: creditPlan, count: 1n, payFrom: "balance" });
  // Y can pay one period and a little usage, not a second period.
  await deposit(as(y), { amount: PLAN_PRICE + 5_000n });
  await time.increase(3_600); // the listing's price epoch has begun
  const startedX = Number((await subscribe(as(x), { planId: billPlan })).periodStart);
  const startedY = Number((await subscribe(as(y), { planId: refusePlan })).periodStart);
  await time.increase(600);

  let sequence = 0n;
  const settlements: Hash[] = [];
  const call = (buyer: Address, modelId: number, servedAt: number): Omit<UsageRecord, "sequence" | "receiptHash"> => ({
    buyer,
    modelId,
    priceEpoch: 0,
    inputTokens: 100_000,
    cachedInputTokens: 0,
    outputTokens: 10_000,
    servedAt,
  });
  const settle = async (parts: Omit<UsageRecord, "sequence" | "receiptHash">[], plans: [Address, bigint][]) => {
    const records = parts.map((part, i) => ({ ...part, sequence: sequence + BigInt(i), receiptHash: keccak256(toHex(`subscribed ${sequence + BigInt(i)}`)) }));
    const { batch, signature } = await signedUsageBatch(market.gateway, { chainId: market.chainId, address: tollgate }, records, new Map(plans.map(([buyer, plan]) => [buyer, Number(plan)])));
    const receipt = (await (await market.tollgate.connect(market.others[0]).settleBatch(batch, signature)).wait())!;
    settlements.push(receipt.hash as Hash);
    sequence += BigInt(records.length);
  };

  // Period 0: X 21,000 + 21,000 on the small model (30,000 included, 12,000 beyond: its credit, then balance) and a
  // large-model call the plan does not cover; Y 21,000 + 21,000 (30,000 included, 12,000 refused).
  const t0 = Math.max(startedX, startedY) + 10;
  await settle([call(x, small, t0), call(y, small, t0 + 1), call(x, small, t0 + 2), call(y, small, t0 + 3), call(x, large, t0 + 4)], [[x, creditPlan]]);

  await time.increaseTo(startedY + PERIOD + 60);
  await renewSubscription(as(keeper), { buyer: x, providerId });
  await renewSubscription(as(keeper), { buyer: y, providerId }); // cannot pay: ends
  await time.increase(60);

  // Period 1 for X (a fresh 30,000); late records of period 0 for both (none left: X pays, Y is refused); Y after
  // its paid periods: billed like any usage, from a balance of 5,000.
  const t1 = startedY + PERIOD + 70;
  await settle([call(x, small, startedX + PERIOD - 5), call(y, small, startedY + PERIOD - 5), call(x, small, t1), call(y, small, t1 + 1)], []);

  await cancelSubscription(as(x), { providerId });
  await time.increaseTo(startedX + 2 * PERIOD + 1);
  await renewSubscription(as(keeper), { buyer: x, providerId }); // cancelled: ends
  await ethers.provider.send("evm_mine", []);
  return { market, tollgate, deployBlock, x, y, keeper, billPlan, refusePlan, creditPlan, startedX, startedY, settlements };
}
