/**
 * Settlement of gateway-signed usage batches (`UsageSettlement.settleBatch`): who pays what, from where,
 * with which fee; every named error with its arguments; and the audit trail an outsider can rebuild.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  hashStruct,
  keccak256,
  parseSignature,
  recoverTypedDataAddress,
  serializeSignature,
  toHex,
  numberToHex,
  type Address,
  type Hex,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { creditsOf, deployMarketplace, FEE_BPS, LARGE_PRICES, PRICE_NOTICE, SMALL_PRICES, USD, WITHDRAWAL_DELAY } from "../../scripts/lib/marketplace-fixtures";
import { signBatch } from "../helpers/batches";
import {
  batchSettledOf,
  buyerTable,
  expectConservation,
  expectedCost,
  expectNothingChanged,
  latestTime,
  marketState,
  nextSequence,
  packBuyers,
  packModels,
  packRecords,
  pricesOf,
  recordsAt,
  resultOf,
  settle,
  SOME_ROOT,
  withReceipts,
  type Call,
} from "../helpers/settlement-kit";
import { tollgateDomain, usageBatchTypes } from "../../server/chain/eip712";
import {
  commitmentPrefix,
  decodeUsageBatch,
  encodeUsageBatch,
  hashReceipt,
  usageBatchHeader,
  type UsageBatch,
  type UsageRecord,
} from "../../server/chain/usage-batch";
import { signUsageBatch, signUsageReceipt } from "../../server/chain/sign-batch";
import { merkleProof } from "../../server/chain/merkle";
import { protocolFeeOn, recordCost } from "../../server/chain/pricing";
import type { Tollgate } from "../../typechain-types";

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const MAX_UINT32 = 2 ** 32 - 1;

/** The marketplace an hour after listing, so calls served "just now" are after the models were listed. */
async function ready() {
  const m = await deployMarketplace();
  await time.increase(3_600);
  return m;
}

/** As `ready`, with buyers 0..3 holding 100 USD each in the vault; buyers 4..7 hold nothing there. */
async function funded() {
  const m = await ready();
  for (const buyer of m.buyers.slice(0, 4)) await m.tollgate.connect(buyer).deposit(buyer.address, USD(100));
  return m;
}

type M = Awaited<ReturnType<typeof ready>>;

const commitmentOf = (batch: UsageBatch): Hex => hashStruct({ data: batch, primaryType: "UsageBatch", types: usageBatchTypes });
const fee = (amount: bigint) => protocolFeeOn(amount, FEE_BPS);

async function deploymentOf(tollgate: Tollgate) {
  const { chainId } = await ethers.provider.getNetwork();
  return { chainId, address: (await tollgate.getAddress()) as Address };
}

async function smallCalls(m: M, buyer: string, count: number, extra: Partial<Call> = {}): Promise<Call[]> {
  const now = await latestTime();
  return Array.from({ length: count }, (_, i) => ({ buyer, modelId: m.smallModel, servedAt: now - 100 + i, ...extra }));
}

/** A well-formed, gateway-signed batch of one small-model record for buyer 0, with sections overridable. */
async function rawBatch(m: M, overrides: Partial<UsageBatch> = {}, signer = m.gateway) {
  const now = await latestTime();
  const batch: UsageBatch = {
    firstSequence: await nextSequence(m.tollgate, m.gateway.address),
    baseTime: now - 10,
    buyers: packBuyers([{ buyer: m.buyers[0].address }]),
    models: packModels([{ modelId: m.smallModel }]),
    records: packRecords([{ buyerIndex: 0, modelIndex: 0 }]),
    contentRoot: SOME_ROOT,
    ...overrides,
  };
  return { batch, signature: await signBatch(m.tollgate, signer, batch) };
}

async function registerSecondProvider(m: M) {
  const owner = m.others[0];
  await m.tollgate.connect(owner).registerProvider(owner.address, "ipfs://other");
  const otherProviderId = 2n;
  await m.tollgate.connect(owner).listModel(otherProviderId, "other-model", SMALL_PRICES);
  const otherModel = 3n;
  return { owner, otherProviderId, otherModel };
}

