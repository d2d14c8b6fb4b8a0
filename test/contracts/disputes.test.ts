/**
 * Provider bonds and fraud proofs against a lying gateway (issue 10, part 3), on Hardhat's network with real
 * EIP-712 receipts signed by gateway keys: each kind of proof slashes once, awards the right buyer, compromises
 * the signer; every bad proof reverts with its named error and changes nothing; an honest gateway cannot be
 * slashed by any receipt it really issued. Awards wait in a bucket for BOND_WITHDRAWAL_DELAY, so a provider that
 * proves its own fraud to a buyer address it controls gets its bond out no sooner than by a bond withdrawal.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import fc from "fast-check";
import { keccak256, recoverTypedDataAddress, toHex, type Address, type Hex, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { deployMarketplace, USD } from "../../scripts/lib/marketplace-fixtures";
import { tollgateDomain, usageReceiptTypes } from "../../server/chain/eip712";
import { signUsageReceipt } from "../../server/chain/sign-batch";
import { merkleProof } from "../../server/chain/merkle";
import { recordCost } from "../../server/chain/pricing";
import { encodeUsageBatch, hashReceipt, usageBatchHeader, type UsageReceipt, type UsageRecord } from "../../server/chain/usage-batch";
import {
  expectConservation,
  expectNothingChanged,
  latestTime,
  marketState,
  nextSequence,
  pricesOf,
  recordsAt,
  settle,
  signerStanding,
  withReceipts,
  type Call,
} from "../helpers/settlement-kit";
import { signBatch } from "../helpers/batches";

const BOND = USD(1_000);
const DAY = 24 * 3600;
const KIND = { recordMismatch: 0n, contentMismatch: 1n, equivocation: 2n };

/** The marketplace an hour after listing, buyers 0..3 with $100 in the vault, the provider bonded with $1,000. */
async function bonded() {
  const m = await deployMarketplace();
  await time.increase(3_600);
  for (const buyer of m.buyers.slice(0, 4)) await m.tollgate.connect(buyer).deposit(buyer.address, USD(100));
  await m.token.mint(m.provider.address, USD(10_000));
  await m.token.connect(m.provider).approve(await m.tollgate.getAddress(), ethers.MaxUint256);
  await m.tollgate.connect(m.provider).postBond(m.providerId, BOND);
  return m;
}
type M = Awaited<ReturnType<typeof bonded>>;

async function deploymentOf(m: M) {
  return { chainId: m.chainId, address: (await m.tollgate.getAddress()) as Address };
}

async function sign(m: M, receipt: UsageReceipt, signer: LocalAccount = m.gateway): Promise<Hex> {
  return signUsageReceipt(signer, await deploymentOf(m), receipt);
}

/** `count` small-model calls of `buyer` served in the last minutes. */
async function calls(m: M, buyer: string, count: number, extra: Partial<Call> = {}): Promise<Call[]> {
  const now = await latestTime();
  return Array.from({ length: count }, (_, i) => ({ buyer, modelId: m.smallModel, servedAt: now - 100 + i, ...extra }));
}

/** Receipts (real, signed) for `calls` from the gateway's next sequence, and their records, not yet settled. */
async function issue(m: M, callList: Call[]) {
  const first = await nextSequence(m.tollgate, m.gateway.address);
  const { records, receipts } = await withReceipts(m.tollgate, recordsAt(first, callList));
  const signatures = await Promise.all(receipts.map((r) => sign(m, r)));
  return { records, receipts, signatures };
}

/** An honest gateway: issues receipts for `callList` and settles exactly those records. */
async function honest(m: M, callList: Call[]) {
  const issued = await issue(m, callList);
  const settled = await settle(m, issued.records);
  return { ...issued, ...settled };
}

const bondOf = async (m: M) => {
  const [available, pending, withdrawableAt] = await m.tollgate.bondOf(m.providerId);
  return { available, pending, withdrawableAt };
};
const balanceOf = async (m: M, who: string) => (await m.tollgate.accountOf(who)).balance;
const awardOf = async (m: M, who: string) => (await m.tollgate.disputeAwardOf(who))[0];
/** When an award made in the latest block can be claimed. */
const claimableFromNow = async (m: M) => BigInt(await latestTime()) + (await m.tollgate.BOND_WITHDRAWAL_DELAY());

/** The penalty the contract takes: 10% of what is left of the bond after the refund. */
const penaltyOn = (bond: bigint, refund: bigint) => ((bond - (refund < bond ? refund : bond)) * 1_000n) / 10_000n;

/** After a successful proof: the signer is out for good. */
async function expectCompromised(m: M) {
  expect(await signerStanding(m.tollgate, m.gateway.address)).to.deep.equal([false, true]);
  const { records } = await issue(m, await calls(m, m.buyers[0].address, 1));
  const batch = encodeUsageBatch(records);
  await expect(m.tollgate.settleBatch(batch, await signBatch(m.tollgate, m.gateway, batch)))
    .to.be.revertedWithCustomError(m.tollgate, "SettlementSignerCompromised")
    .withArgs(m.gateway.address);
  await expect(m.tollgate.connect(m.provider).setSignerAuthorization(m.providerId, m.gateway.address, true))
    .to.be.revertedWithCustomError(m.tollgate, "RegistrySignerCompromised")
    .withArgs(m.gateway.address);
}

