/**
 * The read actions behind the market and provider pages, against a settled market on Hardhat's chain: the
 * catalog (providers, models with their price epochs, plans with their models and expiry), which provider an
 * address owns, a provider's dashboard (earnings, bond, signers, batches with their gas, shortfalls), and the
 * audit's usage per model and day. Every number is checked against the chain read another way (ethers, the
 * receipts, the audit's own report).
 */
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { expect } from "chai";
import { ethers } from "hardhat";
import { getAddress, keccak256, toHex, type Address } from "viem";
import {
  auditDeployment,
  defineCreditPlan,
  getBond,
  getCatalog,
  getProviderByOwner,
  getProviderDashboard,
  listModel,
  registerProvider,
  scheduleModelPrice,
  setModelPaused,
  setSignerAuthorization,
  updateProvider,
  usageByModelAndDay,
  type GetCatalogReturnType,
  type TollgateClient,
} from "../../client";
import { signedUsageBatch } from "../../server/chain/sign-batch";
import type { UsageRecord } from "../../server/chain/usage-batch";
import { settledMarket, type SettledMarket } from "../helpers/settled-market";

describe("client: the catalog and provider reads for the web app", function () {
  this.timeout(120_000);
  let s: SettledMarket;
  let reader: TollgateClient;
  let rivalId: number;
  let rivalOwner: Address;
  let scheduled: { epochIndex: bigint; effectiveFrom: bigint };
  let bothPlan: bigint;
  let rivalPlan: bigint;
  let revokedSigner: Address;
  let unfunded: Address;
  let shortfallTx: `0x${string}`;

  before(async () => {
    s = await settledMarket();
    const m = s.market;
    reader = m.clientOf(m.buyers[0].address as Address);
    const seller = m.clientOf(m.provider.address as Address);
    const providerId = Number(m.providerId);

    // A fourth batch charging a buyer with no deposit: a recorded shortfall.
    unfunded = getAddress(m.others[5].address);
    const latest = (await ethers.provider.getBlock("latest"))!.timestamp;
    const records: UsageRecord[] = [0, 1].map((i) => ({
      sequence: 15n + BigInt(i),
      buyer: unfunded,
      modelId: Number(m.smallModel),
      priceEpoch: 0,
      inputTokens: 5_000,
      cachedInputTokens: 0,
      outputTokens: 900,
      servedAt: latest - 10 + i,
      receiptHash: keccak256(toHex(`unfunded ${i}`)),
    }));
    const { batch, signature } = await signedUsageBatch(m.gateway, { chainId: m.chainId, address: s.tollgate }, records);
    shortfallTx = (await (await m.tollgate.connect(m.others[0]).settleBatch(batch, signature)).wait())!.hash as `0x${string}`;

    // Provider 1 changes: new metadata, a scheduled price, a paused model, a plan for both models, a signer authorized then revoked.
    await updateProvider(seller, { providerId, payout: m.provider.address as Address, metadataUri: "ipfs://provider-v2" });
    scheduled = await scheduleModelPrice(seller, { modelId: Number(m.smallModel), prices: { input: 300_000n, cachedInput: 150_000n, output: 1_200_000n } });
    await setModelPaused(seller, { modelId: Number(m.largeModel), paused: true });
    bothPlan = (await defineCreditPlan(seller, { providerId, pricePerCredit: 95_000n, valuePerCredit: 100_000n, modelIds: [Number(m.smallModel), Number(m.largeModel)] })).planId;
    revokedSigner = getAddress(m.others[6].address);
    await setSignerAuthorization(seller, { providerId, signer: revokedSigner, authorized: true });
    await setSignerAuthorization(seller, { providerId, signer: revokedSigner, authorized: false });

    // Provider 2, owned by another account, with a plan that has expired by chain time.
    rivalOwner = getAddress(m.others[2].address);
    const rival = m.clientOf(rivalOwner);
    rivalId = (await registerProvider(rival, { payout: m.others[3].address as Address, metadataUri: "https://rival.example/provider.json" })).providerId;
    const rivalModel = await listModel(rival, { providerId: rivalId, name: "rival-model", prices: { input: 1n, cachedInput: 1n, output: 2n } });
    const now = (await ethers.provider.getBlock("latest"))!.timestamp;
    rivalPlan = (await defineCreditPlan(rival, { providerId: rivalId, pricePerCredit: 10n, valuePerCredit: 10n, modelIds: [rivalModel.modelId], expiresAt: now + 100 })).planId;
    await time.increase(200);
  });

  describe("getCatalog", () => {
    let catalog: GetCatalogReturnType;
    before(async () => {
      catalog = await getCatalog(reader, { fromBlock: s.deployBlock });
    });

    it("lists every provider with its owner, payout and latest metadata URI", () => {
      const m = s.market;
      expect(catalog.providers.map((p) => p.providerId)).to.deep.equal([Number(m.providerId), rivalId]);
      const [first, rival] = catalog.providers;
      expect(first).to.include({ owner: getAddress(m.provider.address), payout: getAddress(m.provider.address), metadataURI: "ipfs://provider-v2" });
      expect(rival).to.include({ owner: rivalOwner, payout: getAddress(m.others[3].address), metadataURI: "https://rival.example/provider.json" });
    });

    it("gives each model its name, pause and every price epoch, with the one in force and the scheduled ones", async () => {
      const m = s.market;
      const [first] = catalog.providers;
      expect(first.models.map((model) => [model.modelId, model.name, model.localIndex, model.paused])).to.deep.equal([
        [Number(m.smallModel), "small-model", 0, false],
        [Number(m.largeModel), "large-model", 1, true],
      ]);
      const small = first.models[0];
      expect(small.epochs).to.have.length(2);
      expect(small.current?.index).to.equal(0);
      const onChain = await m.tollgate.priceEpochOf(m.smallModel, 0);
      expect(small.current).to.deep.equal({ index: 0, effectiveFrom: Number(onChain.effectiveFrom), input: onChain.input, cachedInput: onChain.cachedInput, output: onChain.output });
      expect(small.scheduled).to.deep.equal([{ index: 1, effectiveFrom: Number(scheduled.effectiveFrom), input: 300_000n, cachedInput: 150_000n, output: 1_200_000n }]);
      expect(Number(scheduled.effectiveFrom)).to.be.greaterThan(catalog.chainTime);
      expect(first.models[1].scheduled).to.deep.equal([]);
      expect(catalog.chainTime).to.equal(Number((await ethers.provider.getBlock(Number(catalog.blockNumber)))!.timestamp));
    });

    it("decodes each plan's model mask to model names and says which plans have expired", () => {
      const [first, rival] = catalog.providers;
      const plans = first.plans.map((plan) => ({ planId: plan.planId, models: plan.models, mask: plan.modelMask, expired: plan.expired, price: plan.pricePerCredit, value: plan.valuePerCredit }));
      expect(plans).to.deep.equal([
        { planId: 1n, models: ["small-model"], mask: 1n, expired: false, price: 9_000n, value: 10_000n },
        { planId: bothPlan, models: ["small-model", "large-model"], mask: 3n, expired: false, price: 95_000n, value: 100_000n },
      ]);
      expect(rival.plans).to.have.length(1);
      expect(rival.plans[0]).to.include({ planId: rivalPlan, expired: true });
      expect(rival.plans[0].models).to.deep.equal(["rival-model"]);
      expect(rival.plans[0].expiresAt).to.be.lessThanOrEqual(catalog.chainTime);
    });

    it("finds the deployment block itself, and gives the same catalog through a capped log range", async () => {
      const found = await getCatalog(reader);
      expect(found.fromBlock).to.equal(s.deployBlock);
      expect(found.providers).to.deep.equal(catalog.providers);
      const chunked = await getCatalog(reader, { fromBlock: s.deployBlock, maxRange: 3n });
      expect(chunked.providers).to.deep.equal(catalog.providers);
    });
  });

  it("getProviderByOwner: the provider an address owns, or null", async () => {
    const m = s.market;
    expect(await getProviderByOwner(reader, { owner: m.provider.address as Address })).to.deep.equal({ providerId: Number(m.providerId), providerIds: [Number(m.providerId)] });
    expect(await getProviderByOwner(reader, { owner: rivalOwner.toLowerCase() as Address, fromBlock: s.deployBlock })).to.deep.equal({ providerId: rivalId, providerIds: [rivalId] });
    expect(await getProviderByOwner(reader, { owner: m.buyers[0].address as Address })).to.equal(null);
  });

  describe("getProviderDashboard", () => {
    it("reads earnings and bond as the contract holds them, and every signer with its state and history", async () => {
      const m = s.market;
      const dashboard = await getProviderDashboard(reader, { providerId: Number(m.providerId), fromBlock: s.deployBlock });
      expect(dashboard.earnings).to.equal(await m.tollgate.earningsOf(m.providerId));
      expect(dashboard.earnings > 0n).to.equal(true);
      expect(dashboard.bond).to.deep.equal(await getBond(reader, { providerId: Number(m.providerId) }));
      const gateway = dashboard.signers.find((signer) => signer.signer === m.gateway.address)!;
      expect(gateway).to.include({ authorized: true, nextSequence: 17n, compromised: false });
      expect(gateway.changes.map((change) => change.authorized)).to.deep.equal([true]);
      const revoked = dashboard.signers.find((signer) => signer.signer === revokedSigner)!;
      expect(revoked).to.include({ authorized: false, nextSequence: 0n, compromised: false });
      expect(revoked.changes.map((change) => change.authorized)).to.deep.equal([true, false]);
      expect(dashboard.signers).to.have.length(2);
    });

    it("lists every settled batch with its event's numbers, its block time and its transaction's gas; and the shortfall", async () => {
      const m = s.market;
      const dashboard = await getProviderDashboard(reader, { providerId: Number(m.providerId), fromBlock: s.deployBlock });
      const hashes = [...s.settlements.map((settlement) => settlement.hash), shortfallTx];
      expect(dashboard.batches.map((batch) => batch.transactionHash)).to.deep.equal(hashes);
      expect(dashboard.batches.map((batch) => [batch.firstSequence, batch.records])).to.deep.equal([[0n, 5n], [5n, 5n], [10n, 5n], [15n, 2n]]);
      for (const batch of dashboard.batches) {
        const receipt = (await ethers.provider.getTransactionReceipt(batch.transactionHash))!;
        expect(batch.gasUsed, batch.transactionHash).to.equal(receipt.gasUsed);
        expect(batch.blockNumber).to.equal(BigInt(receipt.blockNumber));
        expect(batch.time).to.equal((await ethers.provider.getBlock(receipt.blockNumber))!.timestamp);
        expect(batch.batchesInTransaction).to.equal(1);
        expect(batch.signer).to.equal(m.gateway.address);
        const event = receipt.logs.map((log) => m.tollgate.interface.parseLog(log)).find((parsed) => parsed?.name === "BatchSettled")!;
        expect([batch.totalCost, batch.providerEarnings, batch.protocolFee, batch.shortfall]).to.deep.equal([event.args.totalCost, event.args.providerEarnings, event.args.protocolFee, event.args.totalShortfall]);
      }
      const last = dashboard.batches[3];
      expect(last.shortfall > 0n, "the unfunded buyer's batch records a shortfall").to.equal(true);
      expect(last.shortfall).to.equal(last.totalCost);
      expect(dashboard.shortfalls).to.deep.equal([{ buyer: unfunded, signer: m.gateway.address, firstSequence: 15n, shortfall: last.shortfall, transactionHash: shortfallTx, blockNumber: last.blockNumber }]);
      const sum = (pick: (batch: (typeof dashboard.batches)[number]) => bigint) => dashboard.batches.reduce((total, batch) => total + pick(batch), 0n);
      expect(dashboard.totals).to.deep.equal({
        batches: 4,
        records: 17n,
        totalCost: sum((batch) => batch.totalCost),
        providerEarnings: sum((batch) => batch.providerEarnings),
        protocolFee: sum((batch) => batch.protocolFee),
        shortfall: last.shortfall,
        gasUsed: sum((batch) => batch.gasUsed),
      });
    });

    it("shows another provider none of the first one's batches, signers or shortfalls", async () => {
      const dashboard = await getProviderDashboard(reader, { providerId: rivalId, fromBlock: s.deployBlock });
      expect(dashboard.batches).to.deep.equal([]);
      expect(dashboard.signers).to.deep.equal([]);
      expect(dashboard.shortfalls).to.deep.equal([]);
      expect(dashboard.earnings).to.equal(await s.market.tollgate.earningsOf(rivalId));
    });
  });

  it("usageByModelAndDay over the chain audit: per model and UTC day, summing to the audit's own per-model and per-day totals", async () => {
    const providerId = Number(s.market.providerId);
    const audit = await auditDeployment(reader.public, { tollgate: s.tollgate, deployBlock: Number(s.deployBlock) }, { provider: providerId });
    const rows = usageByModelAndDay(audit, { providerId });
    expect(rows.length).to.be.greaterThan(0);
    for (const row of rows) expect(row.day).to.match(/^\d{4}-\d{2}-\d{2}$/);
    expect(rows.reduce((total, row) => total + row.records, 0)).to.equal(17);
    const dashboard = await getProviderDashboard(reader, { providerId, fromBlock: s.deployBlock });
    expect(rows.reduce((total, row) => total + row.cost, 0n)).to.equal(dashboard.totals.totalCost);
    for (const model of audit.report.models) {
      const ofModel = rows.filter((row) => row.modelId === model.modelId);
      expect(ofModel.every((row) => row.name === model.name)).to.equal(true);
      expect(ofModel.reduce((total, row) => total + row.cost, 0n), model.name).to.equal(model.cost);
      expect(ofModel.reduce((total, row) => total + row.outputTokens, 0n), model.name).to.equal(model.outputTokens);
    }
    for (const day of audit.report.days) {
      expect(rows.filter((row) => row.day === day.day).reduce((total, row) => total + row.cost, 0n), day.day).to.equal(day.cost);
    }
    expect(usageByModelAndDay(audit, { providerId: rivalId })).to.deep.equal([]);
  });
});
