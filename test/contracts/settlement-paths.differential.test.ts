/**
 * Differential test of settlement's two paths. `_applyTallies` sends a buyer through the general path
 * (`_drawTally` and `_applyTally`: credits, spending cap) when it names a credit plan or has a spending
 * limit for the provider, and through the fast path (`_drawFromAccount`) otherwise. The same signed batch is
 * settled twice from the same state: once as it is (every buyer on the fast path), and once after some or all
 * of its buyers set a spending limit far above anything the batch costs, which changes nothing a buyer can
 * be charged but sends them down the general path. The batch, its signature and its commitment are
 * identical both times, so everything the settlement did must be too: balances, pending withdrawals and
 * their unlock times, wallets, credits, provider earnings, protocol fees, the vault's tokens, the signer's
 * sequence, and the events.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionReceipt } from "ethers";
import { deployMarketplace, USD } from "../../scripts/lib/marketplace-fixtures";
import { encodeUsageBatch } from "../../server/chain/usage-batch";
import { signBatch } from "../helpers/batches";
import { latestTime, marketState, nextSequence, recordsAt, type Call } from "../helpers/settlement-kit";
import type { Marketplace } from "../../scripts/lib/marketplace-fixtures";

const NUM_RUNS = Number(process.env.DIFFERENTIAL_RUNS ?? 50);
const UINT96_MAX = (1n << 96n) - 1n;
const LONGEST_PERIOD = 366 * 24 * 3600;
const PLAN = 1n;

async function differentialFixture() {
  const m = await deployMarketplace();
  // Credits that no batch here names: neither path may touch them.
  await m.tollgate.connect(m.provider).defineCreditPlan(m.providerId, USD(1), USD("1.2"), [m.smallModel, m.largeModel], 0);
  for (const buyer of m.buyers.slice(0, 4)) await m.tollgate.connect(buyer).buyCredits(PLAN, 3n, buyer.address);
  // Served times must come after the models' listing.
  await time.increase(3600);
  return m;
}

interface BuyerSetup {
  deposit: bigint;
  /** Part of the deposit moved to a pending withdrawal, in per mille, so the draw reaches into it. */
  pendingPerMille: number;
}

const buyerSetup = fc.record({
  // From nothing (all shortfall) to more than any batch here costs.
  deposit: fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: USD(2) }), fc.bigInt({ min: USD(2), max: USD(200) })),
  pendingPerMille: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1000 })),
});

const callSpec = fc.record({
  buyer: fc.nat({ max: 7 }),
  large: fc.boolean(),
  inputTokens: fc.integer({ min: 0, max: 400_000 }),
  cachedPerMille: fc.integer({ min: 0, max: 1000 }),
  outputTokens: fc.integer({ min: 0, max: 200_000 }),
  age: fc.integer({ min: 1, max: 1800 }),
});

/** Every event of a settlement transaction, parsed, with the log's emitter. */
function eventsOf(m: Marketplace, receipt: ContractTransactionReceipt, tollgateAddress: string) {
  return receipt.logs.map((log) => {
    expect(log.address, "only Tollgate emits during a balance-only settlement").to.equal(tollgateAddress);
    const parsed = m.tollgate.interface.parseLog(log)!;
    return { name: parsed.name, args: parsed.args.toArray().map((a) => (typeof a === "bigint" ? a : String(a))) };
  });
}

async function settledState(m: Marketplace, buyers: string[], receipt: ContractTransactionReceipt) {
  const tollgateAddress = await m.tollgate.getAddress();
  return { state: await marketState(m, buyers, [PLAN]), events: eventsOf(m, receipt, tollgateAddress) };
}