/** `expectNothingChanged` over the buyers, the bond, the gateway's standing, and every proven flag in `sequences`. */
async function expectRefused(m: M, attempt: () => Promise<unknown>, sequences: bigint[] = []) {
  const proven = async () => Promise.all(sequences.map((s) => m.tollgate.isFraudProven(m.gateway.address, s)));
  const before = await proven();
  await expectNothingChanged(m, attempt);
  expect(await proven()).to.deep.equal(before);
}

describe("Provider bonds", function () {
  it("posts a bond from anyone, crediting what arrived, and keeps the vault's tokens accounted for", async function () {
    const m = await loadFixture(bonded);
    const stranger = m.buyers[5];
    await m.token.connect(stranger).approve(await m.tollgate.getAddress(), USD(50));
    await expect(m.tollgate.connect(stranger).postBond(m.providerId, USD(50)))
      .to.emit(m.tollgate, "BondPosted")
      .withArgs(m.providerId, stranger.address, USD(50));
    expect(await bondOf(m)).to.deep.equal({ available: BOND + USD(50), pending: 0n, withdrawableAt: 0n });
    await expectConservation(m);
  });

  it("refuses a zero bond, an unknown provider and an overflowing bond", async function () {
    const m = await loadFixture(bonded);
    await expectRefused(m, () => expect(m.tollgate.connect(m.provider).postBond(m.providerId, 0)).to.be.revertedWithCustomError(m.tollgate, "BondZeroAmount"));
    await expectRefused(m, () =>
      expect(m.tollgate.connect(m.provider).postBond(9, 1)).to.be.revertedWithCustomError(m.tollgate, "RegistryUnknownProvider").withArgs(9),
    );
    const max = await m.tollgate.MAX_BOND();
    await m.token.mint(m.provider.address, max);
    await expectRefused(m, () =>
      expect(m.tollgate.connect(m.provider).postBond(m.providerId, max))
        .to.be.revertedWithCustomError(m.tollgate, "BondOverflow")
        .withArgs(m.providerId, BOND, max),
    );
  });

  it("keeps the withdrawal delay longer than the dispute window", async function () {
    const m = await loadFixture(bonded);
    expect(await m.tollgate.BOND_WITHDRAWAL_DELAY()).to.be.greaterThan(await m.tollgate.DISPUTE_WINDOW());
  });

  it("moves a requested amount to pending, restarts the delay on each request, and pays it out only after the delay", async function () {
    const m = await loadFixture(bonded);
    const delay = await m.tollgate.BOND_WITHDRAWAL_DELAY();
    const at1 = BigInt(await latestTime()) + 1n + delay;
    await expect(m.tollgate.connect(m.provider).requestBondWithdrawal(m.providerId, USD(300))).to.emit(m.tollgate, "BondWithdrawalRequested").withArgs(m.providerId, USD(300), USD(300), at1);
    await time.increase(DAY);
    await m.tollgate.connect(m.provider).requestBondWithdrawal(m.providerId, USD(100));
    const at2 = BigInt(await latestTime()) + delay;
    expect(await bondOf(m)).to.deep.equal({ available: USD(600), pending: USD(400), withdrawableAt: at2 });

    await time.increaseTo(at1);
    await expectRefused(m, () =>
      expect(m.tollgate.connect(m.provider).withdrawBond(m.providerId))
        .to.be.revertedWithCustomError(m.tollgate, "BondWithdrawalNotReady")
        .withArgs(m.providerId, at2, at1 + 1n),
    );
    await time.increaseTo(at2);
    const payoutBefore = await m.token.balanceOf(m.provider.address);
    await expect(m.tollgate.connect(m.provider).withdrawBond(m.providerId))
      .to.emit(m.tollgate, "BondWithdrawn")
      .withArgs(m.providerId, m.provider.address, USD(400));
    expect(await m.token.balanceOf(m.provider.address)).to.equal(payoutBefore + USD(400));
    expect(await bondOf(m)).to.deep.equal({ available: USD(600), pending: 0n, withdrawableAt: 0n });
    await expectConservation(m);
    await expect(m.tollgate.connect(m.provider).withdrawBond(m.providerId))
      .to.be.revertedWithCustomError(m.tollgate, "BondNoPendingWithdrawal")
      .withArgs(m.providerId);
  });

  it("cancels a pending withdrawal back into the available bond", async function () {
    const m = await loadFixture(bonded);
    await m.tollgate.connect(m.provider).requestBondWithdrawal(m.providerId, USD(250));
    await expect(m.tollgate.connect(m.provider).cancelBondWithdrawal(m.providerId))
      .to.emit(m.tollgate, "BondWithdrawalCancelled")
      .withArgs(m.providerId, USD(250));
    expect(await bondOf(m)).to.deep.equal({ available: BOND, pending: 0n, withdrawableAt: 0n });
    await expectRefused(m, () =>
      expect(m.tollgate.connect(m.provider).cancelBondWithdrawal(m.providerId))
        .to.be.revertedWithCustomError(m.tollgate, "BondNoPendingWithdrawal")
        .withArgs(m.providerId),
    );
  });

  it("lets only the provider's owner request, cancel or withdraw, and never more than is available", async function () {
    const m = await loadFixture(bonded);
    const stranger = m.buyers[0];
    for (const attempt of [
      () => m.tollgate.connect(stranger).requestBondWithdrawal(m.providerId, 1),
      () => m.tollgate.connect(stranger).cancelBondWithdrawal(m.providerId),
      () => m.tollgate.connect(stranger).withdrawBond(m.providerId),
    ]) {
      await expectRefused(m, () =>
        expect(attempt()).to.be.revertedWithCustomError(m.tollgate, "RegistryNotProviderOwner").withArgs(m.providerId, stranger.address),
      );
    }
    await expectRefused(m, () =>
      expect(m.tollgate.connect(m.provider).requestBondWithdrawal(m.providerId, BOND + 1n))
        .to.be.revertedWithCustomError(m.tollgate, "BondInsufficient")
        .withArgs(m.providerId, BOND, BOND + 1n),
    );
    await expectRefused(m, () =>
      expect(m.tollgate.connect(m.provider).requestBondWithdrawal(m.providerId, 0)).to.be.revertedWithCustomError(m.tollgate, "BondZeroAmount"),
    );
  });
});

