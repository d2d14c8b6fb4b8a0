/**
 * The chain audit's replay of settlement against the contract itself, on random marketplaces: buyers with
 * random deposits, pending withdrawals, spending caps and credits (bought from the wallet or the balance,
 * some resold), subscriptions (a BILL_BALANCE and a REFUSE plan with short periods, some cancelled, renewed between
 * batches when due, some renewals unpaid), random batches of random records naming plans or not, a fee change between them. Whatever
 * the contract did, the audit rebuilt from chain data alone must find nothing: every draw, shortfall, burn,
 * credit change, included draw, subscription, spending window, earning and fee it replays equals what the chain recorded.
 */
import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { takeSnapshot, time, type SnapshotRestorer } from "@nomicfoundation/hardhat-network-helpers";
import { getAddress, keccak256, toHex, type Address } from "viem";
import { auditChain } from "../../client/audit/chain-audit";
import { loadChainHistory } from "../../client/audit/load-chain-history";
import { rpcStateReader } from "../../client/audit/rpc-state-reader";
import { deployMarketplace, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { signedUsageBatch } from "../../server/chain/sign-batch";
import type { UsageRecord } from "../../server/chain/usage-batch";
import type { TollgateSubscriptions } from "../../typechain-types";

const NUM_RUNS = Number(process.env.AUDIT_PROPERTY_RUNS ?? 20);
const BUYERS = 4;
const PLAN = 1n;

const buyerArbitrary = fc.record({
  deposit: fc.bigInt({ min: 0n, max: 30_000n }),
  pendingPerMille: fc.integer({ min: 0, max: 1_000 }),
  cap: fc.option(fc.record({ limit: fc.bigInt({ min: 0n, max: 20_000n }), period: fc.integer({ min: 60, max: 7_200 }) }), { nil: undefined }),
  credits: fc.bigInt({ min: 0n, max: 4n }),
  creditsFromBalance: fc.boolean(),
  resell: fc.bigInt({ min: 0n, max: 2n }),
  /** 0: none; else the subscription plan (1: BILL_BALANCE, 2: REFUSE; both on both models). */
  subscription: fc.integer({ min: 0, max: 2 }),
  cancel: fc.boolean(),
});
/** Subscription periods short enough that batches' waits cross them, and included values a few records use up. */
const SUBSCRIPTION_PERIOD = 1_500;
const SUBSCRIPTION_PRICE = 2_000n;

const recordArbitrary = fc.record({
  buyer: fc.integer({ min: 0, max: BUYERS - 1 }),
  large: fc.boolean(),
  inputTokens: fc.integer({ min: 0, max: 5_000 }),
  cachedPerMille: fc.integer({ min: 0, max: 1_000 }),
  outputTokens: fc.integer({ min: 0, max: 2_000 }),
  age: fc.integer({ min: 0, max: 1_800 }),
});

const batchArbitrary = fc.record({
  records: fc.array(recordArbitrary, { minLength: 1, maxLength: 12 }),
  planFor: fc.array(fc.boolean(), { minLength: BUYERS, maxLength: BUYERS }),
  waitSeconds: fc.integer({ min: 1, max: 3_000 }),
});

describe("auditChain against the contract on random marketplaces (property)", function () {
  let market: Marketplace;
  let tollgate: Address;
  let deployBlock: bigint;
  let fresh: SnapshotRestorer;
  let subscriptions: TollgateSubscriptions;

  before(async function () {
    market = await deployMarketplace();
    tollgate = getAddress(await market.tollgate.getAddress());
    deployBlock = BigInt((await market.tollgate.deploymentTransaction()!.wait())!.blockNumber);
    // A plan covering the small model only: a batch mixes covered and uncovered records.
    await market.tollgate.connect(market.provider).defineCreditPlan(market.providerId, 9_000n, 10_000n, [market.smallModel], 0);
    subscriptions = (await ethers.getContractAt("TollgateSubscriptions", await market.tollgate.subscriptions())) as unknown as TollgateSubscriptions;
    await subscriptions.connect(market.provider).defineSubscriptionPlan(market.providerId, SUBSCRIPTION_PERIOD, SUBSCRIPTION_PRICE, 3_000n, [market.smallModel, market.largeModel], 0);
    await subscriptions.connect(market.provider).defineSubscriptionPlan(market.providerId, SUBSCRIPTION_PERIOD, SUBSCRIPTION_PRICE, 1_000n, [market.smallModel, market.largeModel], 1);
    await time.increase(3_600);
    fresh = await takeSnapshot();
  });

  it("finds nothing wrong with whatever settlement did", async function () {
    // Across the runs, some usage must have drawn included value and some been refused, or the property says little.
    let included = 0n;
    let refused = 0n;
    await fc.assert(
      fc.asyncProperty(fc.array(buyerArbitrary, { minLength: BUYERS, maxLength: BUYERS }), fc.array(batchArbitrary, { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 1_000 }), async (buyers, batches, newFee) => {
        await fresh.restore();
        const signers = market.buyers.slice(0, BUYERS);
        for (const [i, setup] of buyers.entries()) {
          const buyer = signers[i];
          if (setup.deposit > 0n) await market.tollgate.connect(buyer).deposit(buyer.address, setup.deposit);
          if (setup.credits > 0n) {
            const price = setup.credits * 9_000n;
            if (setup.creditsFromBalance && setup.deposit >= price) await market.tollgate.connect(buyer).buyCreditsWithBalance(PLAN, setup.credits, buyer.address);
            else await market.tollgate.connect(buyer).buyCredits(PLAN, setup.credits, buyer.address);
            const resell = setup.resell < setup.credits ? setup.resell : setup.credits;
            const credits = await ethers.getContractAt("TollgateCredits", await market.tollgate.credits());
            if (resell > 0n) await credits.connect(buyer).safeTransferFrom(buyer.address, signers[(i + 1) % BUYERS].address, PLAN, resell, "0x");
          }
          if (setup.subscription !== 0 && (await market.tollgate.accountOf(buyer.address)).balance >= SUBSCRIPTION_PRICE) {
            await subscriptions.connect(buyer).subscribe(setup.subscription);
            if (setup.cancel) await subscriptions.connect(buyer).cancelSubscription(market.providerId);
          }
          const { balance } = await market.tollgate.accountOf(buyer.address);
          const pending = (balance * BigInt(setup.pendingPerMille)) / 1_000n;
          if (pending > 0n) await market.tollgate.connect(buyer).requestWithdrawal(pending);
          if (setup.cap) await market.tollgate.connect(buyer).setSpendingLimit(market.providerId, setup.cap.limit, setup.cap.period);
        }
        // Most records are served within the subscriptions' first period, some before they began.
        await time.increase(1_000);
        let sequence = (await market.tollgate.signerOf(market.gateway.address)).nextSequence;
        for (const [k, batch] of batches.entries()) {
          if (k === 1) await market.tollgate.connect(market.owner).setProtocolFee(newFee);
          const now = Number((await ethers.provider.getBlock("latest"))!.timestamp);
          const records: UsageRecord[] = batch.records.map((record, i) => ({
            sequence: sequence + BigInt(i),
            buyer: getAddress(signers[record.buyer].address),
            modelId: Number(record.large ? market.largeModel : market.smallModel),
            priceEpoch: 0,
            inputTokens: record.inputTokens,
            cachedInputTokens: Math.floor((record.inputTokens * record.cachedPerMille) / 1_000),
            outputTokens: record.outputTokens,
            servedAt: now - record.age,
            receiptHash: keccak256(toHex(`${sequence + BigInt(i)}`)),
          }));
          const plans = new Map(signers.flatMap((signer, j) => (batch.planFor[j] ? [[getAddress(signer.address), Number(PLAN)] as const] : [])));
          const { batch: packed, signature } = await signedUsageBatch(market.gateway, { chainId: market.chainId, address: tollgate }, records, plans);
          await (await market.tollgate.connect(market.others[0]).settleBatch(packed, signature)).wait();
          sequence += BigInt(records.length);
          await time.increase(batch.waitSeconds);
          // A keeper renews what is due (or ends it: cancelled, or a balance short of the price).
          for (const signer of signers) {
            const sub = await subscriptions.subscriptionOf(signer.address, market.providerId);
            const paidUntil = await subscriptions.paidUntil(signer.address, market.providerId);
            const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
            if (sub.active && now + 1n >= paidUntil) await subscriptions.connect(market.others[1]).renew(signer.address, market.providerId);
          }
        }
        const client = market.clientOf(getAddress(market.owner.address)).public;
        const history = await loadChainHistory(client, { tollgate, deployBlock });
        const result = await auditChain(history, rpcStateReader(client, history));
        expect(result.findings.map((finding) => `${finding.code}: ${finding.message}`)).to.deep.equal([]);
        expect(result.batches).to.have.length(batches.length);
        for (const draw of result.batches.flatMap((audited) => audited.draws)) {
          included += draw.coveredBySubscription;
          refused += draw.refusedBySubscription;
        }
      }),
      { numRuns: NUM_RUNS },
    );
    expect(included > 0n && refused > 0n, `included ${included}, refused ${refused}`).to.equal(true);
  });
});
