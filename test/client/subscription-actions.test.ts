/** The subscription actions against a real chain: a provider defines a plan, a buyer subscribes and cancels, a keeper renews. */
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { Address } from "viem";
import { deployMarketplace, USD } from "../../scripts/lib/marketplace-fixtures";
import { cancelSubscription, defineSubscriptionPlan, renewSubscription, subscribe } from "../../client";

const DAY = 24 * 3600;

describe("subscription actions", function () {
  it("define a plan, subscribe, renew by a keeper (reporting the forfeited included usage), cancel, and end at the period's end", async function () {
    const m = await deployMarketplace();
    const [buyer, keeper] = m.buyers;
    await m.tollgate.connect(buyer).deposit(buyer.address, USD(50));
    const seller = m.clientOf(m.provider.address as Address);
    const wallet = m.clientOf(buyer.address as Address);
    const { planId } = await defineSubscriptionPlan(seller, {
      providerId: Number(m.providerId),
      periodSeconds: 7 * DAY,
      price: USD(5),
      includedValue: USD(2),
      modelIds: [Number(m.smallModel)],
      overage: "refuse",
    });
    expect(planId).to.equal(1n);

    const first = await subscribe(wallet, { planId });
    expect(first.periodEnd - first.periodStart).to.equal(BigInt(7 * DAY));
    expect([first.price, first.includedValue]).to.deep.equal([USD(5), USD(2)]);
    expect((await m.tollgate.accountOf(buyer.address)).balance).to.equal(USD(45));

    await time.increaseTo(first.periodEnd);
    const renewed = await renewSubscription(m.clientOf(keeper.address as Address), { buyer: buyer.address as Address, providerId: 1 });
    expect(renewed).to.include({ periodsPaid: 1, paid: USD(5), forfeited: USD(2) });
    expect(renewed.ended).to.equal(undefined);

    const { endsAt } = await cancelSubscription(wallet, { providerId: 1 });
    expect(endsAt).to.equal(first.periodEnd + BigInt(7 * DAY));
    await time.increaseTo(endsAt);
    const ended = await renewSubscription(m.clientOf(keeper.address as Address), { buyer: buyer.address as Address, providerId: 1 });
    expect(ended).to.include({ periodsPaid: 0, paid: 0n, ended: "cancelled", forfeited: USD(2) });
    expect((await m.tollgate.accountOf(buyer.address)).balance).to.equal(USD(40));
  });
});
