/**
 * Subscriptions with included usage and overage (`TollgateSubscriptions`, paid through Tollgate's vault and drawn in
 * settlement): plans, subscribing, renewal (and a renewal the buyer cannot pay), cancellation, included usage that
 * does not roll over, overage billed or refused, and bad input with named errors and no state change.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Address } from "viem";
import { deployMarketplace, FEE_BPS, USD } from "../../scripts/lib/marketplace-fixtures";
import { feeOn } from "../helpers/contract-fixtures";
import {
  expectConservation,
  expectedCost,
  latestTime,
  marketState,
  nextSequence,
  recordsAt,
  resultOf,
  settle,
  type Call,
} from "../helpers/settlement-kit";
import type { TollgateSubscriptions } from "../../typechain-types";

const DAY = 24 * 3600;
const PERIOD = 30 * DAY;
const PRICE = USD(20);
/** 1,000 base units: two small-model calls of the kit's default size (450 each) and change. */
const INCLUDED = 1_000n;
const BILL_BALANCE = 0;
const REFUSE = 1;
const MAX_PERIOD = 366n * 24n * 3600n;
/** The kit's default call (1,000 in, 500 out) on the small model: 450 base units; on the large one: 7,500. */
const SMALL_CALL = 450n;

async function subscriptionsFixture() {
  const m = await deployMarketplace();
  const subs = (await ethers.getContractAt(
    "TollgateSubscriptions",
    await m.tollgate.subscriptions(),
  )) as unknown as TollgateSubscriptions;
  const [buyer, other] = m.buyers;
  for (const b of [buyer, other]) await m.tollgate.connect(b).deposit(b.address, USD(100));
  // Plan 1 covers only the small model and bills overage; plan 2 covers it too but refuses overage.
  await subs.connect(m.provider).defineSubscriptionPlan(m.providerId, PERIOD, PRICE, INCLUDED, [m.smallModel], BILL_BALANCE);
  await subs.connect(m.provider).defineSubscriptionPlan(m.providerId, PERIOD, PRICE, INCLUDED, [m.smallModel], REFUSE);
  return { ...m, subs, buyer, other };
}

type Fixture = Awaited<ReturnType<typeof subscriptionsFixture>>;

async function subscribed(planId: bigint) {
  const f = await loadFixture(subscriptionsFixture);
  await f.subs.connect(f.buyer).subscribe(planId);
  const startedAt = BigInt((await f.subs.subscriptionOf(f.buyer.address, f.providerId)).startedAt);
  return { ...f, startedAt };
}

/** Settles `calls` (served at the given offsets from now, in the past) for the fixture's gateway. */
async function settleCalls(f: Fixture, calls: Omit<Call, "servedAt">[], servedAt: number, plans?: Map<Address, number>) {
  const records = recordsAt(await nextSequence(f.tollgate, f.gateway.address), calls.map((c) => ({ ...c, servedAt })));
  return { records, ...(await settle(f, records, { plans })) };
}

function drawnEvents(f: Fixture, receipt: Awaited<ReturnType<typeof settle>>["receipt"]) {
  return receipt.logs
    .filter((log) => log.address.toLowerCase() === f.subs.target.toString().toLowerCase())
    .map((log) => f.subs.interface.parseLog(log)!)
    .filter((parsed) => parsed.name === "IncludedUsageDrawn")
    .map((parsed) => ({
      periodIndex: parsed.args.periodIndex as bigint,
      drawn: parsed.args.drawn as bigint,
      refused: parsed.args.refused as bigint,
      usedInPeriod: parsed.args.usedInPeriod as bigint,
    }));
}

