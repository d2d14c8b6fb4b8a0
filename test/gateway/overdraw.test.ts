/**
 * Concurrent calls never overdraw: 200 parallel calls from a buyer who can pay for 100 reservations
 * produce at most what was covered. The records are then settled on-chain as one signed batch, and the
 * contract finds every charge paid in full: no shortfall, nothing negative.
 */
import { expect } from "chai";
import type { Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { recordCost } from "../../server/chain/pricing";
import { signUsageBatch } from "../../server/chain/sign-batch";
import { encodeUsageBatch } from "../../server/chain/usage-batch";
import { reservedInputTokens } from "../../server/gateway/metering/usage-counts";
import { SMALL_PRICES, USD } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

describe("gateway: concurrent calls never overdraw", function () {
  let h: GatewayHarness;
  before(async () => {
    h = await startGatewayHarness({ simulator: { latencyMs: 20 } });
  });
  after(async () => h?.close());

  it("200 parallel calls from a buyer who can pay for 100 serve at most what was covered, and settle with no shortfall", async function () {
    const buyer = h.market.buyers[3];
    const messages = [{ role: "user" as const, content: "Tell me about toll roads in one line." }];
    const maxTokens = 64;
    const estimate = h.gateway.ctx.tokenizer.countChatPromptSync("o200k_base", messages)!;
    const reservation = recordCost({ inputTokens: reservedInputTokens(estimate), cachedInputTokens: 0, outputTokens: maxTokens }, { ...SMALL_PRICES, cachedInput: SMALL_PRICES.input });
    // Enough for exactly 100 reservations, and not one more.
    const deposit = reservation * 100n + reservation - 1n;
    await (await h.market.token.mint(buyer.address, deposit)).wait();
    await h.deposit(buyer, deposit);
    const { key } = await h.createKey(buyer);
    const client = h.openai(key);

    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, () => client.chat.completions.create({ model: "small-model", messages, max_tokens: maxTokens }).withResponse()),
    );
    const served = outcomes.filter((outcome) => outcome.status === "fulfilled");
    const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
    // The first 100 hold reservations together; a call that finished early frees the unused part of its reservation.
    expect(served.length).to.be.at.least(100);
    expect(served.length + refused.length).to.equal(200);
    for (const failure of refused) {
      expect(failure.reason).to.have.property("status", 402);
      expect(failure.reason).to.have.property("code", "insufficient_funds");
    }

    const records = h.gateway.ctx.store.recordsOf(buyer.address as Address);
    expect(records).to.have.length(served.length);
    const charged = records.reduce((sum, record) => sum + record.cost, 0n);
    expect(charged <= deposit, `charged ${charged} of ${deposit}`).to.equal(true);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);

    // Settle the buyer's records as the oracle will: one batch, signed by the gateway key.
    const all = h.gateway.ctx.store.unsettledRecords(0n, 10_000);
    const batch = encodeUsageBatch(all);
    const signature = await signUsageBatch(privateKeyToAccount(h.signerKey), { chainId: h.market.chainId, address: (await h.market.tollgate.getAddress()) as `0x${string}` }, batch);
    const balanceBefore = (await h.market.tollgate.accountOf(buyer.address)).balance;
    const receipt = await (await h.market.tollgate.connect(h.market.others[0]).settleBatch(batch, signature)).wait();
    const shortfalls = receipt!.logs.filter((log) => h.market.tollgate.interface.parseLog(log)?.name === "ShortfallRecorded");
    expect(shortfalls).to.have.length(0);
    const balanceAfter = (await h.market.tollgate.accountOf(buyer.address)).balance;
    expect(balanceBefore - balanceAfter).to.equal(charged);
    expect(balanceAfter >= 0n).to.equal(true);
  });
});
