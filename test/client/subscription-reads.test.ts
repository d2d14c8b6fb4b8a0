/**
 * The subscription read actions against a real chain: `getSubscriptionPlans` lists one provider's plans with the
 * models they cover and their overage rule; `getSubscription` follows a buyer's subscription through a settled
 * draw of included usage, a period with nothing rolled over, a renewal left due, a cancellation and its end.
 */
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { ethers } from "hardhat";
import { getAddress, keccak256, toHex, type Address } from "viem";
import { cancelSubscription, defineSubscriptionPlan, deposit, getSubscription, getSubscriptionPlans, listModel, registerProvider, renewSubscription, subscribe } from "../../client";
import { deployMarketplace, SMALL_PRICES, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { signedUsageBatch } from "../../server/chain/sign-batch";

const DAY = 24 * 3600;

describe("subscription read actions", function () {
  let m: Marketplace;
  let buyer: Address;
  let seller: ReturnType<Marketplace["clientOf"]>;
  let billPlan: bigint;
  let refusePlan: bigint;

  before(async function () {
    m = await deployMarketplace();
    buyer = getAddress(m.buyers[0].address);
    seller = m.clientOf(getAddress(m.provider.address));
    const providerId = Number(m.providerId);
    ({ planId: billPlan } = await defineSubscriptionPlan(seller, { providerId, periodSeconds: 7 * DAY, price: USD(5), includedValue: USD(2), modelIds: [Number(m.smallModel), Number(m.largeModel)], overage: "billBalance" }));
    ({ planId: refusePlan } = await defineSubscriptionPlan(seller, { providerId, periodSeconds: DAY, price: USD(1), includedValue: 30_000n, modelIds: [Number(m.smallModel)], overage: "refuse" }));
    // Another provider's plan, which provider 1's list must leave out.
    const other = m.clientOf(getAddress(m.others[2].address));
    const { providerId: otherId } = await registerProvider(other, { payout: getAddress(m.others[2].address), metadataUri: "ipfs://other" });
    const { modelId } = await listModel(other, { providerId: otherId, name: "other-model", prices: SMALL_PRICES });
    await defineSubscriptionPlan(other, { providerId: otherId, periodSeconds: DAY, price: USD(3), includedValue: USD(1), modelIds: [modelId], overage: "refuse" });
  });

  it("getSubscriptionPlans lists a provider's plans with period, price, included usage, models and overage rule", async function () {
    const { plans } = await getSubscriptionPlans(m.clientOf(buyer), { providerId: Number(m.providerId) });
    expect(plans.map((plan) => plan.planId)).to.deep.equal([billPlan, refusePlan]);
    expect(plans[0]).to.deep.include({ periodSeconds: 7 * DAY, price: USD(5), includedValue: USD(2), overage: "billBalance", rollsOver: false, models: ["small-model", "large-model"], modelIds: [Number(m.smallModel), Number(m.largeModel)] });
    expect(plans[1]).to.deep.include({ periodSeconds: DAY, price: USD(1), includedValue: 30_000n, overage: "refuse", models: ["small-model"] });
    // With the models given (from a catalog), the same answer without reading any log.
    const given = await getSubscriptionPlans(m.clientOf(buyer), { providerId: Number(m.providerId), models: [{ modelId: Number(m.smallModel), localIndex: 0, name: "small-model" }] });
    expect(given.plans.map((plan) => plan.models)).to.deep.equal([["small-model"], ["small-model"]]);
    const none = await getSubscriptionPlans(m.clientOf(buyer), { providerId: 99 });
    expect(none.plans).to.deep.equal([]);
  });

  it("getSubscription follows a subscription: included usage drawn on-chain, no rollover, renewal due, cancelled, ended", async function () {
    const providerId = Number(m.providerId);
    const wallet = m.clientOf(buyer);
    expect((await getSubscription(wallet, { buyer, providerId })).subscription).to.equal(null);
    await deposit(wallet, { amount: USD(3) });
    await time.increase(3_600);
    const { periodStart } = await subscribe(wallet, { planId: refusePlan });
    const started = Number(periodStart);
    let { subscription } = await getSubscription(wallet, { buyer, providerId });
    expect(subscription).to.deep.include({ planId: refusePlan, startedAt: started, paidPeriods: 1, paidUntil: started + DAY, status: "active", cancelled: false, rollsOver: false });
    expect(subscription!.plan).to.deep.equal({ periodSeconds: DAY, price: USD(1), includedValue: 30_000n, modelMask: 1n, overage: "refuse" });
    expect(subscription!.currentPeriod).to.deep.equal({ index: 0, start: started, end: started + DAY, includedUsed: 0n, includedRemaining: 30_000n });

    // A settled small-model call of 21,000 draws on the period's included value.
    await time.increase(60);
    const servedAt = started + 30;
    const record = { sequence: 0n, buyer, modelId: Number(m.smallModel), priceEpoch: 0, inputTokens: 100_000, cachedInputTokens: 0, outputTokens: 10_000, servedAt, receiptHash: keccak256(toHex("read 0")) };
    const { batch, signature } = await signedUsageBatch(m.gateway, { chainId: m.chainId, address: m.clientOf(buyer).contracts.tollgate }, [record]);
    await (await m.tollgate.connect(m.others[0]).settleBatch(batch, signature)).wait();
    ({ subscription } = await getSubscription(wallet, { buyer, providerId }));
    expect(subscription!.currentPeriod).to.include({ index: 0, includedUsed: 21_000n, includedRemaining: 9_000n });

    // The period ends with nobody renewing: due; renewed, period 1 starts from nothing used (no rollover).
    await time.increaseTo(started + DAY + 5);
    ({ subscription } = await getSubscription(wallet, { buyer, providerId }));
    expect(subscription).to.include({ status: "renewal-due", currentPeriod: null });
    await renewSubscription(wallet, { buyer, providerId });
    ({ subscription } = await getSubscription(wallet, { buyer, providerId }));
    expect(subscription).to.include({ status: "active", paidPeriods: 2, paidUntil: started + 2 * DAY });
    expect(subscription!.currentPeriod).to.include({ index: 1, includedUsed: 0n, includedRemaining: 30_000n });

    await cancelSubscription(wallet, { providerId });
    ({ subscription } = await getSubscription(wallet, { buyer, providerId }));
    expect(subscription).to.include({ status: "cancelled", cancelled: true, paidUntil: started + 2 * DAY });
    await time.increaseTo(started + 2 * DAY);
    await ethers.provider.send("evm_mine", []);
    // Over, even before anyone calls renew to end it.
    expect((await getSubscription(wallet, { buyer, providerId })).subscription).to.include({ status: "ended", currentPeriod: null });
  });
});