describe("Gateway fraud proofs", function () {
  describe("a settled record that differs from the receipt (kind 0)", function () {
    it("awards the overcharge and a 10% penalty to the buyer, compromises the signer, and emits GatewayFraudProven", async function () {
      const m = await loadFixture(bonded);
      const buyer = m.buyers[0].address;
      const { receipts, signatures, records } = await issue(m, await calls(m, buyer, 3));
      // The gateway told the buyer 500 output tokens for the second call and settles 5,000.
      const lying = records.map((r, i) => (i === 1 ? { ...r, outputTokens: 5_000 } : r));
      const { batch } = await settle(m, lying);
      const charged = recordCost(lying[1], await pricesOf(m.tollgate, m.smallModel, 0));
      const refund = charged - receipts[1].cost;
      expect(refund).to.be.greaterThan(0n);
      const penalty = penaltyOn(BOND, refund);
      const before = await balanceOf(m, buyer);

      await expect(m.tollgate.connect(m.buyers[0]).proveSettledRecordMismatch(receipts[1], signatures[1], batch))
        .to.emit(m.tollgate, "GatewayFraudProven")
        .withArgs(m.gateway.address, m.providerId, receipts[1].sequence, KIND.recordMismatch, buyer, refund, buyer, penalty)
        .and.to.emit(m.tollgate, "SignerAuthorizationChanged")
        .withArgs(m.gateway.address, m.providerId, false);
      // Into the award bucket, not the spendable balance: one DisputeAwarded per award, the clock restarted.
      const claimableAt = await claimableFromNow(m);
      const proof = await m.tollgate.queryFilter(m.tollgate.filters.DisputeAwarded(buyer), "latest");
      expect(proof.map((e) => [...e.args])).to.deep.equal([
        [buyer, refund, refund, claimableAt],
        [buyer, penalty, refund + penalty, claimableAt],
      ]);
      expect(await balanceOf(m, buyer)).to.equal(before);
      expect(await m.tollgate.disputeAwardOf(buyer)).to.deep.equal([refund + penalty, claimableAt]);
      expect(await bondOf(m)).to.deep.equal({ available: BOND - refund - penalty, pending: 0n, withdrawableAt: 0n });
      expect(await m.tollgate.isFraudProven(m.gateway.address, receipts[1].sequence)).to.equal(true);
      await expectConservation(m);
      await expectCompromised(m);
    });

    // Each field the gateway can lie about, as a receipt that differs from the (honest) settled record.
    const lies: [string, (r: UsageReceipt, m: M) => UsageReceipt][] = [
      ["another buyer", (r, m) => ({ ...r, buyer: m.buyers[1].address as Address })],
      ["another model", (r, m) => ({ ...r, modelId: Number(m.largeModel) })],
      ["fewer input tokens", (r) => ({ ...r, inputTokens: r.inputTokens - 1 })],
      ["more cached input tokens", (r) => ({ ...r, cachedInputTokens: r.cachedInputTokens + 1 })],
      ["fewer output tokens", (r) => ({ ...r, outputTokens: r.outputTokens - 1 })],
      ["another serving time", (r) => ({ ...r, servedAt: r.servedAt + 1 })],
      ["a lower input price than the settled epoch's", (r) => ({ ...r, inputPrice: r.inputPrice - 1n })],
      ["a lower cached price than the settled epoch's", (r) => ({ ...r, cachedInputPrice: r.cachedInputPrice - 1n })],
      ["a lower output price than the settled epoch's", (r) => ({ ...r, outputPrice: r.outputPrice - 1n })],
    ];
    for (const [what, lie] of lies) {
      it(`slashes once for a receipt with ${what}`, async function () {
        const m = await loadFixture(bonded);
        const { receipts, batch } = await honest(m, await calls(m, m.buyers[0].address, 2));
        const told = lie(receipts[0], m);
        const signature = await sign(m, told);
        const settledCost = receipts[0].cost;
        const refund = told.buyer === receipts[0].buyer ? (settledCost > told.cost ? settledCost - told.cost : 0n) : settledCost;
        const tx = m.tollgate.proveSettledRecordMismatch(told, signature, batch);
        await expect(tx)
          .to.emit(m.tollgate, "GatewayFraudProven")
          .withArgs(m.gateway.address, m.providerId, told.sequence, KIND.recordMismatch, receipts[0].buyer, refund, told.buyer, penaltyOn(BOND, refund));
        await expectConservation(m);
        await expectRefused(
          m,
          () =>
            expect(m.tollgate.proveSettledRecordMismatch(told, signature, batch))
              .to.be.revertedWithCustomError(m.tollgate, "DisputeAlreadyProven")
              .withArgs(m.gateway.address, told.sequence),
          [told.sequence],
        );
      });
    }

    it("charges the whole record to the bond when the record's buyer is not the receipt's", async function () {
      const m = await loadFixture(bonded);
      const [victim, holder] = [m.buyers[2].address, m.buyers[0].address];
      const { receipts, signatures, records } = await issue(m, await calls(m, holder, 1));
      const { batch } = await settle(m, records.map((r) => ({ ...r, buyer: victim as Address })));
      const penalty = penaltyOn(BOND, receipts[0].cost);
      await expect(m.tollgate.proveSettledRecordMismatch(receipts[0], signatures[0], batch))
        .to.emit(m.tollgate, "GatewayFraudProven")
        .withArgs(m.gateway.address, m.providerId, receipts[0].sequence, KIND.recordMismatch, victim, receipts[0].cost, holder, penalty);
      expect([await awardOf(m, victim), await awardOf(m, holder)]).to.deep.equal([receipts[0].cost, penalty]);
      await expectConservation(m);
    });

    it("takes from the pending bond once the available bond is gone, and never more than the bond holds", async function () {
      const m = await loadFixture(bonded);
      await m.tollgate.connect(m.provider).requestBondWithdrawal(m.providerId, BOND - 1n);
      const buyer = m.buyers[0].address;
      const { receipts, signatures, records } = await issue(m, await calls(m, buyer, 1));
      // A record worth more than the whole bond: 4e9 output tokens of the large model.
      const { batch } = await settle(m, records.map((r) => ({ ...r, modelId: Number(m.largeModel), outputTokens: 4_000_000_000 })));
      await expect(m.tollgate.proveSettledRecordMismatch(receipts[0], signatures[0], batch))
        .to.emit(m.tollgate, "GatewayFraudProven")
        .withArgs(m.gateway.address, m.providerId, receipts[0].sequence, KIND.recordMismatch, buyer, BOND, buyer, 0n);
      const bond = await bondOf(m);
      expect([bond.available, bond.pending]).to.deep.equal([0n, 0n]);
      await expectConservation(m);
      // The withdrawal closes cleanly with nothing to send.
      await time.increase(Number(await m.tollgate.BOND_WITHDRAWAL_DELAY()));
      await expect(m.tollgate.connect(m.provider).withdrawBond(m.providerId)).to.emit(m.tollgate, "BondWithdrawn").withArgs(m.providerId, m.provider.address, 0n);
    });
  });

  describe("a content root holding another receipt for the sequence (kind 1)", function () {
    it("slashes when the batch commits to another content hash than the buyer's receipt", async function () {
      const m = await loadFixture(bonded);
      const buyer = m.buyers[1].address;
      const { receipts, signatures, records } = await issue(m, await calls(m, buyer, 4));
      // Settled with the same counts, but the leaf for sequence 2 commits to another response.
      const swapped: UsageReceipt = { ...receipts[2], contentHash: keccak256(toHex("another response")) };
      const leaves = records.map((r, i) => (i === 2 ? hashReceipt(swapped) : r.receiptHash));
      const { batch } = await settle(m, records.map((r, i) => ({ ...r, receiptHash: leaves[i] })));
      const penalty = penaltyOn(BOND, 0n);
      await expect(m.tollgate.proveContentMismatch(receipts[2], signatures[2], usageBatchHeader(batch), swapped, merkleProof(leaves, 2)))
        .to.emit(m.tollgate, "GatewayFraudProven")
        .withArgs(m.gateway.address, m.providerId, receipts[2].sequence, KIND.contentMismatch, buyer, 0n, buyer, penalty);
      expect(await awardOf(m, buyer)).to.equal(penalty);
      await expectConservation(m);
      await expectCompromised(m);
    });

    it("refunds the difference when the committed receipt costs more", async function () {
      const m = await loadFixture(bonded);
      const buyer = m.buyers[1].address;
      const { receipts, signatures, records } = await issue(m, await calls(m, buyer, 2));
      const inflated: UsageReceipt = { ...receipts[0], cost: receipts[0].cost + 777n };
      const leaves = [hashReceipt(inflated), records[1].receiptHash];
      const { batch } = await settle(m, records.map((r, i) => ({ ...r, receiptHash: leaves[i] })));
      await expect(m.tollgate.proveContentMismatch(receipts[0], signatures[0], usageBatchHeader(batch), inflated, merkleProof(leaves, 0)))
        .to.emit(m.tollgate, "GatewayFraudProven")
        .withArgs(m.gateway.address, m.providerId, receipts[0].sequence, KIND.contentMismatch, buyer, 777n, buyer, penaltyOn(BOND, 777n));
      await expectConservation(m);
    });

    it("refuses a leaf not under the root, a leaf of another sequence and an over-long proof", async function () {
      const m = await loadFixture(bonded);
      const { receipts, signatures, batch, records } = await honest(m, await calls(m, m.buyers[0].address, 3));
      const header = usageBatchHeader(batch);
      const leaves = records.map((r) => r.receiptHash);
      const stranger: UsageReceipt = { ...receipts[0], contentHash: keccak256(toHex("never committed")) };
      await expectRefused(m, () =>
        expect(m.tollgate.proveContentMismatch(receipts[0], signatures[0], header, stranger, merkleProof(leaves, 0)))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeInvalidMerkleProof")
          .withArgs(hashReceipt(stranger), batch.contentRoot),
      );
      await expectRefused(m, () =>
        expect(m.tollgate.proveContentMismatch(receipts[0], signatures[0], header, receipts[1], merkleProof(leaves, 1)))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeSequenceMismatch")
          .withArgs(receipts[0].sequence, receipts[1].sequence),
      );
      const tooLong = Array.from({ length: 25 }, (_, i) => keccak256(toHex(i)));
      await expectRefused(m, () =>
        expect(m.tollgate.proveContentMismatch(receipts[0], signatures[0], header, stranger, tooLong))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeProofTooLong")
          .withArgs(25, 24),
      );
    });
  });

  describe("two receipts for one sequence (kind 2)", function () {
    it("slashes the penalty to the first receipt's buyer, settled or not, and compromises the signer", async function () {
      const m = await loadFixture(bonded);
      const { receipts, signatures } = await issue(m, await calls(m, m.buyers[0].address, 1));
      const twin: UsageReceipt = { ...receipts[0], buyer: m.buyers[3].address as Address, contentHash: keccak256(toHex("twin")) };
      const twinSignature = await sign(m, twin);
      const holder = m.buyers[0].address;
      await expect(m.tollgate.proveEquivocation(receipts[0], signatures[0], twin, twinSignature))
        .to.emit(m.tollgate, "GatewayFraudProven")
        .withArgs(m.gateway.address, m.providerId, receipts[0].sequence, KIND.equivocation, twin.buyer, 0n, holder, penaltyOn(BOND, 0n));
      expect(await awardOf(m, holder)).to.equal(penaltyOn(BOND, 0n));
      await expectConservation(m);
      await expectCompromised(m);
      // One proof per (signer, sequence) among the proofs built from receipts alone.
      await expectRefused(
        m,
        () =>
          expect(m.tollgate.proveEquivocation(twin, twinSignature, receipts[0], signatures[0]))
            .to.be.revertedWithCustomError(m.tollgate, "DisputeAlreadyProven")
            .withArgs(m.gateway.address, receipts[0].sequence),
        [receipts[0].sequence],
      );
    });

    it("cannot pre-empt a buyer's refund: the settled-record proof still pays after the gateway proves the sequence against itself", async function () {
      const m = await loadFixture(bonded);
      const { receipts, batch } = await honest(m, await calls(m, m.buyers[0].address, 2));
      // The buyer was told fewer output tokens and a lower cost than the chain charged it.
      const told: UsageReceipt = { ...receipts[0], outputTokens: receipts[0].outputTokens - 10, cost: receipts[0].cost - 5n };
      const toldSignature = await sign(m, told);
      // The lying gateway races the buyer with a proof only it can build: a second receipt for the sequence, to an
      // address it controls.
      const accomplice = m.others[1].address as Address;
      const twin: UsageReceipt = { ...told, buyer: accomplice, contentHash: keccak256(toHex("pre-emption")) };
      await m.tollgate.proveEquivocation(twin, await sign(m, twin), told, toldSignature);
      const afterSelfProof = (await bondOf(m)).available;
      expect(await m.tollgate.isFraudProven(m.gateway.address, told.sequence)).to.equal(false);

      await expect(m.tollgate.connect(m.buyers[0]).proveSettledRecordMismatch(told, toldSignature, batch))
        .to.emit(m.tollgate, "GatewayFraudProven")
        .withArgs(m.gateway.address, m.providerId, told.sequence, KIND.recordMismatch, receipts[0].buyer, 5n, told.buyer, penaltyOn(afterSelfProof, 5n));
      expect(await awardOf(m, receipts[0].buyer)).to.equal(5n + penaltyOn(afterSelfProof, 5n));
      expect(await m.tollgate.isFraudProven(m.gateway.address, told.sequence)).to.equal(true);
      await expectConservation(m);
      // Each space still takes one proof per (signer, sequence).
      await expectRefused(
        m,
        () =>
          expect(m.tollgate.proveSettledRecordMismatch(told, toldSignature, batch))
            .to.be.revertedWithCustomError(m.tollgate, "DisputeAlreadyProven")
            .withArgs(m.gateway.address, told.sequence),
        [told.sequence],
      );
    });

    it("refuses receipts of two signers or two sequences", async function () {
      const m = await loadFixture(bonded);
      const { receipts, signatures } = await issue(m, await calls(m, m.buyers[0].address, 2));
      const second = privateKeyToAccount(generatePrivateKey());
      await m.tollgate.connect(m.provider).setSignerAuthorization(m.providerId, second.address, true);
      const twin: UsageReceipt = { ...receipts[0], contentHash: keccak256(toHex("twin")) };
      await expectRefused(m, async () =>
        expect(m.tollgate.proveEquivocation(receipts[0], signatures[0], twin, await sign(m, twin, second)))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeSignerMismatch")
          .withArgs(m.gateway.address, second.address),
      );
      await expectRefused(m, () =>
        expect(m.tollgate.proveEquivocation(receipts[0], signatures[0], receipts[1], signatures[1]))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeSequenceMismatch")
          .withArgs(receipts[0].sequence, receipts[1].sequence),
      );
    });
  });

  describe("proofs that change nothing", function () {
    async function lyingBatch(m: M) {
      const buyer = m.buyers[0].address;
      const { receipts, signatures, records } = await issue(m, await calls(m, buyer, 2));
      const twin: UsageReceipt = { ...receipts[0], contentHash: keccak256(toHex("twin")) };
      const leaves = [hashReceipt(twin), records[1].receiptHash];
      const { batch } = await settle(m, records.map((r, i) => ({ ...r, outputTokens: r.outputTokens + 1, receiptHash: leaves[i] })));
      return { receipts, signatures, batch, twin, twinSignature: await sign(m, twin), leaves };
    }

    it("refuses every kind of proof once the dispute window has closed", async function () {
      const m = await loadFixture(bonded);
      const { receipts, signatures, batch, twin, twinSignature, leaves } = await lyingBatch(m);
      const settledAt = BigInt(await latestTime());
      const window = await m.tollgate.DISPUTE_WINDOW();
      await time.increaseTo(settledAt + window + 1n);
      const closed = settledAt + window;
      const nowNext = closed + 2n;
      await expectRefused(m, () =>
        expect(m.tollgate.proveSettledRecordMismatch(receipts[0], signatures[0], batch))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeWindowClosed")
          .withArgs(closed, nowNext),
      [receipts[0].sequence]);
      await expectRefused(m, async () => {
        const next = BigInt(await latestTime()) + 1n;
        await expect(m.tollgate.proveContentMismatch(receipts[0], signatures[0], usageBatchHeader(batch), twin, merkleProof(leaves, 0)))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeWindowClosed")
          .withArgs(closed, next);
      }, [receipts[0].sequence]);
      // Equivocation counts from the later serving time, which is before settlement: closed too.
      await expectRefused(m, async () => {
        const next = BigInt(await latestTime()) + 1n;
        await expect(m.tollgate.proveEquivocation(receipts[0], signatures[0], twin, twinSignature))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeWindowClosed")
          .withArgs(BigInt(receipts[0].servedAt) + window, next);
      }, [receipts[0].sequence]);
    });

    it("accepts a proof on the last second of the window", async function () {
      const m = await loadFixture(bonded);
      const { receipts, signatures, batch } = await lyingBatch(m);
      const settledAt = BigInt(await latestTime());
      await time.setNextBlockTimestamp(settledAt + (await m.tollgate.DISPUTE_WINDOW()));
      await expect(m.tollgate.proveSettledRecordMismatch(receipts[0], signatures[0], batch)).to.emit(m.tollgate, "GatewayFraudProven");
    });

    it("refuses forged receipts: a key no provider authorized, another chain, another contract", async function () {
      const m = await loadFixture(bonded);
      const { receipts, batch, twin, leaves } = await lyingBatch(m);
      const deployment = await deploymentOf(m);
      const outsider = privateKeyToAccount(generatePrivateKey());
      const forgeries: [string, Hex][] = [
        ["a key no provider authorized", await signUsageReceipt(outsider, deployment, receipts[0])],
        ["another chain", await signUsageReceipt(m.gateway, { ...deployment, chainId: 1n }, receipts[0])],
        ["another contract", await signUsageReceipt(m.gateway, { ...deployment, address: m.provider.address as Address }, receipts[0])],
      ];
      for (const [what, signature] of forgeries) {
        // What the contract recovers: the signature read under its own domain.
        const recovered = await recoverTypedDataAddress({
          domain: tollgateDomain(m.chainId, deployment.address),
          types: usageReceiptTypes,
          primaryType: "UsageReceipt",
          message: receipts[0],
          signature,
        });
        expect(recovered, what).to.not.equal(m.gateway.address);
        for (const attempt of [
          () => m.tollgate.proveSettledRecordMismatch(receipts[0], signature, batch),
          () => m.tollgate.proveContentMismatch(receipts[0], signature, usageBatchHeader(batch), twin, merkleProof(leaves, 0)),
          () => m.tollgate.proveEquivocation(receipts[0], signature, receipts[0], signature),
        ]) {
          await expectRefused(m, () => expect(attempt(), what).to.be.revertedWithCustomError(m.tollgate, "DisputeUnknownSigner").withArgs(recovered), [receipts[0].sequence]);
        }
      }
    });

    it("refuses a batch the signer did not settle and a sequence outside the batch", async function () {
      const m = await loadFixture(bonded);
      const { receipts, signatures, batch } = await lyingBatch(m);
      await expectRefused(m, () =>
        expect(m.tollgate.proveSettledRecordMismatch(receipts[0], signatures[0], { ...batch, baseTime: batch.baseTime + 1 }))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeUnknownBatch")
          .withArgs(m.gateway.address, batch.firstSequence),
      );
      const { receipts: later, signatures: laterSignatures } = await honest(m, await calls(m, m.buyers[1].address, 1));
      await expectRefused(m, () =>
        expect(m.tollgate.proveSettledRecordMismatch(later[0], laterSignatures[0], batch))
          .to.be.revertedWithCustomError(m.tollgate, "DisputeSequenceNotInBatch")
          .withArgs(later[0].sequence, batch.firstSequence, 2),
      );
    });

    it("refuses proofs with no discrepancy: the honest receipt against its record, its own leaf, itself", async function () {
      const m = await loadFixture(bonded);
      const { receipts, signatures, batch, records } = await honest(m, await calls(m, m.buyers[0].address, 3));
      const leaves = records.map((r) => r.receiptHash);
      for (const [i, receipt] of receipts.entries()) {
        const noDiscrepancy = (tx: Promise<unknown>) =>
          expect(tx).to.be.revertedWithCustomError(m.tollgate, "DisputeNoDiscrepancy").withArgs(m.gateway.address, receipt.sequence);
        await expectRefused(m, () => noDiscrepancy(m.tollgate.proveSettledRecordMismatch(receipt, signatures[i], batch)), [receipt.sequence]);
        await expectRefused(
          m,
          () => noDiscrepancy(m.tollgate.proveContentMismatch(receipt, signatures[i], usageBatchHeader(batch), receipt, merkleProof(leaves, i))),
          [receipt.sequence],
        );
        // Two signatures over one receipt are one statement, not two.
        const again = await sign(m, receipt);
        await expectRefused(m, () => noDiscrepancy(m.tollgate.proveEquivocation(receipt, signatures[i], receipt, again)), [receipt.sequence]);
      }
    });

    it("keeps a revoked key answerable for what it signed", async function () {
      const m = await loadFixture(bonded);
      const { receipts, signatures, batch } = await lyingBatch(m);
      await m.tollgate.connect(m.provider).setSignerAuthorization(m.providerId, m.gateway.address, false);
      await expect(m.tollgate.proveSettledRecordMismatch(receipts[0], signatures[0], batch)).to.emit(m.tollgate, "GatewayFraudProven");
      expect(await signerStanding(m.tollgate, m.gateway.address)).to.deep.equal([false, true]);
    });
  });

  describe("dispute awards", function () {
    /** Two different receipts by `signer` for `sequence`, naming `holder`, proven: the penalty goes to `holder`. */
    async function equivocate(m: M, holder: string, sequence: bigint, signer: LocalAccount = m.gateway) {
      const [served] = (await issue(m, await calls(m, holder, 1))).receipts;
      const receipt: UsageReceipt = { ...served, sequence };
      const twin: UsageReceipt = { ...receipt, contentHash: keccak256(toHex(`twin ${sequence}`)) };
      const { available, pending } = await bondOf(m);
      const penalty = penaltyOn(available + pending, 0n);
      const [awarded] = await m.tollgate.disputeAwardOf(holder);
      const tx = await m.tollgate.proveEquivocation(receipt, await sign(m, receipt, signer), twin, await sign(m, twin, signer));
      await expect(tx)
        .to.emit(m.tollgate, "DisputeAwarded")
        .withArgs(holder, penalty, awarded + penalty, await claimableFromNow(m));
      return penalty;
    }

    it("refuses a claim with no award, and one before the delay, changing nothing", async function () {
      const m = await loadFixture(bonded);
      const holder = m.buyers[0];
      await expectRefused(m, () =>
        expect(m.tollgate.connect(holder).claimDisputeAwards()).to.be.revertedWithCustomError(m.tollgate, "DisputeNoAward").withArgs(holder.address),
      );
      await equivocate(m, holder.address, 0n);
      const [, claimableAt] = await m.tollgate.disputeAwardOf(holder.address);
      await time.setNextBlockTimestamp(claimableAt - 1n);
      await expectRefused(m, () =>
        expect(m.tollgate.connect(holder).claimDisputeAwards())
          .to.be.revertedWithCustomError(m.tollgate, "DisputeAwardNotReady")
          .withArgs(holder.address, claimableAt, claimableAt - 1n),
      );
    });

    it("pays the whole bucket in tokens after the delay, even while paused, and empties it", async function () {
      const m = await loadFixture(bonded);
      const holder = m.buyers[0];
      const award = await equivocate(m, holder.address, 0n);
      const [, claimableAt] = await m.tollgate.disputeAwardOf(holder.address);
      await m.tollgate.connect(m.owner).pause();
      await time.setNextBlockTimestamp(claimableAt);
      const [wallet, balance] = [await m.token.balanceOf(holder.address), await balanceOf(m, holder.address)];
      await expect(m.tollgate.connect(holder).claimDisputeAwards()).to.emit(m.tollgate, "DisputeAwardClaimed").withArgs(holder.address, award);
      expect(await m.token.balanceOf(holder.address)).to.equal(wallet + award);
      expect(await balanceOf(m, holder.address)).to.equal(balance);
      expect(await m.tollgate.disputeAwardOf(holder.address)).to.deep.equal([0n, 0n]);
      await expectConservation(m);
      await expectRefused(m, () =>
        expect(m.tollgate.connect(holder).claimDisputeAwards()).to.be.revertedWithCustomError(m.tollgate, "DisputeNoAward").withArgs(holder.address),
      );
    });

    it("restarts a beneficiary's clock with each later award", async function () {
      const m = await loadFixture(bonded);
      const holder = m.buyers[0];
      const first = await equivocate(m, holder.address, 0n);
      const [, firstClaimableAt] = await m.tollgate.disputeAwardOf(holder.address);
      await time.increase(10 * DAY);
      // The compromised key is still answerable for another sequence it signed.
      const second = await equivocate(m, holder.address, 1n);
      const secondClaimableAt = await claimableFromNow(m);
      expect(await m.tollgate.disputeAwardOf(holder.address)).to.deep.equal([first + second, secondClaimableAt]);
      await time.setNextBlockTimestamp(firstClaimableAt);
      await expectRefused(m, () =>
        expect(m.tollgate.connect(holder).claimDisputeAwards())
          .to.be.revertedWithCustomError(m.tollgate, "DisputeAwardNotReady")
          .withArgs(holder.address, secondClaimableAt, firstClaimableAt),
      );
      await time.setNextBlockTimestamp(secondClaimableAt);
      await expect(m.tollgate.connect(holder).claimDisputeAwards()).to.emit(m.tollgate, "DisputeAwardClaimed").withArgs(holder.address, first + second);
      await expectConservation(m);
    });

    it("gives a provider proving its own fraud no bond money sooner than a bond withdrawal would", async function () {
      const m = await loadFixture(bonded);
      // A buyer address the provider controls, with nothing in the vault, and fresh gateway keys to burn. Had the
      // provider asked for its bond back instead, at the start, it would have had it at start + delay.
      const accomplice = m.others[0];
      const delay = await m.tollgate.BOND_WITHDRAWAL_DELAY();
      const start = BigInt(await latestTime());
      let taken = 0n;
      for (let i = 0; i < 3; i++) {
        const key = privateKeyToAccount(generatePrivateKey());
        await m.tollgate.connect(m.provider).setSignerAuthorization(m.providerId, key.address, true);
        taken += await equivocate(m, accomplice.address, 0n, key);
      }
      const [award, claimableAt] = await m.tollgate.disputeAwardOf(accomplice.address);
      expect(award).to.equal(taken);
      expect(claimableAt).to.be.greaterThan(start + delay);
      // Nothing spendable, nothing to withdraw, nothing to claim until then.
      expect([...(await m.tollgate.accountOf(accomplice.address))]).to.deep.equal([0n, 0n, 0n]);
      await expectNothingChanged(
        m,
        () =>
          expect(m.tollgate.connect(accomplice).requestWithdrawal(1))
            .to.be.revertedWithCustomError(m.tollgate, "VaultInsufficientBalance")
            .withArgs(accomplice.address, 0n, 1n),
        [accomplice.address],
      );
      await time.setNextBlockTimestamp(claimableAt - 1n);
      await expectNothingChanged(
        m,
        () =>
          expect(m.tollgate.connect(accomplice).claimDisputeAwards())
            .to.be.revertedWithCustomError(m.tollgate, "DisputeAwardNotReady")
            .withArgs(accomplice.address, claimableAt, claimableAt - 1n),
        [accomplice.address],
      );
      await time.setNextBlockTimestamp(claimableAt);
      await expect(m.tollgate.connect(accomplice).claimDisputeAwards()).to.emit(m.tollgate, "DisputeAwardClaimed").withArgs(accomplice.address, taken);
      await expectConservation(m, [accomplice.address]);
    });
  });

  describe("an honest gateway", function () {
    it("cannot be slashed through any of the three proofs by any receipt it issued (random batches)", async function () {
      const m = await loadFixture(bonded);
      const buyers = m.buyers.slice(0, 4).map((b) => b.address);
      const callArb = fc.record({
        buyer: fc.constantFrom(...buyers),
        large: fc.boolean(),
        inputTokens: fc.integer({ min: 0, max: 100_000 }),
        cachedShare: fc.integer({ min: 0, max: 100 }),
        outputTokens: fc.integer({ min: 0, max: 100_000 }),
        age: fc.integer({ min: 1, max: 3_000 }),
      });
      const runs = Number(process.env.DISPUTE_RUNS ?? 12);
      let batches = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(callArb, { minLength: 1, maxLength: 6 }), async (spec) => {
          const now = await latestTime();
          const callList: Call[] = spec
            .map((c) => ({
              buyer: c.buyer,
              modelId: c.large ? m.largeModel : m.smallModel,
              servedAt: now - c.age,
              inputTokens: c.inputTokens,
              cachedInputTokens: Math.floor((c.inputTokens * c.cachedShare) / 100),
              outputTokens: c.outputTokens,
            }))
            .sort((a, b) => a.servedAt - b.servedAt);
          const { receipts, signatures, batch, records } = await honest(m, callList);
          batches++;
          const leaves = records.map((r) => r.receiptHash);
          const header = usageBatchHeader(batch);
          const before = await marketState(m, buyers);
          for (const [i, receipt] of receipts.entries()) {
            await expect(m.tollgate.proveSettledRecordMismatch(receipt, signatures[i], batch)).to.be.revertedWithCustomError(m.tollgate, "DisputeNoDiscrepancy");
            // Against every leaf of its batch: its own is no discrepancy, any other is another sequence.
            for (let j = 0; j < leaves.length; j++) {
              await expect(m.tollgate.proveContentMismatch(receipt, signatures[i], header, receipts[j], merkleProof(leaves, j))).to.be.revertedWithCustomError(
                m.tollgate,
                i === j ? "DisputeNoDiscrepancy" : "DisputeSequenceMismatch",
              );
              await expect(m.tollgate.proveEquivocation(receipt, signatures[i], receipts[j], signatures[j])).to.be.revertedWithCustomError(
                m.tollgate,
                i === j ? "DisputeNoDiscrepancy" : "DisputeSequenceMismatch",
              );
            }
          }
          expect(await marketState(m, buyers)).to.deep.equal(before);
        }),
        { numRuns: runs, seed: Number(process.env.DISPUTE_SEED ?? 10_003) },
      );
      expect(batches).to.equal(runs);
      expect(await signerStanding(m.tollgate, m.gateway.address)).to.deep.equal([true, false]);
      expect(await bondOf(m)).to.deep.equal({ available: BOND, pending: 0n, withdrawableAt: 0n });
    });
  });
});