describe("UsageSettlement", function () {
  describe("charging balances", function () {
    it("charges each record at its model's price to the buyer's balance and splits it between provider and protocol", async function () {
      const m = await loadFixture(funded);
      const buyer = m.buyers[0];
      const now = await latestTime();
      const records = recordsAt(0n, [
        { buyer: buyer.address, modelId: m.smallModel, servedAt: now - 30 }, // 1000 in, 500 out: 150 + 300 = 450
        { buyer: buyer.address, modelId: m.largeModel, servedAt: now - 20 }, // 2500 + 5000 = 7500
        // 1000 fresh + 1000 cached input, no output: 150 + 75 = 225
        { buyer: buyer.address, modelId: m.smallModel, servedAt: now - 10, inputTokens: 2_000, cachedInputTokens: 1_000, outputTokens: 0 },
      ]);
      const cost = 450n + 7_500n + 225n;
      expect(await expectedCost(m.tollgate, records)).to.equal(cost);
      const protocolFee = 205n; // ceil(8175 * 2.5%) = ceil(204.375)
      const before = await marketState(m, [buyer.address]);

      const { batch, settled, receipt } = await settle(m, records);

      const after = await marketState(m, [buyer.address]);
      expect(after.accounts[0].balance).to.equal(before.accounts[0].balance - cost);
      expect(after.accounts[0].pending).to.equal(0n);
      expect(after.earnings - before.earnings).to.equal(cost - protocolFee);
      expect(after.fees - before.fees).to.equal(protocolFee);
      expect(after.vaultTokens).to.equal(before.vaultTokens);
      expect(after.nextSequence).to.equal(3n);
      expect(settled).to.deep.equal({
        signer: m.gateway.address,
        providerId: m.providerId,
        firstSequence: 0n,
        recordCount: 3n,
        commitment: commitmentOf(batch),
        contentRoot: batch.contentRoot,
        totalCost: cost,
        providerEarnings: cost - protocolFee,
        protocolFee,
        totalShortfall: 0n,
        buyerResults: ethers.concat([ethers.toBeHex(cost, 16), ethers.toBeHex(0n, 16)]),
      });
      const shortfalls = receipt.logs.filter((log) => m.tollgate.interface.parseLog(log)?.name === "ShortfallRecorded");
      expect(shortfalls).to.have.length(0);
      const stored = await m.tollgate.batchCommitmentOf(m.gateway.address, 0n);
      expect(stored.commitmentPrefix).to.equal(commitmentPrefix(commitmentOf(batch)));
      expect(stored.settledAt).to.equal(await latestTime());
      await expectConservation(m);
    });

    it("settles consecutive batches, each starting at the sequence the previous one ended at", async function () {
      const m = await loadFixture(funded);
      const first = recordsAt(0n, await smallCalls(m, m.buyers[0].address, 3));
      const { batch: batch1 } = await settle(m, first);
      expect(await nextSequence(m.tollgate, m.gateway.address)).to.equal(3n);
      const second = recordsAt(3n, await smallCalls(m, m.buyers[1].address, 2));
      const { batch: batch2, settled } = await settle(m, second);
      expect(settled.firstSequence).to.equal(3n);
      expect(settled.recordCount).to.equal(2n);
      expect(await nextSequence(m.tollgate, m.gateway.address)).to.equal(5n);
      expect((await m.tollgate.batchCommitmentOf(m.gateway.address, 0n)).commitmentPrefix).to.equal(commitmentPrefix(commitmentOf(batch1)));
      expect((await m.tollgate.batchCommitmentOf(m.gateway.address, 3n)).commitmentPrefix).to.equal(commitmentPrefix(commitmentOf(batch2)));
      // Only batch starts hold commitments.
      expect([...(await m.tollgate.batchCommitmentOf(m.gateway.address, 1n))]).to.deep.equal([commitmentPrefix(ethers.ZeroHash as Hex), 0n]);
      expect([...(await m.tollgate.batchCommitmentOf(m.gateway.address, 5n))]).to.deep.equal([commitmentPrefix(ethers.ZeroHash as Hex), 0n]);
    });

    it("lets any account submit a validly signed batch, with the same accounting as the provider submitting it", async function () {
      const m = await loadFixture(funded);
      const stranger = m.others[3];
      const buyer = m.buyers[1];
      const records = recordsAt(0n, await smallCalls(m, buyer.address, 4));
      const before = await marketState(m, [buyer.address, stranger.address]);
      const { settled } = await settle(m, records, { from: stranger });
      const after = await marketState(m, [buyer.address, stranger.address]);
      expect(settled.signer).to.equal(m.gateway.address);
      expect(settled.totalCost).to.equal(1_800n);
      expect(after.accounts[0].balance).to.equal(before.accounts[0].balance - 1_800n);
      expect(after.earnings - before.earnings).to.equal(1_800n - fee(1_800n));
      expect(after.fees - before.fees).to.equal(fee(1_800n));
      // The submitter gains nothing and pays nothing in tokens.
      expect(after.accounts[1]).to.deep.equal(before.accounts[1]);
      expect(after.wallets[1]).to.equal(before.wallets[1]);
    });

    it("charges several buyers in one batch, each for its own records only", async function () {
      const m = await loadFixture(funded);
      const [a, b, c] = m.buyers;
      const now = await latestTime();
      const records = recordsAt(0n, [
        { buyer: c.address, modelId: m.largeModel, servedAt: now - 50 },
        { buyer: a.address, modelId: m.smallModel, servedAt: now - 40 },
        { buyer: b.address, modelId: m.smallModel, servedAt: now - 30, outputTokens: 0 },
        { buyer: a.address, modelId: m.largeModel, servedAt: now - 20, inputTokens: 0, outputTokens: 1 },
        { buyer: c.address, modelId: m.smallModel, servedAt: now - 10 },
      ]);
      const costOf = { [a.address]: 450n + 10n, [b.address]: 150n, [c.address]: 7_500n + 450n };
      const addresses = [a.address, b.address, c.address];
      const before = await marketState(m, addresses);
      const { batch, settled } = await settle(m, records);
      const after = await marketState(m, addresses);
      let fees = 0n;
      for (const [i, who] of addresses.entries()) {
        expect(before.accounts[i].balance - after.accounts[i].balance, who).to.equal(costOf[who]);
        expect(resultOf(batch, settled, who)).to.deep.equal({ fromBalance: costOf[who], shortfall: 0n });
        fees += fee(costOf[who]);
      }
      // The fee is rounded up per buyer, not once on the batch total.
      expect(settled.protocolFee).to.equal(fees);
      expect(after.fees - before.fees).to.equal(fees);
      expect(settled.totalCost).to.equal(460n + 150n + 7_950n);
      expect(buyerTable(batch)).to.deep.equal([...addresses].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1)));
    });
  });

  describe("credits", function () {
    async function planFor(m: M, value: bigint, modelIds: bigint[], expiresAt = 0) {
      await m.tollgate.connect(m.provider).defineCreditPlan(m.providerId, value, value, modelIds, expiresAt);
      return await m.tollgate.creditPlanCount();
    }

    it("burns credits first: usage worth exactly whole credits leaves balance, earnings and fees untouched", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[4];
      const planId = await planFor(m, 450n, [m.smallModel]);
      await m.tollgate.connect(buyer).buyCredits(planId, 5n, buyer.address);
      await m.tollgate.connect(buyer).deposit(buyer.address, USD(1));
      const records = recordsAt(0n, await smallCalls(m, buyer.address, 4)); // 4 x 450
      const before = await marketState(m, [buyer.address], [planId]);

      const { batch, signature, settled } = await settle(m, records, {
        plans: new Map([[buyer.address as Address, Number(planId)]]),
      });

      const after = await marketState(m, [buyer.address], [planId]);
      expect(after.credits[0]).to.equal(before.credits[0] - 4n);
      expect(after.accounts).to.deep.equal(before.accounts);
      expect(after.earnings).to.equal(before.earnings);
      expect(after.fees).to.equal(before.fees);
      expect(settled.totalCost).to.equal(1_800n);
      expect(settled.providerEarnings).to.equal(0n);
      expect(settled.protocolFee).to.equal(0n);
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 0n, shortfall: 0n });
      expect(signature).to.match(/^0x[0-9a-f]{130}$/);
    });

    it("emits an ERC-1155 burn of the credits used", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[4];
      const planId = await planFor(m, 450n, [m.smallModel]);
      await m.tollgate.connect(buyer).buyCredits(planId, 5n, buyer.address);
      const batch = encodeUsageBatch(recordsAt(0n, await smallCalls(m, buyer.address, 3)), new Map([[buyer.address as Address, Number(planId)]]));
      const signature = await signBatch(m.tollgate, m.gateway, batch);
      await expect(m.tollgate.connect(m.provider).settleBatch(batch, signature))
        .to.emit(await creditsOf(m.tollgate), "TransferSingle")
        .withArgs(await m.tollgate.getAddress(), buyer.address, ethers.ZeroAddress, planId, 3n); // Tollgate is the burning operator
    });

    it("covers the plan's models with whole credits, keeps the last one's unused value as change, and charges other models to balance", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[5];
      const planId = await planFor(m, 1_000n, [m.smallModel]);
      await m.tollgate.connect(buyer).buyCredits(planId, 5n, buyer.address);
      await m.tollgate.connect(buyer).deposit(buyer.address, USD(1));
      const now = await latestTime();
      const records = recordsAt(0n, [
        ...(await smallCalls(m, buyer.address, 4)), // 1,800 eligible
        { buyer: buyer.address, modelId: m.largeModel, servedAt: now - 5 }, // 7,500 not in the plan
      ]);
      const before = await marketState(m, [buyer.address], [planId]);
      const { batch, settled } = await settle(m, records, { plans: new Map([[buyer.address as Address, Number(planId)]]) });
      const after = await marketState(m, [buyer.address], [planId]);

      // Two credits (2,000) cover the 1,800; 200 stays as change; the 7,500 comes from balance.
      expect(after.credits[0]).to.equal(before.credits[0] - 2n);
      expect(await m.tollgate.creditChangeOf(buyer.address, planId)).to.equal(200n);
      expect(after.accounts[0].balance).to.equal(before.accounts[0].balance - 7_500n);
      expect(after.fees - before.fees).to.equal(188n); // ceil(7,500 * 2.5%) = ceil(187.5)
      expect(after.earnings - before.earnings).to.equal(7_500n - 188n);
      expect(settled.totalCost).to.equal(9_300n);
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 7_500n, shortfall: 0n });
      await expectConservation(m);
    });

    it("pays from change before burning another credit, so rounding up never loses a buyer value", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[5];
      const planId = await planFor(m, 1_000n, [m.smallModel]);
      const plans = new Map([[buyer.address as Address, Number(planId)]]);
      await m.tollgate.connect(buyer).buyCredits(planId, 3n, buyer.address);
      await m.tollgate.connect(buyer).deposit(buyer.address, 500n);
      await settle(m, recordsAt(0n, await smallCalls(m, buyer.address, 4)), { plans }); // 1,800: 2 credits, 200 change
      expect(await (await creditsOf(m.tollgate)).balanceOf(buyer.address, planId)).to.equal(1n);
      expect(await m.tollgate.creditChangeOf(buyer.address, planId)).to.equal(200n);
      // 450: 200 from change, 250 from the last credit, 750 change left; the balance is untouched.
      const { batch, settled } = await settle(m, recordsAt(4n, await smallCalls(m, buyer.address, 1)), { plans });
      expect(await (await creditsOf(m.tollgate)).balanceOf(buyer.address, planId)).to.equal(0n);
      expect(await m.tollgate.creditChangeOf(buyer.address, planId)).to.equal(750n);
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 0n, shortfall: 0n });
      expect((await m.tollgate.accountOf(buyer.address)).balance).to.equal(500n);
      await expectConservation(m);
    });

    it("a stolen key sending many 1-unit batches burns one credit, not one per batch, and the cap counts usage", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[5];
      const planId = await planFor(m, 1_000_000n, [m.smallModel]);
      const plans = new Map([[buyer.address as Address, Number(planId)]]);
      await m.tollgate.connect(buyer).buyCredits(planId, 5n, buyer.address);
      await m.tollgate.connect(buyer).setSpendingLimit(m.providerId, 300_000n, 86_400);
      const now = await latestTime();
      for (let i = 0; i < 5; i++) {
        // 1 input token on the small model costs ceil(0.15) = 1 base unit.
        await settle(m, recordsAt(BigInt(i), [{ buyer: buyer.address, modelId: m.smallModel, servedAt: now - 5, inputTokens: 1, outputTokens: 0 }]), { plans });
      }
      expect(await (await creditsOf(m.tollgate)).balanceOf(buyer.address, planId)).to.equal(4n);
      expect(await m.tollgate.creditChangeOf(buyer.address, planId)).to.equal(1_000_000n - 5n);
      expect((await m.tollgate.spendingLimitOf(buyer.address, m.providerId)).spentInWindow).to.equal(5n);
    });

    it("when credits run out, the balance pays next and what it cannot is shortfall", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[5];
      const planId = await planFor(m, 1_000n, [m.smallModel]);
      await m.tollgate.connect(buyer).buyCredits(planId, 1n, buyer.address);
      await m.tollgate.connect(buyer).deposit(buyer.address, 1_000n);
      const records = recordsAt(0n, await smallCalls(m, buyer.address, 10)); // 4,500
      const { batch, settled } = await settle(m, records, { plans: new Map([[buyer.address as Address, Number(planId)]]) });
      expect(await (await creditsOf(m.tollgate)).balanceOf(buyer.address, planId)).to.equal(0n);
      expect((await m.tollgate.accountOf(buyer.address)).balance).to.equal(0n);
      // 4,500 - 1,000 in credits = 3,500; 1,000 from balance; 2,500 short.
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 1_000n, shortfall: 2_500n });
      expect(settled.totalShortfall).to.equal(2_500n);
    });

    it("charges usage served at or after the plan's expiry, and models outside the plan, to the balance", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[6];
      const expiresAt = (await latestTime()) + 1_000;
      const planId = await planFor(m, 450n, [m.smallModel], expiresAt);
      await m.tollgate.connect(buyer).buyCredits(planId, 10n, buyer.address);
      await m.tollgate.connect(buyer).deposit(buyer.address, USD(1));
      await time.increase(2_000);
      const records = recordsAt(0n, [
        { buyer: buyer.address, modelId: m.smallModel, servedAt: expiresAt - 100 }, // covered: 1 credit
        { buyer: buyer.address, modelId: m.smallModel, servedAt: expiresAt }, // expired: balance
        { buyer: buyer.address, modelId: m.largeModel, servedAt: expiresAt - 50 }, // not in plan: balance
      ]);
      const before = await marketState(m, [buyer.address], [planId]);
      const { batch, settled } = await settle(m, records, { plans: new Map([[buyer.address as Address, Number(planId)]]) });
      const after = await marketState(m, [buyer.address], [planId]);
      expect(after.credits[0]).to.equal(before.credits[0] - 1n);
      expect(after.accounts[0].balance).to.equal(before.accounts[0].balance - 450n - 7_500n);
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 7_950n, shortfall: 0n });
    });

    it("does not burn credits of a plan the batch does not name for the buyer", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[6];
      const planId = await planFor(m, 450n, [m.smallModel]);
      await m.tollgate.connect(buyer).buyCredits(planId, 10n, buyer.address);
      await m.tollgate.connect(buyer).deposit(buyer.address, USD(1));
      const { batch, settled } = await settle(m, recordsAt(0n, await smallCalls(m, buyer.address, 2)));
      expect(await (await creditsOf(m.tollgate)).balanceOf(buyer.address, planId)).to.equal(10n);
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 900n, shortfall: 0n });
    });
  });

  describe("shortfall", function () {
    it("charges what a buyer can pay, records the rest as shortfall and never reverts for lack of money", async function () {
      const m = await loadFixture(funded);
      const poor = m.buyers[4];
      const broke = m.buyers[5]; // never deposited
      const rich = m.buyers[0];
      await m.tollgate.connect(poor).deposit(poor.address, 1_000n);
      const now = await latestTime();
      const records = recordsAt(0n, [
        { buyer: poor.address, modelId: m.largeModel, servedAt: now - 30 }, // 7,500
        { buyer: rich.address, modelId: m.smallModel, servedAt: now - 20 }, // 450
        { buyer: broke.address, modelId: m.smallModel, servedAt: now - 10 }, // 450
      ]);
      const addresses = [poor.address, broke.address, rich.address];
      const before = await marketState(m, addresses);
      const batch = encodeUsageBatch(records);
      const signature = await signBatch(m.tollgate, m.gateway, batch);
      const tx = m.tollgate.connect(m.provider).settleBatch(batch, signature);
      await expect(tx).to.emit(m.tollgate, "ShortfallRecorded").withArgs(poor.address, m.gateway.address, 0n, 6_500n);
      await expect(tx).to.emit(m.tollgate, "ShortfallRecorded").withArgs(broke.address, m.gateway.address, 0n, 450n);
      const receipt = (await (await tx).wait())!;
      const settled = batchSettledOf(m.tollgate, receipt);
      const shortfallLogs = receipt.logs.filter((log) => m.tollgate.interface.parseLog(log)?.name === "ShortfallRecorded");
      expect(shortfallLogs).to.have.length(2); // none for the buyer who paid in full

      const after = await marketState(m, addresses);
      expect(after.accounts[0].balance).to.equal(0n);
      expect(after.accounts[1].balance).to.equal(0n);
      expect(after.accounts[2].balance).to.equal(before.accounts[2].balance - 450n);
      expect(resultOf(batch, settled, poor.address)).to.deep.equal({ fromBalance: 1_000n, shortfall: 6_500n });
      expect(resultOf(batch, settled, broke.address)).to.deep.equal({ fromBalance: 0n, shortfall: 450n });
      expect(resultOf(batch, settled, rich.address)).to.deep.equal({ fromBalance: 450n, shortfall: 0n });
      const fees = fee(1_000n) + fee(450n); // 25 + 12
      expect(settled.protocolFee).to.equal(fees);
      expect(settled.providerEarnings).to.equal(1_450n - fees);
      expect(settled.totalCost).to.equal(8_400n);
      expect(settled.totalShortfall).to.equal(6_950n);
      expect(after.nextSequence).to.equal(3n);
      await expectConservation(m);
    });
  });

  describe("pending withdrawals", function () {
    it("draws the spendable balance first, then the pending withdrawal, leaving its unlock time alone", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[4];
      await m.tollgate.connect(buyer).deposit(buyer.address, 10_000n);
      await m.tollgate.connect(buyer).requestWithdrawal(9_000n);
      const { withdrawableAt } = await m.tollgate.accountOf(buyer.address);
      const now = await latestTime();
      const { batch, settled } = await settle(m, recordsAt(0n, [{ buyer: buyer.address, modelId: m.largeModel, servedAt: now - 5 }]));
      const account = await m.tollgate.accountOf(buyer.address);
      expect(account.balance).to.equal(0n);
      expect(account.pendingWithdrawal).to.equal(9_000n - 6_500n);
      expect(account.withdrawableAt).to.equal(withdrawableAt);
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 7_500n, shortfall: 0n });
      await expectConservation(m);

      await time.increaseTo(withdrawableAt);
      const walletBefore = await m.token.balanceOf(buyer.address);
      await m.tollgate.connect(buyer).withdraw();
      expect((await m.token.balanceOf(buyer.address)) - walletBefore).to.equal(2_500n);
      await expectConservation(m);
    });

    it("charges all of a pending withdrawal when usage exceeds it; the withdrawal then closes with nothing to send", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[4];
      await m.tollgate.connect(buyer).deposit(buyer.address, 5_000n);
      await m.tollgate.connect(buyer).requestWithdrawal(5_000n);
      const now = await latestTime();
      const { batch, settled } = await settle(m, recordsAt(0n, [{ buyer: buyer.address, modelId: m.largeModel, servedAt: now - 5 }]));
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 5_000n, shortfall: 2_500n });
      expect((await m.tollgate.accountOf(buyer.address)).pendingWithdrawal).to.equal(0n);
      await time.increase(WITHDRAWAL_DELAY);
      const walletBefore = await m.token.balanceOf(buyer.address);
      await expect(m.tollgate.connect(buyer).withdraw()).to.emit(m.tollgate, "Withdrawn").withArgs(buyer.address, 0n);
      expect(await m.token.balanceOf(buyer.address)).to.equal(walletBefore);
      await expectConservation(m);
    });
  });

  describe("spending limits", function () {
    const DAY = 86_400;

    it("caps what a stolen key can charge per period; the excess is shortfall, and the window resets after the period", async function () {
      const m = await loadFixture(funded);
      const victim = m.buyers[0];
      const bystander = m.buyers[1];
      await m.tollgate.connect(victim).setSpendingLimit(m.providerId, USD(1), DAY);
      const windowStart = (await m.tollgate.spendingLimitOf(victim.address, m.providerId)).windowStart;
      const now = await latestTime();
      // The thief signs huge usage with the provider's (stolen) gateway key: 5 x 10,002,500.
      const huge: Call = { buyer: victim.address, modelId: m.largeModel, servedAt: now - 10, outputTokens: 1_000_000 };
      const hugeCost = 10_002_500n;
      expect(recordCost({ inputTokens: 1_000, cachedInputTokens: 0, outputTokens: 1_000_000 }, LARGE_PRICES)).to.equal(hugeCost);
      const records = recordsAt(0n, [huge, huge, huge, huge, huge, { buyer: bystander.address, modelId: m.smallModel, servedAt: now - 5 }]);
      const before = await marketState(m, [victim.address, bystander.address]);

      const first = await settle(m, records);

      const afterFirst = await marketState(m, [victim.address, bystander.address]);
      expect(before.accounts[0].balance - afterFirst.accounts[0].balance).to.equal(USD(1));
      expect(resultOf(first.batch, first.settled, victim.address)).to.deep.equal({
        fromBalance: USD(1),
        shortfall: 5n * hugeCost - USD(1),
      });
      // A buyer without a limit is charged in full in the same batch.
      expect(before.accounts[1].balance - afterFirst.accounts[1].balance).to.equal(450n);
      let limit = await m.tollgate.spendingLimitOf(victim.address, m.providerId);
      expect(limit.spentInWindow).to.equal(USD(1));
      expect(limit.windowStart).to.equal(windowStart);

      // Same window: nothing more can be charged.
      const again = await settle(m, recordsAt(6n, [{ ...huge, servedAt: (await latestTime()) - 1 }]));
      expect(resultOf(again.batch, again.settled, victim.address)).to.deep.equal({ fromBalance: 0n, shortfall: hugeCost });
      expect((await m.tollgate.accountOf(victim.address)).balance).to.equal(afterFirst.accounts[0].balance);

      // Next period: the allowance is back, once.
      await time.increase(DAY);
      const nextPeriod = await settle(m, recordsAt(7n, [{ ...huge, servedAt: (await latestTime()) - 1 }]));
      expect(resultOf(nextPeriod.batch, nextPeriod.settled, victim.address)).to.deep.equal({
        fromBalance: USD(1),
        shortfall: hugeCost - USD(1),
      });
      expect((await m.tollgate.accountOf(victim.address)).balance).to.equal(afterFirst.accounts[0].balance - USD(1));
      limit = await m.tollgate.spendingLimitOf(victim.address, m.providerId);
      expect(limit.spentInWindow).to.equal(USD(1));
      const settledAt = BigInt((await ethers.provider.getBlock(nextPeriod.receipt.blockNumber))!.timestamp);
      // Windows tile time from the first one.
      expect(limit.windowStart).to.equal(windowStart + ((settledAt - windowStart) / BigInt(DAY)) * BigInt(DAY));
      expect(limit.windowStart).to.be.gt(windowStart);
      await expectConservation(m);
    });

    it("counts credits against the limit too: the cap bounds credits and balance together", async function () {
      const m = await loadFixture(funded);
      const buyer = m.buyers[2];
      await m.tollgate.connect(m.provider).defineCreditPlan(m.providerId, 450n, 450n, [m.smallModel], 0);
      const planId = await m.tollgate.creditPlanCount();
      await m.tollgate.connect(buyer).buyCredits(planId, 10n, buyer.address);
      await m.tollgate.connect(buyer).setSpendingLimit(m.providerId, 900n, DAY);
      const before = await marketState(m, [buyer.address], [planId]);
      const { batch, settled } = await settle(m, recordsAt(0n, await smallCalls(m, buyer.address, 4)), {
        plans: new Map([[buyer.address as Address, Number(planId)]]),
      });
      const after = await marketState(m, [buyer.address], [planId]);
      expect(before.credits[0] - after.credits[0]).to.equal(2n);
      expect(after.accounts[0].balance).to.equal(before.accounts[0].balance);
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: 0n, shortfall: 900n });
      expect((await m.tollgate.spendingLimitOf(buyer.address, m.providerId)).spentInWindow).to.equal(900n);
    });
    it("does not count unpaid usage against the limit: a buyer short of money keeps its allowance for later", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[3];
      await m.tollgate.connect(buyer).deposit(buyer.address, 100n);
      await m.tollgate.connect(buyer).setSpendingLimit(m.providerId, 1_000n, DAY);
      // Four small calls cost 4 x 450 = 1,800: the cap allows 1,000, the balance pays 100.
      const first = await settle(m, recordsAt(0n, await smallCalls(m, buyer.address, 4)));
      expect(resultOf(first.batch, first.settled, buyer.address)).to.deep.equal({ fromBalance: 100n, shortfall: 1_700n });
      expect((await m.tollgate.spendingLimitOf(buyer.address, m.providerId)).spentInWindow).to.equal(100n);
      // After a top-up in the same window, the 900 not yet charged is still allowed.
      await m.tollgate.connect(buyer).deposit(buyer.address, USD(1));
      const second = await settle(m, recordsAt(4n, await smallCalls(m, buyer.address, 4)));
      expect(resultOf(second.batch, second.settled, buyer.address)).to.deep.equal({ fromBalance: 900n, shortfall: 900n });
      expect((await m.tollgate.spendingLimitOf(buyer.address, m.providerId)).spentInWindow).to.equal(1_000n);
      await expectConservation(m);
    });
  });

  describe("price changes", function () {
    const NEW_PRICES = { input: 300_000n, cachedInput: 100_000n, output: 1_200_000n };

    async function scheduled(m: M) {
      await m.tollgate.connect(m.provider).scheduleModelPrice(m.smallModel, NEW_PRICES);
      const listedAt = Number((await m.tollgate.priceEpochOf(m.smallModel, 0)).effectiveFrom);
      const effectiveFrom = Number((await m.tollgate.priceEpochOf(m.smallModel, 1)).effectiveFrom);
      expect(BigInt(effectiveFrom)).to.equal(BigInt(await latestTime()) + PRICE_NOTICE);
      return { listedAt, effectiveFrom };
    }

    it("settles usage before effectiveFrom at the old price (epoch 0) and from it on at the new one (epoch 1), in one batch", async function () {
      const m = await loadFixture(funded);
      const buyer = m.buyers[0];
      const { effectiveFrom } = await scheduled(m);
      await time.increaseTo(effectiveFrom + 1_000);
      const records = recordsAt(0n, [
        { buyer: buyer.address, modelId: m.smallModel, servedAt: effectiveFrom - 500, priceEpoch: 0 },
        { buyer: buyer.address, modelId: m.smallModel, servedAt: effectiveFrom - 1, priceEpoch: 0 },
        { buyer: buyer.address, modelId: m.smallModel, servedAt: effectiveFrom, priceEpoch: 1 },
        { buyer: buyer.address, modelId: m.smallModel, servedAt: effectiveFrom + 500, priceEpoch: 1 },
      ]);
      const before = await marketState(m, [buyer.address]);
      const { batch, settled } = await settle(m, records);
      const oldCost = 450n;
      const newCost = 300n + 600n;
      expect(recordCost(records[3], NEW_PRICES)).to.equal(newCost);
      expect(settled.totalCost).to.equal(2n * oldCost + 2n * newCost);
      expect(before.accounts[0].balance - (await m.tollgate.accountOf(buyer.address)).balance).to.equal(2n * oldCost + 2n * newCost);
      expect(batch.models).to.equal(packModels([{ modelId: m.smallModel, epoch: 0 }, { modelId: m.smallModel, epoch: 1 }]));
    });

    it("rejects a record served exactly at effectiveFrom that names the old epoch", async function () {
      const m = await loadFixture(funded);
      const { listedAt, effectiveFrom } = await scheduled(m);
      await time.increaseTo(effectiveFrom + 10);
      const records = recordsAt(0n, [{ buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: effectiveFrom, priceEpoch: 0 }]);
      const batch = encodeUsageBatch(records);
      const signature = await signBatch(m.tollgate, m.gateway, batch);
      await expectNothingChanged(m, () =>
        expect(m.tollgate.settleBatch(batch, signature))
          .to.be.revertedWithCustomError(m.tollgate, "SettlementPriceEpochMismatch")
          .withArgs(0n, effectiveFrom, listedAt, effectiveFrom),
      );
    });

    it("rejects naming the new epoch for usage served before it took effect, capping until at block time + 1", async function () {
      const m = await loadFixture(funded);
      const { effectiveFrom } = await scheduled(m);
      const now = await latestTime();
      const records = recordsAt(0n, [
        { buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: now - 20, priceEpoch: 0 },
        { buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: now - 10, priceEpoch: 1 },
      ]);
      const batch = encodeUsageBatch(records);
      const signature = await signBatch(m.tollgate, m.gateway, batch);
      const blockTime = now + 5;
      await expectNothingChanged(m, async () => {
        await time.setNextBlockTimestamp(blockTime);
        await expect(m.tollgate.settleBatch(batch, signature))
          .to.be.revertedWithCustomError(m.tollgate, "SettlementPriceEpochMismatch")
          .withArgs(1n, now - 10, effectiveFrom, blockTime + 1);
      });
    });
  });

  describe("rejected batches (each changes nothing)", function () {
    describe("signatures", function () {
      it("rejects a batch signed by a key that was never authorized, naming the recovered signer", async function () {
        const m = await loadFixture(funded);
        const stranger = privateKeyToAccount(generatePrivateKey());
        const { batch, signature } = await rawBatch(m, {}, stranger);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementUnauthorizedSigner")
            .withArgs(stranger.address),
        );
      });

      it("rejects batches of a revoked gateway key, even ones signed before the revocation", async function () {
        const m = await loadFixture(funded);
        await settle(m, recordsAt(0n, await smallCalls(m, m.buyers[0].address, 1)));
        const { batch, signature } = await rawBatch(m); // signed while still authorized
        await m.tollgate.connect(m.provider).setSignerAuthorization(m.providerId, m.gateway.address, false);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementUnauthorizedSigner")
            .withArgs(m.gateway.address),
        );
        expect(await nextSequence(m.tollgate, m.gateway.address)).to.equal(1n);
      });

      it("rejects a signature made for another chain id: it recovers to a different, unauthorized address", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        const here = await deploymentOf(m.tollgate);
        const signature = await signUsageBatch(m.gateway, { chainId: here.chainId + 1n, address: here.address }, batch);
        const recovered = await recoverTypedDataAddress({
          domain: tollgateDomain(here.chainId, here.address),
          types: usageBatchTypes,
          primaryType: "UsageBatch",
          message: batch,
          signature,
        });
        expect(recovered).to.not.equal(m.gateway.address);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementUnauthorizedSigner")
            .withArgs(recovered),
        );
      });

      it("rejects a signature made for another Tollgate deployment, which that deployment accepts", async function () {
        const m = await loadFixture(funded);
        const second = (await ethers.deployContract("Tollgate", [
          await m.token.getAddress(),
          WITHDRAWAL_DELAY,
          PRICE_NOTICE,
          FEE_BPS,
          m.treasury.address,
          m.owner.address,
        ])) as unknown as Tollgate;
        await second.connect(m.provider).registerProvider(m.provider.address, "ipfs://provider");
        await second.connect(m.provider).listModel(1n, "small-model", SMALL_PRICES);
        await second.connect(m.provider).setSignerAuthorization(1n, m.gateway.address, true);
        await time.increase(60);
        const { batch } = await rawBatch(m);
        const signature = await signUsageBatch(m.gateway, await deploymentOf(second), batch);
        const recovered = ethers.recoverAddress(await m.tollgate.hashUsageBatch(batch), signature);
        expect(recovered).to.not.equal(m.gateway.address);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementUnauthorizedSigner")
            .withArgs(recovered),
        );
        // The deployment it was signed for takes it (its buyer has no money there, so it is all shortfall).
        await expect(second.settleBatch(batch, signature))
          .to.emit(second, "ShortfallRecorded")
          .withArgs(m.buyers[0].address, m.gateway.address, 0n, 450n);
      });

      it("rejects a malleable high-s twin of a valid signature with ECDSAInvalidSignatureS", async function () {
        const m = await loadFixture(funded);
        const { batch, signature } = await rawBatch(m);
        const { r, s, yParity } = parseSignature(signature);
        const highS = SECP256K1_N - BigInt(s);
        const twin = serializeSignature({ r, s: numberToHex(highS, { size: 32 }), yParity: yParity === 0 ? 1 : 0 });
        expect(twin).to.not.equal(signature);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, twin))
            .to.be.revertedWithCustomError(m.tollgate, "ECDSAInvalidSignatureS")
            .withArgs(numberToHex(highS, { size: 32 })),
        );
        // The original still settles.
        await expect(m.tollgate.settleBatch(batch, signature)).to.emit(m.tollgate, "BatchSettled");
      });

      it("rejects a signature that is not 65 bytes", async function () {
        const m = await loadFixture(funded);
        const { batch, signature } = await rawBatch(m);
        const short = ethers.dataSlice(signature, 0, 64);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, short))
            .to.be.revertedWithCustomError(m.tollgate, "ECDSAInvalidSignatureLength")
            .withArgs(64n),
        );
      });

      it("rejects the gateway's receipt signature offered as a batch signature", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        const now = await latestTime();
        const { receipts } = await withReceipts(
          m.tollgate,
          recordsAt(0n, [{ buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: now - 10 }]),
        );
        const receiptSignature = await signUsageReceipt(m.gateway, await deploymentOf(m.tollgate), receipts[0]);
        // The receipt signature is genuine...
        expect(ethers.recoverAddress(await m.tollgate.hashUsageReceipt(receipts[0]), receiptSignature)).to.equal(m.gateway.address);
        // ...but over the batch digest it recovers to someone else.
        const recovered = ethers.recoverAddress(await m.tollgate.hashUsageBatch(batch), receiptSignature);
        expect(recovered).to.not.equal(m.gateway.address);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, receiptSignature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementUnauthorizedSigner")
            .withArgs(recovered),
        );
      });

      it("rejects a signature over a different batch (one record's tokens changed after signing)", async function () {
        const m = await loadFixture(funded);
        const { batch, signature } = await rawBatch(m);
        const tampered = { ...batch, records: packRecords([{ buyerIndex: 0, modelIndex: 0, outputTokens: 5_000_000 }]) };
        const recovered = ethers.recoverAddress(await m.tollgate.hashUsageBatch(tampered), signature);
        expect(recovered).to.not.equal(m.gateway.address);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(tampered, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementUnauthorizedSigner")
            .withArgs(recovered),
        );
      });

      it("lets a key of another provider charge nothing for this provider's models", async function () {
        const m = await loadFixture(funded);
        const { owner, otherProviderId } = await registerSecondProvider(m);
        const otherKey = privateKeyToAccount(generatePrivateKey());
        await m.tollgate.connect(owner).setSignerAuthorization(otherProviderId, otherKey.address, true);
        const { batch, signature } = await rawBatch(m, { firstSequence: 0n }, otherKey);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementModelNotOfProvider")
            .withArgs(m.smallModel, otherProviderId),
        );
      });
    });

    describe("sequence", function () {
      it("rejects an identical batch replayed after it settled", async function () {
        const m = await loadFixture(funded);
        const records = recordsAt(0n, await smallCalls(m, m.buyers[0].address, 3));
        const { batch, signature } = await settle(m, records);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementSequenceMismatch")
            .withArgs(m.gateway.address, 3n, 0n),
        );
      });

      it("rejects a batch that leaves a gap after the last settled sequence", async function () {
        const m = await loadFixture(funded);
        const batch = encodeUsageBatch(recordsAt(5n, await smallCalls(m, m.buyers[0].address, 2)));
        const signature = await signBatch(m.tollgate, m.gateway, batch);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementSequenceMismatch")
            .withArgs(m.gateway.address, 0n, 5n),
        );
      });

      it("rejects a batch that overlaps records already settled", async function () {
        const m = await loadFixture(funded);
        await settle(m, recordsAt(0n, await smallCalls(m, m.buyers[0].address, 3)));
        const batch = encodeUsageBatch(recordsAt(1n, await smallCalls(m, m.buyers[0].address, 3)));
        const signature = await signBatch(m.tollgate, m.gateway, batch);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementSequenceMismatch")
            .withArgs(m.gateway.address, 3n, 1n),
        );
      });
    });

    describe("encoding", function () {
      async function expectSettleRevert(m: M, batch: UsageBatch, error: string, args: unknown[]) {
        const signature = await signBatch(m.tollgate, m.gateway, batch);
        await expectNothingChanged(m, () =>
          expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, error)
            .withArgs(...args),
        );
      }

      it("rejects a records section whose length is not a multiple of 18, or empty", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        const twoRecords = packRecords([{ buyerIndex: 0, modelIndex: 0 }, { buyerIndex: 0, modelIndex: 0 }]);
        await expectSettleRevert(m, { ...batch, records: ethers.dataSlice(twoRecords, 0, 35) as Hex }, "SettlementMalformedSection", [2n, 35n, 18n]);
        await expectSettleRevert(m, { ...batch, records: ethers.dataSlice(batch.records, 0, 17) as Hex }, "SettlementMalformedSection", [2n, 17n, 18n]);
        await expectSettleRevert(m, { ...batch, records: "0x" }, "SettlementMalformedSection", [2n, 0n, 18n]);
      });

      it("rejects a malformed or empty models or buyers section", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        await expectSettleRevert(m, { ...batch, models: `${batch.models}00` as Hex }, "SettlementMalformedSection", [1n, 9n, 8n]);
        await expectSettleRevert(m, { ...batch, models: "0x" }, "SettlementMalformedSection", [1n, 0n, 8n]);
        await expectSettleRevert(m, { ...batch, buyers: ethers.dataSlice(batch.buyers, 0, 23) as Hex }, "SettlementMalformedSection", [0n, 23n, 24n]);
        await expectSettleRevert(m, { ...batch, buyers: "0x" }, "SettlementMalformedSection", [0n, 0n, 24n]);
      });

      it("rejects a models table with more than 256 entries", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        const models = packModels(Array.from({ length: 257 }, () => ({ modelId: m.smallModel })));
        await expectSettleRevert(m, { ...batch, models }, "SettlementTooManyEntries", [1n, 257n, 256n]);
      });

      it("rejects a buyers table that is out of order, repeats a buyer, or starts at the zero address", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        const [low, high] = [m.buyers[0].address, m.buyers[1].address].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
        const records = packRecords([{ buyerIndex: 0, modelIndex: 0 }, { buyerIndex: 1, modelIndex: 0 }]);
        await expectSettleRevert(m, { ...batch, records, buyers: packBuyers([{ buyer: high }, { buyer: low }]) }, "SettlementBuyersNotSorted", [1n]);
        await expectSettleRevert(m, { ...batch, records, buyers: packBuyers([{ buyer: low }, { buyer: low }]) }, "SettlementBuyersNotSorted", [1n]);
        await expectSettleRevert(m, { ...batch, buyers: packBuyers([{ buyer: ethers.ZeroAddress }]) }, "SettlementBuyersNotSorted", [0n]);
        // The same entries in ascending order settle.
        const ordered = { ...batch, records, buyers: packBuyers([{ buyer: low }, { buyer: high }]) };
        await expect(m.tollgate.settleBatch(ordered, await signBatch(m.tollgate, m.gateway, ordered))).to.emit(m.tollgate, "BatchSettled");
      });

      it("rejects a model of another provider, and a model that does not exist", async function () {
        const m = await loadFixture(funded);
        const { otherModel } = await registerSecondProvider(m);
        const { batch } = await rawBatch(m);
        await expectSettleRevert(m, { ...batch, models: packModels([{ modelId: otherModel }]) }, "SettlementModelNotOfProvider", [otherModel, m.providerId]);
        await expectSettleRevert(m, { ...batch, models: packModels([{ modelId: 999 }]) }, "SettlementModelNotOfProvider", [999n, m.providerId]);
        await expectSettleRevert(m, { ...batch, models: packModels([{ modelId: 0 }]) }, "SettlementModelNotOfProvider", [0n, m.providerId]);
      });

      it("rejects a credit plan of another provider, and a plan that does not exist", async function () {
        const m = await loadFixture(funded);
        const { owner, otherProviderId, otherModel } = await registerSecondProvider(m);
        await m.tollgate.connect(owner).defineCreditPlan(otherProviderId, 1_000n, 1_000n, [otherModel], 0);
        const otherPlan = await m.tollgate.creditPlanCount();
        const { batch } = await rawBatch(m);
        const buyer = m.buyers[0].address;
        await expectSettleRevert(m, { ...batch, buyers: packBuyers([{ buyer, plan: Number(otherPlan) }]) }, "SettlementPlanNotOfProvider", [
          otherPlan,
          m.providerId,
        ]);
        await expectSettleRevert(m, { ...batch, buyers: packBuyers([{ buyer, plan: 77 }]) }, "SettlementPlanNotOfProvider", [77n, m.providerId]);
      });

      it("rejects a record naming a buyer entry beyond the buyers table", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        for (const entry of [1, 2, 65_535]) {
          const records = packRecords([{ buyerIndex: 0, modelIndex: 0 }, { buyerIndex: entry, modelIndex: 0 }]);
          await expectSettleRevert(m, { ...batch, records }, "SettlementEntryOutOfRange", [1n, BigInt(entry)]);
        }
      });

      // Every index past the table must give the named error. The record loop reads the entry's terms
      // (mload of models[modelIndex]) before it checks the index, so some out-of-range entries land on
      // memory words that are not pointers.
      for (const entry of [1, 2, 6, 7, 8, 12, 13, 255]) {
        it(`rejects a record naming model entry ${entry} of a one-entry models table with SettlementEntryOutOfRange`, async function () {
          const m = await loadFixture(funded);
          const { batch } = await rawBatch(m);
          const records = packRecords([{ buyerIndex: 0, modelIndex: entry }]);
          await expectSettleRevert(m, { ...batch, records }, "SettlementEntryOutOfRange", [0n, BigInt(entry)]);
        });
      }

      it("rejects a record claiming more cached input tokens than input tokens", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        const records = packRecords([
          { buyerIndex: 0, modelIndex: 0, inputTokens: 1_000, cachedInputTokens: 1_000 },
          { buyerIndex: 0, modelIndex: 0, inputTokens: 1_000, cachedInputTokens: 1_001 },
        ]);
        await expectSettleRevert(m, { ...batch, records }, "SettlementCachedExceedsInput", [1n]);
      });

      it("rejects a record served before its model was listed (outside price epoch 0)", async function () {
        const m = await loadFixture(funded);
        const listedAt = Number((await m.tollgate.priceEpochOf(m.smallModel, 0)).effectiveFrom);
        const now = await latestTime();
        const batch = encodeUsageBatch(
          recordsAt(0n, [{ buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: listedAt - 1 }]),
        );
        const signature = await signBatch(m.tollgate, m.gateway, batch);
        await expectNothingChanged(m, async () => {
          await time.setNextBlockTimestamp(now + 3);
          await expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementPriceEpochMismatch")
            .withArgs(0n, listedAt - 1, listedAt, now + 4);
        });
      });

      it("rejects a record claiming to be served after the block it settles in", async function () {
        const m = await loadFixture(funded);
        const now = await latestTime();
        const batch = encodeUsageBatch(
          recordsAt(0n, [
            { buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: now - 10 },
            { buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: now + 100 },
          ]),
        );
        const signature = await signBatch(m.tollgate, m.gateway, batch);
        await expectNothingChanged(m, async () => {
          await time.setNextBlockTimestamp(now + 5);
          await expect(m.tollgate.settleBatch(batch, signature))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementServedInFuture")
            .withArgs(1n, now + 100, now + 5);
        });
      });

      it("rejects a models entry naming a price epoch the model does not have", async function () {
        const m = await loadFixture(funded);
        const { batch } = await rawBatch(m);
        await expectSettleRevert(m, { ...batch, models: packModels([{ modelId: m.smallModel, epoch: 1 }]) }, "RegistryUnknownPriceEpoch", [
          m.smallModel,
          1n,
        ]);
        await expectSettleRevert(m, { ...batch, models: packModels([{ modelId: m.largeModel, epoch: MAX_UINT32 }]) }, "RegistryUnknownPriceEpoch", [
          m.largeModel,
          BigInt(MAX_UINT32),
        ]);
      });
    });

    it("rejects every batch while paused and settles the same batch after unpausing", async function () {
      const m = await loadFixture(funded);
      const { batch, signature } = await rawBatch(m);
      await m.tollgate.connect(m.owner).pause();
      await expectNothingChanged(m, () => expect(m.tollgate.settleBatch(batch, signature)).to.be.revertedWithCustomError(m.tollgate, "EnforcedPause"));
      await m.tollgate.connect(m.owner).unpause();
      await expect(m.tollgate.settleBatch(batch, signature)).to.emit(m.tollgate, "BatchSettled");
    });
  });

  describe("withdrawal front-running", function () {
    for (const order of ["withdraw first", "settle first"] as const) {
      it(`conserves tokens and charges min(cost, what is left) when withdraw and settle share a block (${order})`, async function () {
        const m = await loadFixture(ready);
        const buyer = m.buyers[4];
        await m.tollgate.connect(buyer).deposit(buyer.address, 1_000_000n);
        await m.tollgate.connect(buyer).requestWithdrawal(990_000n); // 10,000 spendable, 990,000 pending
        await time.increase(WITHDRAWAL_DELAY + 1n);
        const now = await latestTime();
        const records = recordsAt(
          0n,
          Array.from({ length: 3 }, (_, i) => ({ buyer: buyer.address, modelId: m.largeModel, servedAt: now - 30 + i })),
        );
        const cost = 22_500n;
        const batch = encodeUsageBatch(records);
        const signature = await signBatch(m.tollgate, m.gateway, batch);
        const walletBefore = await m.token.balanceOf(buyer.address);
        const gas = (priority: bigint) => ({ maxFeePerGas: 100n * 10n ** 9n, maxPriorityFeePerGas: priority * 10n ** 9n });

        await network.provider.send("evm_setAutomine", [false]);
        let settleTx, withdrawTx;
        try {
          if (order === "withdraw first") {
            withdrawTx = await m.tollgate.connect(buyer).withdraw({ gasLimit: 300_000n, ...gas(3n) });
            settleTx = await m.tollgate.connect(m.others[2]).settleBatch(batch, signature, { gasLimit: 3_000_000n, ...gas(2n) });
          } else {
            settleTx = await m.tollgate.connect(m.others[2]).settleBatch(batch, signature, { gasLimit: 3_000_000n, ...gas(3n) });
            withdrawTx = await m.tollgate.connect(buyer).withdraw({ gasLimit: 300_000n, ...gas(2n) });
          }
          await network.provider.send("evm_mine", []);
        } finally {
          await network.provider.send("evm_setAutomine", [true]);
        }
        const settleReceipt = (await settleTx.wait())!;
        const withdrawReceipt = (await withdrawTx.wait())!;
        expect(settleReceipt.blockNumber).to.equal(withdrawReceipt.blockNumber);
        expect(settleReceipt.status).to.equal(1);
        expect(withdrawReceipt.status).to.equal(1);
        if (order === "withdraw first") expect(withdrawReceipt.index).to.be.lt(settleReceipt.index);
        else expect(settleReceipt.index).to.be.lt(withdrawReceipt.index);

        const settled = batchSettledOf(m.tollgate, settleReceipt);
        const withdrawn = (await m.token.balanceOf(buyer.address)) - walletBefore;
        const leftForSettlement = order === "withdraw first" ? 10_000n : 1_000_000n;
        const charged = cost < leftForSettlement ? cost : leftForSettlement;
        expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: charged, shortfall: cost - charged });
        expect(withdrawn).to.equal(order === "withdraw first" ? 990_000n : 990_000n - (cost - 10_000n));
        const account = await m.tollgate.accountOf(buyer.address);
        expect(account.balance + account.pendingWithdrawal + withdrawn + charged).to.equal(1_000_000n);
        expect(account.pendingWithdrawal).to.equal(0n);
        await expectConservation(m);
      });
    }
  });

  describe("rounding", function () {
    it("for single-record batches, the buyer's debit equals the provider's earnings plus the protocol fee exactly", async function () {
      const m = await loadFixture(funded);
      const buyer = m.buyers[0];
      const shapes = [
        { inputTokens: 1, cachedInputTokens: 0, outputTokens: 0 },
        { inputTokens: 0, cachedInputTokens: 0, outputTokens: 1 },
        { inputTokens: 1, cachedInputTokens: 1, outputTokens: 0 },
        { inputTokens: 7, cachedInputTokens: 3, outputTokens: 11 },
        { inputTokens: 123_457, cachedInputTokens: 99, outputTokens: 77 },
        { inputTokens: 1_000, cachedInputTokens: 0, outputTokens: 500 },
        { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 },
      ];
      let sequence = 0n;
      for (const model of [m.smallModel, m.largeModel]) {
        for (const shape of shapes) {
          const records = recordsAt(sequence, [{ buyer: buyer.address, modelId: model, servedAt: (await latestTime()) - 1, ...shape }]);
          sequence += 1n;
          const before = await marketState(m, [buyer.address]);
          const { settled } = await settle(m, records);
          const after = await marketState(m, [buyer.address]);
          const debit = before.accounts[0].balance - after.accounts[0].balance;
          const label = `${model} ${JSON.stringify(shape)}`;
          expect(debit, label).to.equal(recordCost(shape, await pricesOf(m.tollgate, model, 0)));
          expect(debit, label).to.equal(after.earnings - before.earnings + (after.fees - before.fees));
          expect(after.fees - before.fees, label).to.equal(fee(debit));
          expect(settled.providerEarnings + settled.protocolFee, label).to.equal(debit);
        }
      }
      await expectConservation(m);
    });

    it("for a multi-record, multi-buyer batch, total debits equal earnings plus fees exactly", async function () {
      const m = await loadFixture(funded);
      const buyers = m.buyers.slice(0, 3).map((b) => b.address);
      const now = await latestTime();
      const calls: Call[] = Array.from({ length: 40 }, (_, i) => ({
        buyer: buyers[i % 3],
        modelId: i % 2 === 0 ? m.smallModel : m.largeModel,
        servedAt: now - 100 + i,
        inputTokens: (i * 7_919) % 3_001,
        cachedInputTokens: ((i * 7_919) % 3_001) >> 2,
        outputTokens: (i * 104_729) % 997,
      }));
      const records = recordsAt(0n, calls);
      const before = await marketState(m, buyers);
      const { settled } = await settle(m, records);
      const after = await marketState(m, buyers);
      let debits = 0n;
      let fees = 0n;
      for (let i = 0; i < buyers.length; i++) {
        const debit = before.accounts[i].balance - after.accounts[i].balance;
        expect(debit).to.equal(await expectedCost(m.tollgate, records.filter((r) => r.buyer === buyers[i])));
        debits += debit;
        fees += fee(debit);
      }
      expect(debits).to.equal(settled.totalCost);
      expect(debits).to.equal(after.earnings - before.earnings + (after.fees - before.fees));
      expect(after.fees - before.fees).to.equal(fees);
    });

    it("never takes less fee when a charge is split into many 1-token records, in one batch or many", async function () {
      const m = await loadFixture(funded);
      const buyer = m.buyers[0].address;
      let sequence = 0n;
      const feeOf = async (batches: Partial<Call>[][]) => {
        const before = await m.tollgate.protocolFeesAccrued();
        for (const shapes of batches) {
          const now = await latestTime();
          const records = recordsAt(
            sequence,
            shapes.map((shape, i) => ({ buyer, modelId: m.smallModel, servedAt: now - 1_000 + (i % 900), ...shape })),
          );
          sequence += BigInt(records.length);
          await settle(m, records);
        }
        return (await m.tollgate.protocolFeesAccrued()) - before;
      };
      for (const model of [m.smallModel, m.largeModel]) {
        for (const n of [1, 37, 1_000]) {
          for (const field of ["outputTokens", "inputTokens"] as const) {
            const base = { modelId: model, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 };
            const whole = await feeOf([[{ ...base, [field]: n }]]);
            const tiny = Array.from({ length: n }, () => ({ ...base, [field]: 1 }));
            const splitInOne = await feeOf([tiny]);
            const parts = Math.min(n, 10);
            const bounds = (p: number) => Math.floor((p * n) / parts);
            const splitInMany = await feeOf(Array.from({ length: parts }, (_, p) => tiny.slice(bounds(p), bounds(p + 1))));
            const label = `model ${model}, ${n} ${field}`;
            expect(splitInOne, label).to.be.gte(whole);
            expect(splitInMany, label).to.be.gte(whole);
            expect(whole, label).to.be.gte(1n);
          }
        }
      }
    });
  });

  describe("amounts near bounds", function () {
    async function maxPriced(m: M) {
      const MAX_PRICE = await m.tollgate.MAX_PRICE();
      expect(MAX_PRICE).to.equal(2n ** 72n - 1n);
      const prices = { input: MAX_PRICE, cachedInput: MAX_PRICE, output: MAX_PRICE };
      await m.tollgate.connect(m.provider).listModel(m.providerId, "max-model", prices);
      const modelId = await m.tollgate.modelCount();
      await time.increase(100);
      const now = await latestTime();
      const shapes = [
        { inputTokens: MAX_UINT32, cachedInputTokens: 0, outputTokens: MAX_UINT32 },
        { inputTokens: MAX_UINT32, cachedInputTokens: MAX_UINT32, outputTokens: MAX_UINT32 },
        { inputTokens: MAX_UINT32, cachedInputTokens: 2 ** 31, outputTokens: 0 },
      ];
      const calls = (buyer: string, copies: number): Call[] =>
        Array.from({ length: copies }, (_, i) => ({ buyer, modelId, servedAt: now - 50 + (i % 40), ...shapes[i % shapes.length] }));
      return { prices, modelId, calls };
    }

    it("settles MAX_PRICE records with uint32-max token counts without overflow, at exactly recordCost", async function () {
      const m = await loadFixture(ready);
      const whale = m.buyers[6];
      const cap = await m.tollgate.MAX_ACCOUNT_BALANCE();
      await m.token.mint(whale.address, cap);
      await m.tollgate.connect(whale).deposit(whale.address, cap);
      const { prices, calls } = await maxPriced(m);
      const records = recordsAt(0n, calls(whale.address, 60));
      const cost = records.reduce((sum, r) => sum + recordCost(r, prices), 0n);
      expect(cost).to.be.gt(2n ** 90n);
      expect(cost).to.be.lt(cap);
      const before = await marketState(m, [whale.address]);
      const { batch, settled } = await settle(m, records);
      const after = await marketState(m, [whale.address]);
      expect(settled.totalCost).to.equal(cost);
      expect(before.accounts[0].balance - after.accounts[0].balance).to.equal(cost);
      expect(settled.protocolFee).to.equal(fee(cost));
      expect(after.earnings - before.earnings).to.equal(cost - fee(cost));
      expect(resultOf(batch, settled, whale.address)).to.deep.equal({ fromBalance: cost, shortfall: 0n });
      await expectConservation(m);
    });

    it("records the shortfall of a short buyer on MAX_PRICE usage without overflow", async function () {
      const m = await loadFixture(ready);
      const buyer = m.buyers[7];
      await m.tollgate.connect(buyer).deposit(buyer.address, USD(10));
      const { prices, calls } = await maxPriced(m);
      const records = recordsAt(0n, calls(buyer.address, 3));
      const cost = records.reduce((sum, r) => sum + recordCost(r, prices), 0n);
      const { batch, settled } = await settle(m, records);
      expect(settled.totalCost).to.equal(cost);
      expect(settled.totalShortfall).to.equal(cost - USD(10));
      expect(resultOf(batch, settled, buyer.address)).to.deep.equal({ fromBalance: USD(10), shortfall: cost - USD(10) });
      expect((await m.tollgate.accountOf(buyer.address)).balance).to.equal(0n);
      await expectConservation(m);
    });
  });

  describe("audit", function () {
    it("rebuilds BatchSettled.totalCost from the settlement calldata and the registry's price epochs alone", async function () {
      const m = await loadFixture(funded);
      const [a, b, c] = m.buyers;
      await m.tollgate.connect(m.provider).defineCreditPlan(m.providerId, 1_000n, 1_000n, [m.smallModel], 0);
      const planId = await m.tollgate.creditPlanCount();
      await m.tollgate.connect(b).buyCredits(planId, 3n, b.address);
      await m.tollgate.connect(m.provider).scheduleModelPrice(m.largeModel, { input: 3_000_000n, cachedInput: 300_000n, output: 12_000_000n });
      const effectiveFrom = Number((await m.tollgate.priceEpochOf(m.largeModel, 1)).effectiveFrom);
      await time.increaseTo(effectiveFrom + 600);
      const calls: Call[] = Array.from({ length: 24 }, (_, i) => {
        const large = i % 3 !== 0;
        const servedAt = effectiveFrom - 300 + i * 25;
        return {
          buyer: [a, b, c][i % 3].address,
          modelId: large ? m.largeModel : m.smallModel,
          priceEpoch: large && servedAt >= effectiveFrom ? 1 : 0,
          servedAt,
          inputTokens: 500 + i * 113,
          cachedInputTokens: i * 17,
          outputTokens: 40 + i * 71,
        };
      });
      const records = recordsAt(0n, calls);
      const { settled, receipt } = await settle(m, records, { plans: new Map([[b.address as Address, Number(planId)]]), from: m.others[1] });

      // The auditor's view: the transaction, the ABI and the registry.
      const tx = (await ethers.provider.getTransaction(receipt.hash))!;
      const call = m.tollgate.interface.parseTransaction({ data: tx.data, value: tx.value })!;
      expect(call.name).to.equal("settleBatch");
      const [onChainBatch, signature] = call.args;
      const batch: UsageBatch = {
        firstSequence: onChainBatch.firstSequence,
        baseTime: Number(onChainBatch.baseTime),
        buyers: onChainBatch.buyers,
        models: onChainBatch.models,
        records: onChainBatch.records,
        contentRoot: onChainBatch.contentRoot,
      };
      expect(ethers.recoverAddress(await m.tollgate.hashUsageBatch(batch), signature)).to.equal(settled.signer);
      expect(commitmentOf(batch)).to.equal(settled.commitment);
      const decoded = decodeUsageBatch(batch);
      expect(decoded).to.have.length(Number(settled.recordCount));
      let total = 0n;
      const perBuyer = new Map<string, bigint>();
      for (const record of decoded) {
        const epoch = await m.tollgate.priceEpochOf(record.modelId, record.priceEpoch);
        // The named epoch really was in force when the record was served.
        expect(record.servedAt).to.be.gte(Number(epoch.effectiveFrom));
        const cost = recordCost(record, { input: epoch.input, cachedInput: epoch.cachedInput, output: epoch.output });
        total += cost;
        perBuyer.set(record.buyer, (perBuyer.get(record.buyer) ?? 0n) + cost);
      }
      expect(total).to.equal(settled.totalCost);
      expect(decoded.some((r) => r.priceEpoch === 1)).to.equal(true);
      expect(decoded.find((r) => r.buyer === b.address)!.creditPlan).to.equal(Number(planId));
      // For buyers without credits, what each record cost is all drawn or short.
      for (const who of [a.address, c.address]) {
        const result = resultOf(batch, settled, who);
        expect(result.fromBalance + result.shortfall).to.equal(perBuyer.get(who));
      }
      // And the decoded records are exactly what the gateway metered.
      expect(decoded.map((r) => [r.sequence, r.buyer, r.modelId, r.priceEpoch, r.servedAt, r.inputTokens, r.cachedInputTokens, r.outputTokens])).to.deep.equal(
        records.map((r) => [r.sequence, r.buyer, r.modelId, r.priceEpoch, r.servedAt, r.inputTokens, r.cachedInputTokens, r.outputTokens]),
      );
    });

    describe("BatchDataPublished", function () {
      async function relayedSetup() {
        const m = await loadFixture(funded);
        const relay = await (await ethers.getContractFactory("BatchRelay")).deploy();
        const now = await latestTime();
        const records = recordsAt(0n, [
          { buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: now - 30 },
          { buyer: m.buyers[1].address, modelId: m.largeModel, servedAt: now - 20, cachedInputTokens: 100 },
        ]);
        return { m, relay, records };
      }

      it("publishes a batch relayed through a contract, so it can be rebuilt from the event and hashes to the commitment", async function () {
        const { m, relay, records } = await relayedSetup();
        const batch = encodeUsageBatch(records);
        const signature = await signBatch(m.tollgate, m.gateway, batch);
        const call = m.tollgate.interface.encodeFunctionData("settleBatch", [batch, signature]);
        const receipt = (await (await relay.connect(m.others[0]).relay(await m.tollgate.getAddress(), [call])).wait())!;
        const settled = batchSettledOf(m.tollgate, receipt);
        const names = receipt.logs.map((log) => m.tollgate.interface.parseLog(log)?.name);
        // Emitted right after BatchSettled, in the same transaction.
        expect(names.indexOf("BatchDataPublished")).to.equal(names.indexOf("BatchSettled") + 1);
        const published = m.tollgate.interface.parseLog(receipt.logs.find((log) => m.tollgate.interface.parseLog(log)?.name === "BatchDataPublished")!)!.args;
        expect(published.signer).to.equal(m.gateway.address);
        expect(published.firstSequence).to.equal(0n);
        // The published bytes are exactly the inner call, decoded with the ABI as a direct transaction is.
        expect(published.settleBatchCall).to.equal(call);
        const inner = m.tollgate.interface.parseTransaction({ data: published.settleBatchCall })!;
        expect(inner.name).to.equal("settleBatch");
        const [b, innerSignature] = inner.args;
        const rebuilt: UsageBatch = { firstSequence: b.firstSequence, baseTime: Number(b.baseTime), buyers: b.buyers, models: b.models, records: b.records, contentRoot: b.contentRoot };
        expect(commitmentOf(rebuilt)).to.equal(settled.commitment);
        expect(ethers.recoverAddress(await m.tollgate.hashUsageBatch(rebuilt), innerSignature)).to.equal(m.gateway.address);
        // The transaction's own calldata is the relay's, not settleBatch's.
        const tx = (await ethers.provider.getTransaction(receipt.hash))!;
        expect(tx.to).to.equal(await relay.getAddress());
      });

      it("is not emitted when an account without code calls settleBatch itself: the calldata holds the batch", async function () {
        const { m, records } = await relayedSetup();
        const { receipt } = await settle(m, records, { from: m.others[0] });
        const names = receipt.logs.map((log) => m.tollgate.interface.parseLog(log)?.name);
        expect(names).to.include("BatchSettled");
        expect(names).to.not.include("BatchDataPublished");
      });

      it("a relayed batch that reverts leaves nothing behind, and the relay names the failed call", async function () {
        const { m, relay, records } = await relayedSetup();
        const batch = encodeUsageBatch(records);
        const stranger = privateKeyToAccount(generatePrivateKey());
        const call = m.tollgate.interface.encodeFunctionData("settleBatch", [batch, await signBatch(m.tollgate, stranger, batch)]);
        await expectNothingChanged(m, () =>
          expect(relay.relay(m.tollgate.getAddress(), [call])).to.be.revertedWithCustomError(relay, "RelayCallFailed").withArgs(0n, (reason: string) => {
            return m.tollgate.interface.parseError(reason)?.name === "SettlementUnauthorizedSigner";
          }),
        );
      });
    });

    describe("verifyReceiptSettled", function () {
      async function settledWithReceipts() {
        const m = await loadFixture(funded);
        // One batch first, so the proven batch does not start at sequence 0.
        await settle(m, recordsAt(0n, await smallCalls(m, m.buyers[3].address, 2)));
        const now = await latestTime();
        const { records, receipts } = await withReceipts(
          m.tollgate,
          recordsAt(2n, [
            { buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: now - 50 },
            { buyer: m.buyers[1].address, modelId: m.largeModel, servedAt: now - 40, cachedInputTokens: 300 },
            { buyer: m.buyers[0].address, modelId: m.largeModel, servedAt: now - 30, outputTokens: 9 },
            { buyer: m.buyers[2].address, modelId: m.smallModel, servedAt: now - 20, inputTokens: 5 },
            { buyer: m.buyers[1].address, modelId: m.smallModel, servedAt: now - 10 },
          ]),
        );
        const { batch, settled } = await settle(m, records);
        const header = usageBatchHeader(batch);
        const leaves = receipts.map(hashReceipt);
        return { m, records, receipts, batch, settled, header, leaves };
      }

      it("proves every receipt of a settled batch with its Merkle proof", async function () {
        const { m, receipts, header, leaves, settled } = await settledWithReceipts();
        expect(settled.contentRoot).to.equal(header.contentRoot);
        expect(receipts.reduce((sum, r) => sum + r.cost, 0n)).to.equal(settled.totalCost);
        for (let i = 0; i < receipts.length; i++) {
          expect(await m.tollgate.verifyReceiptSettled(m.gateway.address, header, receipts[i], merkleProof(leaves, i)), `receipt ${i}`).to.equal(true);
        }
      });

      it("returns false for a tampered receipt, or a proof of another leaf", async function () {
        const { m, receipts, header, leaves } = await settledWithReceipts();
        const proof = merkleProof(leaves, 2);
        expect(await m.tollgate.verifyReceiptSettled(m.gateway.address, header, receipts[2], proof)).to.equal(true);
        const tampered = [
          { ...receipts[2], cost: receipts[2].cost + 1n },
          { ...receipts[2], outputTokens: receipts[2].outputTokens + 1 },
          { ...receipts[2], buyer: m.buyers[1].address as Address },
          { ...receipts[2], contentHash: keccak256(toHex("another response")) },
        ];
        for (const receipt of tampered) {
          expect(await m.tollgate.verifyReceiptSettled(m.gateway.address, header, receipt, proof)).to.equal(false);
        }
        expect(await m.tollgate.verifyReceiptSettled(m.gateway.address, header, receipts[1], proof)).to.equal(false);
      });

      it("reverts with SettlementUnknownBatch for a batch never settled, another signer, or a header that is not the settled batch's", async function () {
        const { m, receipts, header, leaves } = await settledWithReceipts();
        const proof = merkleProof(leaves, 0);
        await expect(m.tollgate.verifyReceiptSettled(m.gateway.address, { ...header, firstSequence: 3n }, receipts[0], proof))
          .to.be.revertedWithCustomError(m.tollgate, "SettlementUnknownBatch")
          .withArgs(m.gateway.address, 3n);
        await expect(m.tollgate.verifyReceiptSettled(m.gateway.address, { ...header, firstSequence: 7n }, receipts[0], proof))
          .to.be.revertedWithCustomError(m.tollgate, "SettlementUnknownBatch")
          .withArgs(m.gateway.address, 7n);
        const stranger = privateKeyToAccount(generatePrivateKey()).address;
        await expect(m.tollgate.verifyReceiptSettled(stranger, header, receipts[0], proof))
          .to.be.revertedWithCustomError(m.tollgate, "SettlementUnknownBatch")
          .withArgs(stranger, 2n);
        for (const field of ["buyersHash", "modelsHash", "recordsHash", "contentRoot"] as const) {
          await expect(m.tollgate.verifyReceiptSettled(m.gateway.address, { ...header, [field]: keccak256(toHex(field)) }, receipts[0], proof))
            .to.be.revertedWithCustomError(m.tollgate, "SettlementUnknownBatch")
            .withArgs(m.gateway.address, 2n);
        }
        await expect(m.tollgate.verifyReceiptSettled(m.gateway.address, { ...header, baseTime: header.baseTime + 1 }, receipts[0], proof))
          .to.be.revertedWithCustomError(m.tollgate, "SettlementUnknownBatch")
          .withArgs(m.gateway.address, 2n);
      });
    });
  });
});
