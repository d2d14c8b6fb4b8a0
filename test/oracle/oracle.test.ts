/**
 * The oracle against a live gateway on Hardhat's in-process chain: batches formed by size and age, the
 * buyer's credit plan named, records marked with the transaction and commitment, a revoked signer
 * reported without blocking another gateway, and health and metrics.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { getAddress, type Hex } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { commitmentPrefix } from "../../server/chain/usage-batch";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";
import { startOracleHarness } from "../helpers/oracle-harness";
import { USD } from "../../scripts/lib/marketplace-fixtures";

async function chat(harness: GatewayHarness, key: string, n: number, model = "small-model"): Promise<void> {
  const client = harness.openai(key);
  for (let i = 0; i < n; i++) {
    await client.chat.completions.create({ model, messages: [{ role: "user", content: `question ${i}` }], max_tokens: 16 });
  }
}

describe("oracle: settles the gateway's records on-chain", function () {
  this.timeout(120_000);
  let harness: GatewayHarness;

  beforeEach(async function () {
    harness = await startGatewayHarness();
  });
  afterEach(async function () {
    await harness.close();
  });

  it("settles every record once, in sequence, and marks each with its transaction and batch commitment", async function () {
    const buyer = harness.market.buyers[0];
    await harness.deposit(buyer, USD(50));
    const { key } = await harness.createKey(buyer);
    await chat(harness, key, 7);
    const { oracle, client } = await startOracleHarness(harness, { oracle: { batch: { maxRecords: 3, maxAgeMs: 60_000 } } });
    try {
      const results = await oracle.runOnce();
      expect(results[0]).to.include({ kind: "settled" });
      await oracle.settleAll();
      const signer = await client.readContract({ address: harness.config.chain.deployment.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [harness.signer] });
      expect(signer.nextSequence).to.equal(7n);
      const records = harness.gateway.ctx.store.recordsOf(getAddress(buyer.address), { limit: 100 });
      expect(records).to.have.length(7);
      const batches = new Set(records.map((record) => record.settlement?.batchId));
      expect(batches.size).to.equal(3); // 3 + 3 + 1
      for (const record of records) {
        const [storedPrefix] = await client.readContract({
          address: harness.config.chain.deployment.tollgate,
          abi: tollgateAbi,
          functionName: "batchCommitmentOf",
          args: [harness.signer, record.sequence - (record.sequence % 3n)],
        });
        expect(commitmentPrefix(record.settlement!.batchId as Hex)).to.equal(storedPrefix);
        const receipt = await client.getTransactionReceipt({ hash: record.settlement!.txHash });
        expect(receipt.status).to.equal("success");
      }
      expect(oracle.health().status).to.equal("ok");
      expect(oracle.health().streams[0].recordsPending).to.equal(0);
    } finally {
      await oracle.close();
    }
  });

  it("waits for a batch to fill or age, and settles early for a buyer whose withdrawal is about to be executable", async function () {
    const [patient, leaving] = harness.market.buyers;
    await harness.deposit(patient, USD(10));
    await harness.deposit(leaving, USD(10));
    const patientKey = (await harness.createKey(patient)).key;
    await chat(harness, patientKey, 2);
    const { oracle } = await startOracleHarness(harness, {
      oracle: { batch: { maxRecords: 10, maxAgeMs: 3_600_000 }, earlySettleSeconds: 600 },
    });
    try {
      expect((await oracle.runOnce())[0]).to.deep.equal({ kind: "waiting", pending: 2 });

      const leavingKey = (await harness.createKey(leaving)).key;
      await chat(harness, leavingKey, 1);
      // The vault's delay is 3 days: far outside the 10-minute window, so nothing is due yet.
      await (await harness.market.tollgate.connect(leaving).requestWithdrawal(USD(5))).wait();
      expect((await oracle.runOnce())[0]).to.deep.equal({ kind: "waiting", pending: 3 });

      await ethers.provider.send("evm_increaseTime", [3 * 24 * 3600 - 300]);
      await ethers.provider.send("evm_mine", []);
      expect((await oracle.runOnce())[0]).to.include({ kind: "settled", firstSequence: 0n, lastSequence: 2n });
    } finally {
      await oracle.close();
    }
  });
  it("names the buyer's credit plan, so settlement burns credits for the models it covers and draws the balance for the rest", async function () {
    const { market, planId } = harness;
    const buyer = market.buyers[2];
    await harness.deposit(buyer, USD(20));
    // The harness plan: 1 USD per credit, worth 1 USD of small-model usage only.
    await (await market.tollgate.connect(buyer).buyCreditsWithBalance(planId, 3, buyer.address)).wait();
    const { key } = await harness.createKey(buyer);
    await chat(harness, key, 2, "small-model");
    await chat(harness, key, 2, "large-model");
    const credits = await ethers.getContractAt("TollgateCredits", await market.tollgate.credits());
    const creditsBefore = await credits.balanceOf(buyer.address, planId);
    const balanceBefore = (await market.tollgate.accountOf(buyer.address)).balance;

    const { oracle } = await startOracleHarness(harness, { oracle: { batch: { maxRecords: 100, maxAgeMs: 0 } } });
    try {
      expect((await oracle.runOnce())[0]).to.include({ kind: "settled", lastSequence: 3n });
    } finally {
      await oracle.close();
    }
    const records = harness.gateway.ctx.store.recordsOf(getAddress(buyer.address), { limit: 10 });
    const cost = (model: number) => records.filter((r) => r.modelId === model).reduce((sum, r) => sum + r.cost, 0n);
    expect(cost(1) > 0n && cost(2) > 0n).to.equal(true);
    expect(await credits.balanceOf(buyer.address, planId), "one credit burned for the small-model usage").to.equal(creditsBefore - 1n);
    expect((await market.tollgate.accountOf(buyer.address)).balance, "the large-model usage came from the balance").to.equal(balanceBefore - cost(2));
  });
  it("settles again records whose settlement the chain lost in a reorganisation", async function () {
    const buyer = harness.market.buyers[3];
    await harness.deposit(buyer, USD(10));
    const { key } = await harness.createKey(buyer);
    await chat(harness, key, 3);
    const { oracle } = await startOracleHarness(harness, { oracle: { batch: { maxRecords: 100, maxAgeMs: 0 } } });
    try {
      // The state before settlement; reverting to it is what a reorganisation that drops the settling block does.
      const snapshot = await ethers.provider.send("evm_snapshot", []);
      const first = await oracle.runOnce();
      expect(first[0]).to.include({ kind: "settled" });
      await ethers.provider.send("evm_revert", [snapshot]);
      expect((await harness.market.tollgate.signerOf(harness.signer)).nextSequence).to.equal(0n);

      const second = await oracle.runOnce();
      expect(second[0]).to.include({ kind: "settled", firstSequence: 0n, lastSequence: 2n });
      expect((await harness.market.tollgate.signerOf(harness.signer)).nextSequence).to.equal(3n);
      const records = harness.gateway.ctx.store.recordsOf(getAddress(buyer.address), { limit: 10 });
      expect(records.every((record) => record.settlement?.txHash === (second[0] as { txHash: string }).txHash)).to.equal(true);
      // Same nonce, calldata and fees: the re-sent transaction may well have the same hash; it must be on the chain now.
      const receipt = await harness.client.getTransactionReceipt({ hash: (second[0] as { txHash: `0x${string}` }).txHash });
      expect(receipt.status).to.equal("success");
    } finally {
      await oracle.close();
    }
  });
});
