/**
 * The oracle renews subscriptions before it settles records served after their paid period ended, so those records
 * draw the new period's included value; a buyer who cannot pay the renewal ends its subscription and is billed per
 * the rule; a renewal that is not due is logged and never blocks anything.
 */
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import pino from "pino";
import { getAddress, type Address } from "viem";
import { tollgateAbi, tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { MarketplaceReader } from "../../server/chain/marketplace-reader";
import { SubscriptionRenewals } from "../../server/oracle/subscription-renewals";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";
import { settleEverything, startOracleHarness } from "../helpers/oracle-harness";
import { subscribeBuyer } from "../helpers/subscriptions";

const DAY = 24 * 3600;

describe("oracle: subscriptions", function () {
  this.timeout(180_000);
  let h: GatewayHarness;

  beforeEach(async () => {
    h = await startGatewayHarness();
  });
  afterEach(async () => h?.close());

  async function chat(key: string, n: number): Promise<void> {
    const client = h.openai(key);
    for (let i = 0; i < n; i++) await client.chat.completions.create({ model: "small-model", messages: [{ role: "user", content: `question ${i}` }], max_tokens: 16 });
  }
  const costSince = (buyer: { address: string }, fromSequence: bigint) =>
    h.gateway.ctx.store
      .recordsOf(getAddress(buyer.address), { limit: 1_000 })
      .filter((record) => record.sequence >= fromSequence)
      .reduce((sum, record) => sum + record.cost, 0n);

  /** Jumps the chain past `until` and lets the gateway's clock follow. */
  async function jumpPast(until: bigint): Promise<void> {
    await time.increaseTo(until + 60n);
    await h.gateway.ctx.state.refresh();
  }

  async function settleAndRead(buyer: { address: string }) {
    const { client, fromBlock } = await settleEverything(h);
    const subscriptions = (await h.market.tollgate.subscriptions()) as Address;
    const args = { buyer: getAddress(buyer.address) };
    const read = { address: subscriptions, abi: tollgateSubscriptionsAbi, fromBlock, args } as const;
    const [drawn, renewed, ended, batches] = await Promise.all([
      client.getContractEvents({ ...read, eventName: "IncludedUsageDrawn" }),
      client.getContractEvents({ ...read, eventName: "SubscriptionRenewed" }),
      client.getContractEvents({ ...read, eventName: "SubscriptionEnded" }),
      client.getContractEvents({ address: h.config.chain.deployment.tollgate, abi: tollgateAbi, eventName: "BatchSettled", fromBlock }),
    ]);
    const sub = await client.readContract({ address: subscriptions, abi: tollgateSubscriptionsAbi, functionName: "subscriptionOf", args: [getAddress(buyer.address), 1] });
    return {
      client,
      subscriptions,
      sub,
      drawn: drawn.map((log) => [log.args.periodIndex!, log.args.drawn!, log.args.refused!] as const),
      renewed,
      ended,
      batchBlocks: batches.map((log) => log.blockNumber),
      shortfall: batches.reduce((sum, log) => sum + log.args.totalShortfall!, 0n),
    };
  }

  it("renews before settling, so the second period's records draw its included value rather than the balance", async function () {
    const buyer = h.market.buyers[0];
    await h.deposit(buyer, USD(10));
    const sub = await subscribeBuyer(h, buyer, { periodSeconds: DAY, price: USD(1), includedValue: USD(1), overage: "billBalance" });
    const { key } = await h.createKey(buyer);
    await chat(key, 3);
    const firstPeriod = costSince(buyer, 0n);
    await jumpPast(sub.periodEnd);
    await chat(key, 2);
    const secondPeriod = costSince(buyer, 3n);
    expect(secondPeriod > 0n).to.equal(true);

    const settled = await settleAndRead(buyer);
    // One renewal, by the oracle, mined before the batch that needed it.
    expect(settled.renewed).to.have.length(1);
    expect(settled.renewed[0].args.periodIndex).to.equal(1n);
    expect(settled.renewed[0].blockNumber < settled.batchBlocks[0]).to.equal(true);
    expect(settled.sub.paidPeriods).to.equal(2);
    // Each period's records drew from that period's own included value; nothing from the balance but the two prices.
    expect(settled.drawn).to.deep.equal([
      [0n, firstPeriod, 0n],
      [1n, secondPeriod, 0n],
    ]);
    expect(await settled.client.readContract({ address: settled.subscriptions, abi: tollgateSubscriptionsAbi, functionName: "includedUsedOf", args: [sub.subscriptionId, 1n] })).to.equal(secondPeriod);
    expect(settled.shortfall).to.equal(0n);
    expect((await h.market.tollgate.accountOf(buyer.address)).balance).to.equal(USD(8));
  });

  it("a buyer who cannot pay the renewal: the subscription ends unpaid, and the new period's records are billed from the balance", async function () {
    const buyer = h.market.buyers[1];
    // After the first period's price, half a price is left: not enough for the renewal.
    await h.deposit(buyer, USD(1) + USD("0.5"));
    const sub = await subscribeBuyer(h, buyer, { periodSeconds: DAY, price: USD(1), includedValue: USD(1), overage: "refuse" });
    const { key } = await h.createKey(buyer);
    await chat(key, 2);
    const firstPeriod = costSince(buyer, 0n);
    await jumpPast(sub.periodEnd);
    await chat(key, 2);
    const secondPeriod = costSince(buyer, 2n);

    const settled = await settleAndRead(buyer);
    expect(settled.renewed).to.have.length(0);
    expect(settled.ended).to.have.length(1);
    expect(settled.ended[0].args).to.include({ reason: 1, due: USD(1), balance: USD("0.5") });
    expect(settled.sub.active).to.equal(false);
    // The paid period still draws its included value; the unpaid one is billed as without a subscription.
    expect(settled.drawn).to.deep.equal([[0n, firstPeriod, 0n]]);
    expect(settled.shortfall).to.equal(0n);
    expect((await h.market.tollgate.accountOf(buyer.address)).balance).to.equal(USD("0.5") - secondPeriod);
  });

  it("a renewal that is not due is logged and skipped, never thrown", async function () {
    const buyer = h.market.buyers[2];
    await h.deposit(buyer, USD(5));
    const sub = await subscribeBuyer(h, buyer, { periodSeconds: DAY, price: USD(1), includedValue: USD(1), overage: "refuse" });
    const { oracle, client, config } = await startOracleHarness(h);
    try {
      const lines: string[] = [];
      const logger = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
      const renewals = new SubscriptionRenewals({ client, reader: new MarketplaceReader(client, h.config.chain.deployment.tollgate), sender: oracle.sender, settings: config, logger });
      // A record dated an hour past paidUntil while the chain's clock is still inside the paid period.
      const outcomes = await renewals.renewDue([{ buyer: getAddress(buyer.address), servedAt: Number(sub.periodEnd) + 3_600 }], 1);
      expect(outcomes).to.have.length(1);
      expect(outcomes[0].periodsPaid).to.equal(0);
      expect(outcomes[0].skipped).to.match(/^SubscriptionsRenewalNotDue\(/);
      expect(lines.join("")).to.include("subscription renewal would revert; settling without it");
      // A buyer without a subscription, or whose records are inside the paid period, needs nothing.
      expect(await renewals.renewDue([{ buyer: getAddress(h.market.buyers[3].address), servedAt: Number(sub.periodStart) }], 1)).to.deep.equal([]);
      expect(await renewals.renewDue([{ buyer: getAddress(buyer.address), servedAt: Number(sub.periodStart) + 10 }], 1)).to.deep.equal([]);
      expect((await h.market.tollgate.accountOf(buyer.address)).balance).to.equal(USD(4));
    } finally {
      await oracle.close();
    }
  });
});
