/**
 * A subscribed buyer at the gateway: a covered call can spend what its paid period's included value has left
 * (under REFUSE nothing more, refused with a 402 that names the plan's figures), the balance the next renewal
 * takes is held back, a period that ended without a renewal bills as if there were no subscription, and
 * `/v1/balance` shows all of it. Records settle through the real oracle, and the chain agrees.
 */
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { getAddress, type Address } from "viem";
import { cancelSubscription, renewSubscription } from "../../client";
import { tollgateAbi, tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { recordCost } from "../../server/chain/pricing";
import { reservedInputTokens } from "../../server/gateway/metering/usage-counts";
import { SMALL_PRICES, USD } from "../../scripts/lib/marketplace-fixtures";
import { createGateway, type Gateway } from "../../server/gateway/gateway";
import { createOpenAICompatibleUpstream } from "../../server/upstream/openai-compatible";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";
import { settleEverything } from "../helpers/oracle-harness";
import { balanceOf, spendableOf, subscribeBuyer } from "../helpers/subscriptions";

const DAY = 24 * 3600;
const messages = [{ role: "user" as const, content: "Tell me about toll roads in one line." }];
const MAX_TOKENS = 64;

describe("gateway: subscriptions", function () {
  this.timeout(180_000);
  let h: GatewayHarness;
  /** The most one small-model call of `messages` can cost: what the gateway reserves for it. */
  let reservation: bigint;

  before(async () => {
    h = await startGatewayHarness({ simulator: { latencyMs: 5 } });
    const estimate = h.gateway.ctx.tokenizer.countChatPromptSync("o200k_base", messages)!;
    reservation = recordCost({ inputTokens: reservedInputTokens(estimate), cachedInputTokens: 0, outputTokens: MAX_TOKENS }, { ...SMALL_PRICES, cachedInput: SMALL_PRICES.input });
  });
  after(async () => h?.close());

  const call = (key: string, model = "small-model") => h.openai(key).chat.completions.create({ model, messages, max_tokens: MAX_TOKENS });
  const vaultBalance = async (buyer: { address: string }) => (await h.market.tollgate.accountOf(buyer.address)).balance;
  const costs = (buyer: { address: string }, model?: number) =>
    h.gateway.ctx.store
      .recordsOf(getAddress(buyer.address), { limit: 10_000 })
      .filter((record) => model === undefined || record.modelId === model)
      .reduce((sum, record) => sum + record.cost, 0n);

  /** Calls until one is refused (at most 50); how many were served, and the refusal (undefined if none came). */
  async function callUntilRefused(key: string): Promise<{ served: number; refusal: any }> {
    for (let served = 0; served < 50; served++) {
      try {
        await call(key);
      } catch (refusal) {
        return { served, refusal };
      }
    }
    return { served: 50, refusal: undefined };
  }

  /**
   * Settles everything with the real oracle; returns what the chain says of `buyer`: the included value each
   * period gave (`IncludedUsageDrawn`) and the batches' shortfall (`BatchSettled`).
   */
  async function settle(buyer: { address: string }) {
    const { client, fromBlock } = await settleEverything(h);
    expect(h.gateway.ctx.store.unsettledRecords(0n, 10).length).to.equal(0);
    const subscriptions = (await h.market.tollgate.subscriptions()) as Address;
    const batches = await client.getContractEvents({ address: h.config.chain.deployment.tollgate, abi: tollgateAbi, eventName: "BatchSettled", fromBlock });
    const drawn = await client.getContractEvents({ address: subscriptions, abi: tollgateSubscriptionsAbi, eventName: "IncludedUsageDrawn", args: { buyer: getAddress(buyer.address) }, fromBlock });
    return {
      drawn: drawn.map((log) => log.args as { periodIndex: bigint; drawn: bigint; refused: bigint; usedInPeriod: bigint }),
      shortfall: batches.reduce((sum, log) => sum + log.args.totalShortfall!, 0n),
    };
  }

  it("REFUSE: covered calls spend only the period's included value; beyond it a 402 names the plan, and nothing is reserved or charged", async function () {
    const buyer = h.market.buyers[0];
    await h.deposit(buyer, USD(10));
    const included = reservation * 2n + reservation / 2n;
    const sub = await subscribeBuyer(h, buyer, { periodSeconds: 30 * DAY, price: USD(1), includedValue: included, overage: "refuse" });
    const { key } = await h.createKey(buyer);

    const before = await balanceOf(h, key);
    expect(before.subscription).to.include({ plan_id: sub.planId.toString(), state: "active", overage: "refuse", included: included.toString(), used_on_chain: "0", remaining: included.toString() });
    expect(before.subscription).to.include({ period_start: Number(sub.periodStart), period_end: Number(sub.periodEnd), renews_at: Number(sub.periodEnd), cancelled: false, ends_at: null });
    expect(before.subscription.rollover).to.match(/does not roll over/);
    expect(before.subscription.models).to.deep.equal(["small-model"]);
    // The covered model can spend the included value and nothing else; the rest holds the renewal's price back.
    expect(spendableOf(before, "small-model")).to.equal(included);
    expect(spendableOf(before, "large-model")).to.equal(USD(9) - USD(1));
    expect(before.subscription.held_for_renewal).to.equal(USD(1).toString());

    const { served, refusal } = await callUntilRefused(key);
    expect(served).to.be.at.least(2);
    expect(refusal, "a call beyond the included value is refused").to.not.equal(undefined);
    expect(refusal.status).to.equal(402);
    expect(refusal.code).to.equal("subscription_usage_exhausted");
    expect(refusal.message).to.include(`subscription plan ${sub.planId}`).and.to.include("refuses overage").and.to.include("renews at").and.to.include("does not roll over");
    const covered = costs(buyer);
    expect(refusal.error.subscription).to.include({ included: included.toString(), unsettled_covered_usage: covered.toString(), remaining: (included - covered).toString(), requested: reservation.toString() });
    expect(BigInt(refusal.error.subscription.remaining) < reservation).to.equal(true);
    const retryAfter = Number(typeof refusal.headers.get === "function" ? refusal.headers.get("retry-after") : refusal.headers["retry-after"]);
    // Until the period renews, on the chain's clock (which the gateway follows).
    expect(retryAfter).to.be.within(1, Number(sub.periodEnd - sub.periodStart));
    // Refused before going upstream: no record, no reservation left, nothing charged on-chain.
    expect(h.gateway.ctx.store.recordsOf(getAddress(buyer.address), { limit: 100 })).to.have.length(served);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
    expect(await vaultBalance(buyer)).to.equal(USD(9));

    // A model the plan does not cover is billed from the balance, as without a subscription.
    await call(key, "large-model");
    const after = await balanceOf(h, key);
    expect(after.subscription).to.include({ unsettled_covered_usage: covered.toString(), remaining: (included - covered).toString() });
    const largeCost = costs(buyer, Number(h.market.largeModel));
    expect(BigInt(after.unsettled_usage)).to.equal(covered + largeCost);
    expect(spendableOf(after, "large-model")).to.equal(USD(8) - largeCost);

    const { drawn, shortfall } = await settle(buyer);
    expect(drawn.reduce((sum, d) => sum + d.drawn, 0n)).to.equal(covered);
    expect(drawn.every((d) => d.refused === 0n)).to.equal(true);
    expect(shortfall).to.equal(0n);
    expect(await vaultBalance(buyer)).to.equal(USD(9) - largeCost);
    const settled = await balanceOf(h, key);
    expect(settled.subscription).to.include({ used_on_chain: covered.toString(), unsettled_covered_usage: "0", remaining: (included - covered).toString() });
  });

  it("BILL_BALANCE: covered calls spend the included value, then the balance less the next renewal's price; settlement charges only the overage", async function () {
    const buyer = h.market.buyers[1];
    const price = USD(1);
    await h.deposit(buyer, price * 2n + reservation * 3n);
    const included = reservation;
    await subscribeBuyer(h, buyer, { periodSeconds: 30 * DAY, price, includedValue: included, overage: "billBalance" });
    const { key } = await h.createKey(buyer);

    const before = await balanceOf(h, key);
    expect(before.subscription).to.include({ overage: "bill_balance", held_for_renewal: price.toString() });
    expect(spendableOf(before, "small-model")).to.equal(included + reservation * 3n);
    expect(spendableOf(before, "large-model")).to.equal(reservation * 3n);

    const { served, refusal } = await callUntilRefused(key);
    expect(served).to.be.at.least(4);
    expect(refusal.status).to.equal(402);
    expect(refusal.code).to.equal("insufficient_funds");
    expect(refusal.message).to.include("included usage left").and.to.include("held for the subscription's renewal");

    const total = costs(buyer);
    expect(total > included, "the calls went past the included value").to.equal(true);
    const { drawn, shortfall } = await settle(buyer);
    expect(drawn.reduce((sum, d) => sum + d.drawn, 0n)).to.equal(included);
    expect(shortfall).to.equal(0n);
    const balance = await vaultBalance(buyer);
    expect(balance).to.equal(price + reservation * 3n - (total - included));
    // What the renewal needs is still there.
    expect(balance >= price).to.equal(true);
  });

  it("a period that ended without a renewal on-chain bills calls as without a subscription, until the renewal makes them covered", async function () {
    const buyer = h.market.buyers[2];
    await h.deposit(buyer, USD(10));
    const included = reservation * 10n;
    const sub = await subscribeBuyer(h, buyer, { periodSeconds: DAY, price: USD(1), includedValue: included, overage: "refuse" });
    const { key } = await h.createKey(buyer);
    await time.increaseTo(sub.periodEnd + 60n);
    await h.gateway.ctx.state.refresh(); // the gateway's clock follows the chain's jump

    const due = await balanceOf(h, key);
    expect(due.subscription).to.include({ state: "renewal_due", period_index: 0, renews_at: Number(sub.periodEnd) });
    // Not paid: the small model spends the balance like any model, less the two periods' prices the renewal may take.
    expect(due.subscription.held_for_renewal).to.equal(USD(2).toString());
    expect(spendableOf(due, "small-model")).to.equal(USD(9) - USD(2));
    expect(spendableOf(due, "large-model")).to.equal(USD(9) - USD(2));

    await call(key);
    const cost = costs(buyer);
    const served = await balanceOf(h, key);
    expect(served.unsettled_usage).to.equal(cost.toString());
    expect(served.subscription.unsettled_covered_usage).to.equal("0");
    expect(spendableOf(served, "small-model")).to.equal(USD(7) - cost);

    // A keeper renews: the call's period is paid now, so its record will draw that period's included value.
    const renewed = await renewSubscription(h.market.clientOf(h.market.others[0].address as Address), { buyer: getAddress(buyer.address), providerId: 1 });
    expect(renewed.periodsPaid).to.equal(1);
    const after = await balanceOf(h, key);
    expect(after.subscription).to.include({ state: "active", period_index: 1, unsettled_covered_usage: cost.toString(), remaining: (included - cost).toString() });
    expect(spendableOf(after, "small-model")).to.equal(included - cost);
    expect(spendableOf(after, "large-model")).to.equal(USD(8) - USD(1));

    const { drawn, shortfall } = await settle(buyer);
    expect(drawn.map((d) => [d.periodIndex, d.drawn])).to.deep.equal([[1n, cost]]);
    expect(shortfall).to.equal(0n);
    expect(await vaultBalance(buyer)).to.equal(USD(8));
  });

  it("a cancelled subscription shows when it ends, holds nothing back for a renewal, and its 402 says it ends rather than renews", async function () {
    const buyer = h.market.buyers[4];
    await h.deposit(buyer, USD(5));
    const sub = await subscribeBuyer(h, buyer, { periodSeconds: 30 * DAY, price: USD(1), includedValue: reservation - 1n, overage: "refuse" });
    const { key } = await h.createKey(buyer);
    const { endsAt } = await cancelSubscription(h.market.clientOf(buyer.address as Address), { providerId: 1 });
    expect(endsAt).to.equal(sub.periodEnd);

    const balance = await balanceOf(h, key);
    expect(balance.subscription).to.include({ state: "cancelled", cancelled: true, renews_at: null, ends_at: Number(sub.periodEnd), held_for_renewal: "0" });
    expect(spendableOf(balance, "large-model")).to.equal(USD(4));
    expect(spendableOf(balance, "small-model")).to.equal(reservation - 1n);

    const refusal = await call(key).then(
      () => undefined,
      (error) => error,
    );
    expect(refusal?.status).to.equal(402);
    expect(refusal.code).to.equal("subscription_usage_exhausted");
    expect(refusal.message).to.include("is cancelled and ends at");
    expect(refusal.error.subscription).to.include({ state: "cancelled", remaining: (reservation - 1n).toString(), requested: reservation.toString() });
    expect(h.gateway.ctx.store.recordsOf(getAddress(buyer.address), { limit: 10 })).to.have.length(0);
  });

  it("REFUSE: 200 parallel covered calls never draw more than the included value, and settle with no shortfall", async function () {
    const buyer = h.market.buyers[3];
    await h.deposit(buyer, USD(10));
    // Enough included value for exactly 100 reservations, and not one more.
    const included = reservation * 100n + reservation - 1n;
    await subscribeBuyer(h, buyer, { periodSeconds: 30 * DAY, price: USD(1), includedValue: included, overage: "refuse" });
    const { key } = await h.createKey(buyer);
    const client = h.openai(key);

    const outcomes = await Promise.allSettled(Array.from({ length: 200 }, () => client.chat.completions.create({ model: "small-model", messages, max_tokens: MAX_TOKENS })));
    const served = outcomes.filter((outcome) => outcome.status === "fulfilled").length;
    const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
    expect(served).to.be.at.least(100);
    expect(served + refused.length).to.equal(200);
    for (const failure of refused) {
      expect(failure.reason).to.have.property("status", 402);
      expect(failure.reason).to.have.property("code", "subscription_usage_exhausted");
    }
    const total = costs(buyer);
    expect(total <= included, `served ${total} of ${included} included`).to.equal(true);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);

    const { drawn, shortfall } = await settle(buyer);
    const settled = drawn.reduce((sum, d) => sum + d.drawn, 0n);
    expect(settled).to.equal(total);
    expect(settled <= included).to.equal(true);
    expect(drawn.every((d) => d.refused === 0n)).to.equal(true);
    expect(shortfall).to.equal(0n);
    // Nothing beyond the subscription's price was taken from the balance.
    expect(await vaultBalance(buyer)).to.equal(USD(9));
  });

  // Last: it replaces the harness's gateway with a restarted one on the same store.
  it("after a restart, unsettled covered records count against the period's included value again", async function () {
    const buyer = h.market.buyers[5];
    await h.deposit(buyer, USD(5));
    const included = reservation * 3n;
    await subscribeBuyer(h, buyer, { periodSeconds: 30 * DAY, price: USD(1), includedValue: included, overage: "refuse" });
    const { key } = await h.createKey(buyer);
    await call(key);
    await call(key);
    const covered = costs(buyer);
    const before = await balanceOf(h, key);
    expect(before.subscription).to.include({ unsettled_covered_usage: covered.toString(), remaining: (included - covered).toString() });

    await h.gateway.close();
    let restarted: Gateway | undefined;
    try {
      const upstream = createOpenAICompatibleUpstream({ name: "sim", baseUrl: h.sim.url, timeoutMs: 5_000 });
      restarted = await createGateway({ config: h.config, client: h.client, upstreams: { sim: upstream } });
      const url = await restarted.listen(0, "127.0.0.1");
      const response = await fetch(`${url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });
      const after = (await response.json()) as Record<string, any>;
      expect(after.unsettled_usage).to.equal(covered.toString());
      expect(after.subscription).to.include({ unsettled_covered_usage: covered.toString(), remaining: (included - covered).toString() });
      expect(spendableOf(after, "small-model")).to.equal(included - covered);
      // Not counted against the balance as well: the large model sees the balance less the renewal's price only.
      expect(spendableOf(after, "large-model")).to.equal(USD(4) - USD(1));
    } finally {
      await restarted?.close();
    }
  });
});