describe("TollgateSubscriptions", function () {
  describe("defineSubscriptionPlan", function () {
    it("defines a plan with its models' mask and emits SubscriptionPlanDefined", async function () {
      const f = await loadFixture(subscriptionsFixture);
      await expect(
        f.subs.connect(f.provider).defineSubscriptionPlan(f.providerId, DAY, 5n, 7n, [f.smallModel, f.largeModel], REFUSE),
      )
        .to.emit(f.subs, "SubscriptionPlanDefined")
        .withArgs(3n, f.providerId, DAY, 5n, 7n, 0b11n, REFUSE);
      const plan = await f.subs.subscriptionPlanOf(3n);
      expect([plan.providerId, plan.period, plan.overage, plan.price, plan.includedValue, plan.modelMask]).to.deep.equal([
        f.providerId, BigInt(DAY), BigInt(REFUSE), 5n, 7n, 0b11n,
      ]);
      expect(await f.subs.subscriptionPlanCount()).to.equal(3n);
    });

    it("refuses a non-owner, a zero or too long period, no included value, no models and another provider's model, changing nothing", async function () {
      const f = await loadFixture(subscriptionsFixture);
      const define = (period: bigint | number, included: bigint, models: bigint[], from = f.provider) =>
        f.subs.connect(from).defineSubscriptionPlan(f.providerId, period, PRICE, included, models, BILL_BALANCE);
      await expect(define(PERIOD, INCLUDED, [f.smallModel], f.buyer))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsNotProviderOwner")
        .withArgs(f.providerId, f.buyer.address);
      await expect(define(0, INCLUDED, [f.smallModel]))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsInvalidPeriod")
        .withArgs(0n, MAX_PERIOD);
      await expect(define(MAX_PERIOD + 1n, INCLUDED, [f.smallModel]))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsInvalidPeriod")
        .withArgs(MAX_PERIOD + 1n, MAX_PERIOD);
      await expect(define(PERIOD, 0n, [f.smallModel]))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsInvalidPlan")
        .withArgs(0n, 1n);
      await expect(define(PERIOD, INCLUDED, [])).to.be.revertedWithCustomError(f.subs, "SubscriptionsInvalidPlan").withArgs(INCLUDED, 0n);
      await expect(define(PERIOD, 2n ** 96n, [f.smallModel]))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsValueOutOfRange")
        .withArgs(2n ** 96n);
      // A second provider's model.
      const [rival] = f.others;
      await f.tollgate.connect(rival).registerProvider(rival.address, "ipfs://rival");
      await f.tollgate.connect(rival).listModel(2n, "rival-model", { input: 1n, cachedInput: 1n, output: 1n });
      await expect(define(PERIOD, INCLUDED, [3n]))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsModelNotOfProvider")
        .withArgs(3n, f.providerId);
      expect(await f.subs.subscriptionPlanCount()).to.equal(2n);
    });
  });

  describe("subscribe", function () {
    it("pays the first period from the vault balance: the provider earns the price minus the fee at once", async function () {
      const f = await loadFixture(subscriptionsFixture);
      const before = await marketState(f, [f.buyer.address]);
      const tx = await f.subs.connect(f.buyer).subscribe(1n);
      const at = BigInt((await ethers.provider.getBlock((await tx.wait())!.blockNumber))!.timestamp);
      const fee = feeOn(PRICE, FEE_BPS);
      await expect(tx)
        .to.emit(f.subs, "Subscribed")
        .withArgs(f.buyer.address, f.providerId, 1n, 1n, at, at + BigInt(PERIOD), PRICE, fee, INCLUDED);
      const after = await marketState(f, [f.buyer.address]);
      expect(after.accounts[0].balance).to.equal(before.accounts[0].balance - PRICE);
      expect(after.earnings - before.earnings).to.equal(PRICE - fee);
      expect(after.fees - before.fees).to.equal(fee);
      expect(after.vaultTokens).to.equal(before.vaultTokens);
      const sub = await f.subs.subscriptionOf(f.buyer.address, f.providerId);
      expect([sub.id, sub.planId, BigInt(sub.startedAt), sub.paidPeriods, sub.active, sub.cancelled]).to.deep.equal([
        1n, 1n, at, 1n, true, false,
      ]);
      expect(await f.subs.paidUntil(f.buyer.address, f.providerId)).to.equal(at + BigInt(PERIOD));
      await expectConservation(f);
    });

    it("refuses an unknown plan, a second subscription to the provider and a balance short of the price, changing nothing", async function () {
      const f = await loadFixture(subscriptionsFixture);
      const poor = f.buyers[2];
      await f.tollgate.connect(poor).deposit(poor.address, PRICE - 1n);
      await f.subs.connect(f.buyer).subscribe(1n);
      const before = await marketState(f, [f.buyer.address, poor.address]);
      await expect(f.subs.connect(f.buyer).subscribe(9n)).to.be.revertedWithCustomError(f.subs, "SubscriptionsUnknownPlan").withArgs(9n);
      await expect(f.subs.connect(f.buyer).subscribe(2n))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsAlreadySubscribed")
        .withArgs(f.buyer.address, f.providerId, 1n);
      await expect(f.subs.connect(poor).subscribe(1n))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsInsufficientBalance")
        .withArgs(poor.address, PRICE - 1n, PRICE);
      expect(await marketState(f, [f.buyer.address, poor.address])).to.deep.equal(before);
      expect((await f.subs.subscriptionOf(poor.address, f.providerId)).id).to.equal(0n);
    });

    it("lets only the subscriptions contract charge the vault, and only Tollgate draw included usage", async function () {
      const f = await loadFixture(subscriptionsFixture);
      await expect(f.tollgate.connect(f.buyer).chargeSubscription(f.buyer.address, f.providerId, 1n))
        .to.be.revertedWithCustomError(f.tollgate, "SubscriptionsOnlySatellite")
        .withArgs(f.buyer.address);
      await expect(f.subs.connect(f.buyer).drawIncluded(f.providerId, "0x", "0x"))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsOnlyTollgate")
        .withArgs(f.buyer.address);
    });
  });

  describe("settlement", function () {
    it("draws covered usage from the included value first (no money moves), then bills overage from the balance at list prices", async function () {
      const f = await subscribed(1n);
      await time.increase(60);
      const before = await marketState(f, [f.buyer.address]);
      // Three small calls (covered: 1,350 against 1,000 included) and one large call (not covered by the plan).
      const { records, receipt, settled, batch } = await settleCalls(
        f,
        [{ buyer: f.buyer.address, modelId: f.smallModel }, { buyer: f.buyer.address, modelId: f.smallModel },
         { buyer: f.buyer.address, modelId: f.largeModel }, { buyer: f.buyer.address, modelId: f.smallModel }],
        (await latestTime()) - 1,
      );
      const listCost = await expectedCost(f.tollgate, records);
      const overage = 3n * SMALL_CALL - INCLUDED;
      const largeCost = listCost - 3n * SMALL_CALL;
      expect(settled.totalCost).to.equal(listCost);
      expect(settled.totalShortfall).to.equal(0n);
      expect(resultOf(batch, settled, f.buyer.address).fromBalance).to.equal(overage + largeCost);
      const after = await marketState(f, [f.buyer.address]);
      expect(before.accounts[0].balance - after.accounts[0].balance).to.equal(overage + largeCost);
      const fee = feeOn(overage + largeCost, FEE_BPS);
      expect(after.earnings - before.earnings).to.equal(overage + largeCost - fee);
      expect(drawnEvents(f, receipt)).to.deep.equal([{ periodIndex: 0n, drawn: INCLUDED, refused: 0n, usedInPeriod: INCLUDED }]);
      expect(await f.subs.includedUsedOf(1n, 0n)).to.equal(INCLUDED);
      await expectConservation(f);
    });

    it("under REFUSE, records covered usage beyond the included value as shortfall and charges nothing for it", async function () {
      const f = await subscribed(2n);
      await time.increase(60);
      const before = await marketState(f, [f.buyer.address]);
      const { receipt, settled, batch } = await settleCalls(
        f,
        [0, 1, 2].map(() => ({ buyer: f.buyer.address, modelId: f.smallModel })),
        (await latestTime()) - 1,
      );
      const excess = 3n * SMALL_CALL - INCLUDED;
      expect(settled.totalCost).to.equal(3n * SMALL_CALL);
      expect(settled.totalShortfall).to.equal(excess);
      expect(resultOf(batch, settled, f.buyer.address)).to.deep.equal({ fromBalance: 0n, shortfall: excess });
      await expect(receipt).to.emit(f.tollgate, "ShortfallRecorded").withArgs(f.buyer.address, f.gateway.address, settled.firstSequence, excess);
      const after = await marketState(f, [f.buyer.address]);
      expect(after.accounts[0].balance).to.equal(before.accounts[0].balance);
      expect(after.earnings).to.equal(before.earnings);
      expect(drawnEvents(f, receipt)).to.deep.equal([{ periodIndex: 0n, drawn: INCLUDED, refused: excess, usedInPeriod: INCLUDED }]);
      await expectConservation(f);
    });

    it("draws included usage before credits, credits before the balance", async function () {
      const f = await subscribed(1n);
      await f.tollgate.connect(f.provider).defineCreditPlan(f.providerId, 1_000n, 500n, [f.smallModel], 0);
      await f.tollgate.connect(f.buyer).buyCreditsWithBalance(1n, 1n, f.buyer.address);
      await time.increase(60);
      const before = await marketState(f, [f.buyer.address], [1n]);
      // 1,350 covered: 1,000 included, then one credit worth 500 pays 350 (150 kept as change), nothing from balance.
      const { settled, batch } = await settleCalls(
        f,
        [0, 1, 2].map(() => ({ buyer: f.buyer.address, modelId: f.smallModel })),
        (await latestTime()) - 1,
        new Map([[f.buyer.address as Address, 1]]),
      );
      expect(resultOf(batch, settled, f.buyer.address)).to.deep.equal({ fromBalance: 0n, shortfall: 0n });
      const after = await marketState(f, [f.buyer.address], [1n]);
      expect(after.credits).to.deep.equal([before.credits[0] - 1n]);
      expect(await f.tollgate.creditChangeOf(f.buyer.address, 1n)).to.equal(150n);
      expect(after.accounts[0].balance).to.equal(before.accounts[0].balance);
      await expectConservation(f);
    });

    it("does not cover usage served before the subscription started", async function () {
      const f = await loadFixture(subscriptionsFixture);
      const servedAt = (await latestTime()) - 1;
      await time.increase(10);
      await f.subs.connect(f.buyer).subscribe(1n);
      const { receipt, settled, batch } = await settleCalls(f, [{ buyer: f.buyer.address, modelId: f.smallModel }], servedAt);
      expect(resultOf(batch, settled, f.buyer.address).fromBalance).to.equal(SMALL_CALL);
      expect(drawnEvents(f, receipt)).to.deep.equal([]);
    });
  });

  describe("renew", function () {
    it("is not due before the paid period ends", async function () {
      const f = await subscribed(1n);
      const until = f.startedAt + BigInt(PERIOD);
      await expect(f.subs.connect(f.other).renew(f.buyer.address, f.providerId))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsRenewalNotDue")
        .withArgs(f.buyer.address, f.providerId, until, (await latestTime()) + 1);
      await expect(f.subs.renew(f.other.address, f.providerId))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsNotSubscribed")
        .withArgs(f.other.address, f.providerId);
    });

    it("renews at the period start from the balance, when anyone asks; unused included usage does not roll over", async function () {
      const f = await subscribed(1n);
      await time.increase(60);
      await settleCalls(f, [{ buyer: f.buyer.address, modelId: f.smallModel }], (await latestTime()) - 1);
      const until = f.startedAt + BigInt(PERIOD);
      await time.increaseTo(until);
      const before = await marketState(f, [f.buyer.address]);
      const fee = feeOn(PRICE, FEE_BPS);
      // A keeper (any account) renews; the unused 550 of period 0 is forfeited, and says so.
      await expect(f.subs.connect(f.other).renew(f.buyer.address, f.providerId))
        .to.emit(f.subs, "SubscriptionRenewed")
        .withArgs(f.buyer.address, f.providerId, 1n, 1n, until, until + BigInt(PERIOD), PRICE, fee, INCLUDED - SMALL_CALL);
      const after = await marketState(f, [f.buyer.address]);
      expect(before.accounts[0].balance - after.accounts[0].balance).to.equal(PRICE);
      expect(after.earnings - before.earnings).to.equal(PRICE - fee);
      expect(await f.subs.paidUntil(f.buyer.address, f.providerId)).to.equal(until + BigInt(PERIOD));

      // Period 1 includes 1,000, not 1,000 + the 550 left: three calls (1,350) bill 350 from the balance.
      await time.increase(60);
      const { receipt, settled, batch } = await settleCalls(
        f,
        [0, 1, 2].map(() => ({ buyer: f.buyer.address, modelId: f.smallModel })),
        (await latestTime()) - 1,
      );
      expect(resultOf(batch, settled, f.buyer.address).fromBalance).to.equal(3n * SMALL_CALL - INCLUDED);
      expect(drawnEvents(f, receipt)).to.deep.equal([{ periodIndex: 1n, drawn: INCLUDED, refused: 0n, usedInPeriod: INCLUDED }]);
      expect(await f.subs.includedUsedOf(1n, 0n)).to.equal(SMALL_CALL);
      await expectConservation(f);
    });

    it("draws a late record of a paid period from that period's remainder, and splits a batch across periods", async function () {
      const f = await subscribed(1n);
      const until = f.startedAt + BigInt(PERIOD);
      await time.increaseTo(until + 100n);
      await f.subs.renew(f.buyer.address, f.providerId);
      // One call served in period 0 (settled after the renewal) and three in period 1, in one batch.
      const records = recordsAt(await nextSequence(f.tollgate, f.gateway.address), [
        { buyer: f.buyer.address, modelId: f.smallModel, servedAt: Number(until) - 5 },
        ...[0, 1, 2].map(() => ({ buyer: f.buyer.address, modelId: f.smallModel, servedAt: Number(until) + 50 })),
      ]);
      const { receipt, settled, batch } = await settle(f, records);
      expect(drawnEvents(f, receipt)).to.deep.equal([
        { periodIndex: 0n, drawn: SMALL_CALL, refused: 0n, usedInPeriod: SMALL_CALL },
        { periodIndex: 1n, drawn: INCLUDED, refused: 0n, usedInPeriod: INCLUDED },
      ]);
      expect(resultOf(batch, settled, f.buyer.address).fromBalance).to.equal(3n * SMALL_CALL - INCLUDED);
    });

    it("ends a subscription whose renewal the buyer cannot pay, charging nothing and reverting nothing", async function () {
      const f = await subscribed(1n);
      // Everything else is asked out: renewals draw on the balance, never on a pending withdrawal.
      const { balance } = await f.tollgate.accountOf(f.buyer.address);
      await f.tollgate.connect(f.buyer).requestWithdrawal(balance);
      const until = f.startedAt + BigInt(PERIOD);
      await time.increaseTo(until);
      const before = await marketState(f, [f.buyer.address]);
      await expect(f.subs.connect(f.other).renew(f.buyer.address, f.providerId))
        .to.emit(f.subs, "SubscriptionEnded")
        .withArgs(f.buyer.address, f.providerId, 1n, 1n /* UNPAID */, until, PRICE, 0n, INCLUDED);
      expect(await marketState(f, [f.buyer.address])).to.deep.equal(before);
      const sub = await f.subs.subscriptionOf(f.buyer.address, f.providerId);
      expect([sub.active, sub.paidPeriods]).to.deep.equal([false, 1n]);
      // Usage after the end is billed at list prices, from what the buyer still holds (its pending withdrawal).
      await time.increase(60);
      const { settled, batch } = await settleCalls(f, [{ buyer: f.buyer.address, modelId: f.smallModel }], (await latestTime()) - 1);
      expect(resultOf(batch, settled, f.buyer.address).fromBalance).to.equal(SMALL_CALL);
      await expect(f.subs.renew(f.buyer.address, f.providerId)).to.be.revertedWithCustomError(f.subs, "SubscriptionsNotSubscribed");
      await expectConservation(f);
    });

    it("catches up every started period, at most MAX_RENEWALS_PER_CALL at a time", async function () {
      const f = await subscribed(1n);
      await time.increaseTo(f.startedAt + 3n * BigInt(PERIOD) + 1n);
      const before = (await f.tollgate.accountOf(f.buyer.address)).balance;
      await f.subs.renew(f.buyer.address, f.providerId);
      expect(before - (await f.tollgate.accountOf(f.buyer.address)).balance).to.equal(3n * PRICE);
      expect((await f.subs.subscriptionOf(f.buyer.address, f.providerId)).paidPeriods).to.equal(4n);
    });
  });

  describe("cancelSubscription", function () {
    it("keeps the paid period covered, ends at its end without charging, refunds nothing, and allows a new subscription", async function () {
      const f = await subscribed(1n);
      const until = f.startedAt + BigInt(PERIOD);
      await expect(f.subs.connect(f.buyer).cancelSubscription(f.providerId))
        .to.emit(f.subs, "SubscriptionCancelled")
        .withArgs(f.buyer.address, f.providerId, 1n, until);
      await expect(f.subs.connect(f.buyer).cancelSubscription(f.providerId))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsAlreadyCancelled")
        .withArgs(f.buyer.address, f.providerId, until);
      await expect(f.subs.connect(f.other).cancelSubscription(f.providerId))
        .to.be.revertedWithCustomError(f.subs, "SubscriptionsNotSubscribed")
        .withArgs(f.other.address, f.providerId);
      // Still covered until the end.
      await time.increase(60);
      const covered = await settleCalls(f, [{ buyer: f.buyer.address, modelId: f.smallModel }], (await latestTime()) - 1);
      expect(resultOf(covered.batch, covered.settled, f.buyer.address).fromBalance).to.equal(0n);

      await time.increaseTo(until);
      const before = await marketState(f, [f.buyer.address]);
      await expect(f.subs.connect(f.other).renew(f.buyer.address, f.providerId))
        .to.emit(f.subs, "SubscriptionEnded")
        .withArgs(f.buyer.address, f.providerId, 1n, 0n /* CANCELLED */, until, 0n, 0n, INCLUDED - SMALL_CALL);
      expect(await marketState(f, [f.buyer.address])).to.deep.equal(before);
      await time.increase(60);
      const after = await settleCalls(f, [{ buyer: f.buyer.address, modelId: f.smallModel }], (await latestTime()) - 1);
      expect(resultOf(after.batch, after.settled, f.buyer.address).fromBalance).to.equal(SMALL_CALL);
      // A fresh subscription starts a fresh id and period 0.
      await expect(f.subs.connect(f.buyer).subscribe(2n)).to.emit(f.subs, "Subscribed");
      expect((await f.subs.subscriptionOf(f.buyer.address, f.providerId)).id).to.equal(2n);
      await expectConservation(f);
    });
  });
});