describe("settlement paths (differential): the fast path and the general path agree", function () {
  it("random batches settle to identical state and events whichever path each buyer takes", async function () {
    let runs = 0;
    let forcedBuyers = 0;
    let shortfalls = 0;
    let fromPending = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(buyerSetup, { minLength: 8, maxLength: 8 }),
        fc.array(callSpec, { minLength: 1, maxLength: 40 }),
        // Which buyers the second settlement sends down the general path: all of them, or a mix.
        fc.oneof(fc.constant(null), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 })),
        fc.integer({ min: 0, max: 1000 }),
        async (setups, calls, forcedMask, feeBps) => {
          const m = await loadFixture(differentialFixture);
          const { tollgate, buyers, provider, providerId } = m;
          await tollgate.connect(m.owner).setProtocolFee(feeBps);
          for (let i = 0; i < buyers.length; i++) {
            const { deposit, pendingPerMille } = setups[i];
            if (deposit === 0n) continue;
            await tollgate.connect(buyers[i]).deposit(buyers[i].address, deposit);
            const pending = (deposit * BigInt(pendingPerMille)) / 1000n;
            if (pending > 0n) await tollgate.connect(buyers[i]).requestWithdrawal(pending);
          }

          const now = await latestTime();
          const batchCalls: Call[] = calls.map((c) => ({
            buyer: buyers[c.buyer].address,
            modelId: c.large ? m.largeModel : m.smallModel,
            servedAt: now - c.age,
            inputTokens: c.inputTokens,
            cachedInputTokens: Math.floor((c.inputTokens * c.cachedPerMille) / 1000),
            outputTokens: c.outputTokens,
          }));
          const firstSequence = await nextSequence(tollgate, m.gateway.address);
          const batch = encodeUsageBatch(recordsAt(firstSequence, batchCalls), new Map());
          const signature = await signBatch(tollgate, m.gateway, batch);
          const inBatch = [...new Set(batchCalls.map((c) => c.buyer))];
          const everyone = buyers.map((b) => b.address);
          const before = await takeSnapshot();

          // Fast path: no buyer has a plan or a limit.
          const fast = (await (await tollgate.connect(provider).settleBatch(batch, signature)).wait())!;
          const viaFast = await settledState(m, everyone, fast);

          await before.restore();
          const forced = buyers.filter((b, i) => inBatch.includes(b.address) && (forcedMask === null || forcedMask[i]));
          for (const buyer of forced) {
            await tollgate.connect(buyer).setSpendingLimit(providerId, UINT96_MAX, LONGEST_PERIOD);
          }
          const general = (await (await tollgate.connect(provider).settleBatch(batch, signature)).wait())!;
          const viaGeneral = await settledState(m, everyone, general);

          // The limit never binds, so the general path charged each forced buyer exactly what the fast path
          // did; that it counted the charge against the limit shows it was the general path that ran.
          for (const buyer of forced) {
            const i = everyone.indexOf(buyer.address);
            const after = viaFast.state.accounts[i];
            const charged = setups[i].deposit - after.balance - after.pending;
            expect((await tollgate.spendingLimitOf(buyer.address, providerId)).spentInWindow, `${buyer.address}'s spending`).to.equal(
              charged,
            );
          }

          expect(viaGeneral.state, "state after the general path").to.deep.equal(viaFast.state);
          if (forced.length === inBatch.length) {
            expect(viaGeneral.events, "events, in order").to.deep.equal(viaFast.events);
          } else {
            // General-path buyers are settled before fast-path ones, so in a mixed batch their
            // ShortfallRecorded events come first: the same events, in another order.
            const key = (e: (typeof viaFast.events)[number]) => `${e.name}(${e.args.map(String).join(",")})`;
            const sorted = (events: typeof viaFast.events) => [...events].sort((a, b) => (key(a) < key(b) ? -1 : 1));
            expect(sorted(viaGeneral.events), "events").to.deep.equal(sorted(viaFast.events));
            expect(viaGeneral.events.at(-1), "BatchSettled last").to.deep.equal(viaFast.events.at(-1));
          }

          runs++;
          forcedBuyers += forced.length;
          shortfalls += viaFast.events.filter((e) => e.name === "ShortfallRecorded").length;
          fromPending += everyone.filter(
            (_, i) => viaFast.state.accounts[i].pending < (setups[i].deposit * BigInt(setups[i].pendingPerMille)) / 1000n,
          ).length;
        },
      ),
      { numRuns: NUM_RUNS },
    );
    // The runs must have reached what the paths could disagree on.
    expect(forcedBuyers, "buyers sent down the general path").to.be.greaterThan(0);
    expect(shortfalls, "buyers short of funds").to.be.greaterThan(0);
    expect(fromPending, "draws reaching into a pending withdrawal").to.be.greaterThan(0);
    console.log(`      ${runs} runs: ${forcedBuyers} buyer settlements on the general path, ${shortfalls} shortfalls, ${fromPending} draws from pending`);
  });
});
