/**
 * The bond and dispute actions as a buyer's or provider's wallet runs them: receipts travel as the envelopes
 * the gateway hands out, a proof that would revert is decoded before anything is signed, a valid proof
 * reports what the chain awarded, and the award is claimed in tokens once BOND_WITHDRAWAL_DELAY has passed.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toHex, type Address, type Hex } from "viem";
import {
  cancelBondWithdrawal,
  claimDisputeAwards,
  getBond,
  getDisputeAward,
  postBond,
  proveContentMismatch,
  proveEquivocation,
  proveSettledRecordMismatch,
  requestBondWithdrawal,
  revertOf,
  withdrawBond,
  type TransactionProgress,
} from "../../client";
import { tollgateDomain } from "../../server/chain/eip712";
import { merkleProof } from "../../server/chain/merkle";
import { receiptToWire, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { signUsageReceipt } from "../../server/chain/sign-batch";
import { encodeUsageBatch, hashReceipt, usageBatchHeader, type UsageReceipt } from "../../server/chain/usage-batch";
import { deployMarketplace, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { signBatch } from "../helpers/batches";
import { expectConservation, latestTime, recordsAt, withReceipts } from "../helpers/settlement-kit";

describe("bond and dispute actions", function () {
  let m: Marketplace;
  let providerId: number;
  const provider = () => m.clientOf(m.provider.address as Address);
  const buyer = () => m.clientOf(m.buyers[0].address as Address);

  async function envelopeOf(receipt: UsageReceipt): Promise<ReceiptEnvelope> {
    const tollgate = (await m.tollgate.getAddress()) as Address;
    const domain = tollgateDomain(m.chainId, tollgate);
    return {
      domain: { name: domain.name!, version: domain.version!, chainId: Number(m.chainId), verifyingContract: tollgate },
      signer: m.gateway.address,
      primaryType: "UsageReceipt",
      receipt: receiptToWire(receipt),
      receiptHash: hashReceipt(receipt),
      signature: await signUsageReceipt(m.gateway, { chainId: m.chainId, address: tollgate }, receipt),
      content: { salt: ethers.ZeroHash as Hex, requestHash: ethers.ZeroHash as Hex, responseHash: receipt.contentHash },
      model: "small-model",
      reasoningTokens: 0,
      countSource: "upstream",
    };
  }

  /** Two calls of buyer 0; the gateway settles them with `lie` applied to the first record. */
  type Record = ReturnType<typeof recordsAt>[number];
  async function settledWith(lie: (record: Record, receipt: UsageReceipt) => Record) {
    const now = await latestTime();
    const { records, receipts } = await withReceipts(
      m.tollgate,
      recordsAt(0n, [0, 1].map((i) => ({ buyer: m.buyers[0].address, modelId: m.smallModel, servedAt: now - 50 + i }))),
    );
    const settledRecords = records.map((r, i) => (i === 0 ? lie(r, receipts[i]) : r));
    const batch = encodeUsageBatch(settledRecords);
    await m.tollgate.settleBatch(batch, await signBatch(m.tollgate, m.gateway, batch));
    return { batch, receipts, leaves: settledRecords.map((r) => r.receiptHash), envelopes: await Promise.all(receipts.map(envelopeOf)) };
  }

  beforeEach(async function () {
    m = await deployMarketplace();
    providerId = Number(m.providerId);
    await time.increase(3_600);
    await m.tollgate.connect(m.buyers[0]).deposit(m.buyers[0].address, USD(100));
    await m.token.mint(m.provider.address, USD(1_000));
  });

  it("posts, requests, cancels and withdraws a bond, approving exactly what the post needs", async function () {
    const posted = await postBond(provider(), { providerId, amount: USD(500) });
    expect(posted.posted).to.equal(USD(500));
    expect(posted.approveHash).to.match(/^0x[0-9a-f]{64}$/);
    const requested = await requestBondWithdrawal(provider(), { providerId, amount: USD(200) });
    expect(requested.pending).to.equal(USD(200));
    const bond = await getBond(provider(), { providerId });
    expect(bond).to.deep.equal({ available: USD(300), pending: USD(200), withdrawableAt: requested.withdrawableAt, withdrawalDelay: 15n * 86_400n, disputeWindow: 14n * 86_400n });
    expect((await cancelBondWithdrawal(provider(), { providerId })).amount).to.equal(USD(200));
    await requestBondWithdrawal(provider(), { providerId, amount: USD(100) });
    await time.increase(15 * 86_400);
    const withdrawn = await withdrawBond(provider(), { providerId });
    expect([withdrawn.amount, withdrawn.payout]).to.deep.equal([USD(100), m.provider.address]);
    await expectConservation(m);
  });

  it("decodes a refused bond withdrawal before signing anything", async function () {
    await postBond(provider(), { providerId, amount: USD(10) });
    const events: TransactionProgress[] = [];
    const error = await requestBondWithdrawal({ ...provider(), onTransaction: (p) => events.push(p) }, { providerId, amount: USD(11) }).catch((e: unknown) => e);
    expect(revertOf(error)?.name).to.equal("BondInsufficient");
    expect(revertOf(error)?.named).to.deep.equal({ providerId: String(providerId), available: String(USD(10)), requested: String(USD(11)) });
    expect(events, "nothing was signed").to.deep.equal([]);
  });

  it("proves a settled record wrong from the buyer's envelope, reports the awards, and claims them only after the delay", async function () {
    await postBond(provider(), { providerId, amount: USD(500) });
    const { batch, receipts, envelopes } = await settledWith((r) => ({ ...r, outputTokens: r.outputTokens + 10_000 }));
    const holder = m.buyers[0].address as Address;
    const before = (await m.tollgate.accountOf(holder)).balance;
    const proven = await proveSettledRecordMismatch(buyer(), { envelope: envelopes[0], batch });
    expect(proven.kind).to.equal("record-mismatch");
    expect([proven.signer, proven.providerId, proven.sequence]).to.deep.equal([m.gateway.address, providerId, receipts[0].sequence]);
    expect(proven.refund).to.equal(6_000n); // 10,000 more output tokens at $0.60 per million
    expect(proven.penalty).to.equal((USD(500) - proven.refund) / 10n);
    const total = proven.refund + proven.penalty;
    const claimableAt = BigInt(await latestTime()) + (await m.tollgate.BOND_WITHDRAWAL_DELAY());
    expect(proven.awards).to.deep.equal([
      { beneficiary: holder, amount: proven.refund, total: proven.refund, claimableAt },
      { beneficiary: holder, amount: proven.penalty, total, claimableAt },
    ]);
    // Nothing spendable: the award waits in its bucket.
    expect((await m.tollgate.accountOf(holder)).balance).to.equal(before);
    const award = await getDisputeAward(buyer(), { beneficiary: holder });
    expect(award).to.deep.equal({ amount: total, claimableAt, claimDelay: await m.tollgate.BOND_WITHDRAWAL_DELAY() });

    const events: TransactionProgress[] = [];
    // The action simulates at the latest block, so the refusal is decoded before anything is signed.
    const early = await claimDisputeAwards({ ...buyer(), onTransaction: (p) => events.push(p) }).catch((e: unknown) => e);
    expect(revertOf(early)?.name).to.equal("DisputeAwardNotReady");
    expect(revertOf(early)?.named).to.deep.include({ beneficiary: holder, claimableAt: String(claimableAt) });
    expect(events, "nothing was signed").to.deep.equal([]);

    await time.increaseTo(claimableAt);
    const wallet = await m.token.balanceOf(holder);
    const claimed = await claimDisputeAwards(buyer());
    expect([claimed.amount, claimed.beneficiary]).to.deep.equal([total, holder]);
    expect(await m.token.balanceOf(holder)).to.equal(wallet + total);
    expect(await getDisputeAward(buyer(), { beneficiary: holder })).to.deep.include({ amount: 0n, claimableAt: 0n });
    await expectConservation(m);
    const again = await claimDisputeAwards(buyer()).catch((e: unknown) => e);
    expect(revertOf(again)?.name).to.equal("DisputeNoAward");
  });

  it("proves a content mismatch from the buyer's envelope and the leaf the root holds", async function () {
    await postBond(provider(), { providerId, amount: USD(500) });
    let swapped: UsageReceipt | undefined;
    const { batch, envelopes, leaves } = await settledWith((record, receipt) => {
      swapped = { ...receipt, contentHash: keccak256(toHex("another response")) };
      return { ...record, receiptHash: hashReceipt(swapped) };
    });
    const proven = await proveContentMismatch(buyer(), { envelope: envelopes[0], header: usageBatchHeader(batch), settledReceipt: swapped!, proof: merkleProof(leaves, 0) });
    expect([proven.kind, proven.refund, proven.penalty]).to.deep.equal(["content-mismatch", 0n, USD(50)]);
  });

  it("proves an equivocation from two envelopes, and refuses a proof with no discrepancy before signing", async function () {
    await postBond(provider(), { providerId, amount: USD(500) });
    const { batch, receipts, envelopes, leaves } = await settledWith((record) => record);
    const events: TransactionProgress[] = [];
    const error = await proveContentMismatch(
      { ...buyer(), onTransaction: (p) => events.push(p) },
      { envelope: envelopes[0], header: usageBatchHeader(batch), settledReceipt: receipts[0], proof: merkleProof(leaves, 0) },
    ).catch((e: unknown) => e);
    expect(revertOf(error)?.name).to.equal("DisputeNoDiscrepancy");
    expect(events, "nothing was signed").to.deep.equal([]);
    const twin = { ...receipts[1], contentHash: keccak256(toHex("another response")) };
    const proven = await proveEquivocation(buyer(), { first: envelopes[1], second: await envelopeOf(twin) });
    expect([proven.kind, proven.sequence, proven.refund, proven.penalizedTo, proven.penalty]).to.deep.equal([
      "equivocation",
      receipts[1].sequence,
      0n,
      m.buyers[0].address,
      USD(50),
    ]);
  });
});
