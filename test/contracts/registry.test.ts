import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { deployMarketplace, LARGE_PRICES, PRICE_NOTICE, SMALL_PRICES } from "../../scripts/lib/marketplace-fixtures";
import { emptyTollgateFixture, latestTimestamp, minedAt } from "../helpers/contract-fixtures";
import type { Tollgate } from "../../typechain-types";

const MAX_PRICE = 2n ** 72n - 1n;
const MAX_NAME = 64n;
const MAX_MODELS = 256n;
const PRICES_2 = { input: 200_000n, cachedInput: 100_000n, output: 800_000n };
const PRICES_3 = { input: 300_000n, cachedInput: 150_000n, output: 900_000n };
const PRICES_4 = { input: 400_000n, cachedInput: 0n, output: 1_000_000n };

async function epoch(tollgate: Tollgate, modelId: bigint, index: bigint) {
  const e = await tollgate.priceEpochOf(modelId, index);
  return { effectiveFrom: e.effectiveFrom, input: e.input, cachedInput: e.cachedInput, output: e.output };
}

async function model(tollgate: Tollgate, modelId: bigint) {
  const m = await tollgate.modelOf(modelId);
  return { providerId: m.providerId, localIndex: m.localIndex, paused: m.paused, epochCount: m.epochCount };
}

/** The marketplace (provider 1, models 1 and 2) plus a second provider with one model (id 3). */
async function twoProvidersFixture() {
  const market = await deployMarketplace();
  const [rival] = market.others;
  await market.tollgate.connect(rival).registerProvider(rival.address, "ipfs://rival");
  await market.tollgate.connect(rival).listModel(2n, "rival-model", SMALL_PRICES);
  return { ...market, rival, rivalId: 2n, rivalModel: 3n };
}

describe("ProviderRegistry", function () {
  describe("registerProvider", function () {
    it("assigns sequential ids, emits ProviderRegistered and records owner and payout", async function () {
      const { tollgate, provider, others } = await loadFixture(emptyTollgateFixture);
      const [payout, second] = others;
      expect(await tollgate.providerCount()).to.equal(0n);

      await expect(tollgate.connect(provider).registerProvider(payout.address, "ipfs://one"))
        .to.emit(tollgate, "ProviderRegistered")
        .withArgs(1n, provider.address, payout.address, "ipfs://one");
      expect(await tollgate.providerCount()).to.equal(1n);
      const view = await tollgate.providerOf(1n);
      expect([view.owner, view.payout, view.modelCount]).to.deep.equal([provider.address, payout.address, 0n]);

      await expect(tollgate.connect(second).registerProvider(second.address, ""))
        .to.emit(tollgate, "ProviderRegistered")
        .withArgs(2n, second.address, second.address, "");
      expect(await tollgate.providerCount()).to.equal(2n);
      expect((await tollgate.providerOf(2n)).owner).to.equal(second.address);
    });

    it("lets one address own several providers", async function () {
      const { tollgate, provider } = await loadFixture(emptyTollgateFixture);
      await tollgate.connect(provider).registerProvider(provider.address, "a");
      await tollgate.connect(provider).registerProvider(provider.address, "b");
      expect(await tollgate.providerCount()).to.equal(2n);
      expect((await tollgate.providerOf(1n)).owner).to.equal(provider.address);
      expect((await tollgate.providerOf(2n)).owner).to.equal(provider.address);
    });

    it("reverts with RegistryZeroAddress for a zero payout", async function () {
      const { tollgate, provider } = await loadFixture(emptyTollgateFixture);
      await expect(tollgate.connect(provider).registerProvider(ethers.ZeroAddress, "x"))
        .to.be.revertedWithCustomError(tollgate, "RegistryZeroAddress")
        .withArgs();
      expect(await tollgate.providerCount()).to.equal(0n);
    });

    it("providerOf reverts with RegistryUnknownProvider for id 0 and unregistered ids", async function () {
      const { tollgate } = await loadFixture(deployMarketplace);
      await expect(tollgate.providerOf(0n)).to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider").withArgs(0n);
      await expect(tollgate.providerOf(2n)).to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider").withArgs(2n);
    });
  });

  describe("updateProvider", function () {
    it("changes the payout and emits ProviderUpdated", async function () {
      const { tollgate, provider, providerId, others } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).updateProvider(providerId, others[0].address, "ipfs://v2"))
        .to.emit(tollgate, "ProviderUpdated")
        .withArgs(providerId, others[0].address, "ipfs://v2");
      const view = await tollgate.providerOf(providerId);
      expect([view.owner, view.payout, view.modelCount]).to.deep.equal([provider.address, others[0].address, 2n]);
    });

    it("reverts with RegistryNotProviderOwner for anyone but the owner, even the payout address", async function () {
      const { tollgate, provider, providerId, others } = await loadFixture(deployMarketplace);
      await tollgate.connect(provider).updateProvider(providerId, others[0].address, "");
      await expect(tollgate.connect(others[0]).updateProvider(providerId, others[0].address, "mine"))
        .to.be.revertedWithCustomError(tollgate, "RegistryNotProviderOwner")
        .withArgs(providerId, others[0].address);
    });

    it("reverts with RegistryZeroAddress for a zero payout and RegistryUnknownProvider for an unknown id", async function () {
      const { tollgate, provider, providerId } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).updateProvider(providerId, ethers.ZeroAddress, ""))
        .to.be.revertedWithCustomError(tollgate, "RegistryZeroAddress");
      await expect(tollgate.connect(provider).updateProvider(9n, provider.address, ""))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider")
        .withArgs(9n);
      expect((await tollgate.providerOf(providerId)).payout).to.equal(provider.address);
    });
  });

  describe("listModel", function () {
    it("emits ModelListed and PriceScheduled with epoch 0 effective at the listing block's time", async function () {
      const { tollgate, provider } = await loadFixture(emptyTollgateFixture);
      await tollgate.connect(provider).registerProvider(provider.address, "p");
      const at = (await latestTimestamp()) + 50n;
      await time.setNextBlockTimestamp(at);
      const tx = await tollgate.connect(provider).listModel(1n, "gpt-tiny", SMALL_PRICES);
      await expect(tx).to.emit(tollgate, "ModelListed").withArgs(1n, 1n, 0n, "gpt-tiny");
      await expect(tx)
        .to.emit(tollgate, "PriceScheduled")
        .withArgs(1n, 0n, at, SMALL_PRICES.input, SMALL_PRICES.cachedInput, SMALL_PRICES.output);
      expect(await minedAt(tx)).to.equal(at);
      expect(await epoch(tollgate, 1n, 0n)).to.deep.equal({ effectiveFrom: at, ...SMALL_PRICES });
      expect(await model(tollgate, 1n)).to.deep.equal({ providerId: 1n, localIndex: 0n, paused: false, epochCount: 1n });
      expect(await tollgate.modelCount()).to.equal(1n);
      expect((await tollgate.providerOf(1n)).modelCount).to.equal(1n);
    });

    it("numbers models globally but local indices per provider", async function () {
      const { tollgate, rival, rivalId, rivalModel, provider, providerId } = await loadFixture(twoProvidersFixture);
      expect(await model(tollgate, 1n)).to.include({ providerId, localIndex: 0n });
      expect(await model(tollgate, 2n)).to.include({ providerId, localIndex: 1n });
      expect(await model(tollgate, rivalModel)).to.include({ providerId: rivalId, localIndex: 0n });
      await expect(tollgate.connect(rival).listModel(rivalId, "rival-2", LARGE_PRICES))
        .to.emit(tollgate, "ModelListed")
        .withArgs(4n, rivalId, 1n, "rival-2");
      await expect(tollgate.connect(provider).listModel(providerId, "third", LARGE_PRICES))
        .to.emit(tollgate, "ModelListed")
        .withArgs(5n, providerId, 2n, "third");
      expect(await tollgate.modelCount()).to.equal(5n);
      expect((await tollgate.providerOf(providerId)).modelCount).to.equal(3n);
      expect((await tollgate.providerOf(rivalId)).modelCount).to.equal(2n);
    });

    it("reverts with RegistryNotProviderOwner when someone else lists under the provider", async function () {
      const { tollgate, providerId, buyers } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(buyers[0]).listModel(providerId, "fake", SMALL_PRICES))
        .to.be.revertedWithCustomError(tollgate, "RegistryNotProviderOwner")
        .withArgs(providerId, buyers[0].address);
    });

    it("reverts with RegistryUnknownProvider for an unregistered provider", async function () {
      const { tollgate, provider } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).listModel(5n, "m", SMALL_PRICES))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider")
        .withArgs(5n);
    });

    it("reverts with RegistryInvalidModelName for an empty name and for a 65-byte name", async function () {
      const { tollgate, provider, providerId } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).listModel(providerId, "", SMALL_PRICES))
        .to.be.revertedWithCustomError(tollgate, "RegistryInvalidModelName")
        .withArgs(0n, MAX_NAME);
      await expect(tollgate.connect(provider).listModel(providerId, "x".repeat(65), SMALL_PRICES))
        .to.be.revertedWithCustomError(tollgate, "RegistryInvalidModelName")
        .withArgs(65n, MAX_NAME);
      expect(await tollgate.modelCount()).to.equal(2n);
    });

    it("measures the name in bytes: 64 bytes is accepted, 33 two-byte characters are not", async function () {
      const { tollgate, provider, providerId } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).listModel(providerId, "y".repeat(64), SMALL_PRICES))
        .to.emit(tollgate, "ModelListed")
        .withArgs(3n, providerId, 2n, "y".repeat(64));
      await expect(tollgate.connect(provider).listModel(providerId, "é".repeat(32), SMALL_PRICES)).to.emit(
        tollgate,
        "ModelListed",
      );
      await expect(tollgate.connect(provider).listModel(providerId, "é".repeat(33), SMALL_PRICES))
        .to.be.revertedWithCustomError(tollgate, "RegistryInvalidModelName")
        .withArgs(66n, MAX_NAME);
    });

    it("accepts MAX_PRICE and reverts with RegistryPriceTooHigh at MAX_PRICE + 1 in any price field", async function () {
      const { tollgate, provider, providerId } = await loadFixture(deployMarketplace);
      expect(await tollgate.MAX_PRICE()).to.equal(MAX_PRICE);
      const max = { input: MAX_PRICE, cachedInput: MAX_PRICE, output: MAX_PRICE };
      // Pin the block time first: reading the latest block after sending would race the mining.
      const listedAt = (await latestTimestamp()) + 1n;
      await time.setNextBlockTimestamp(listedAt);
      await expect(tollgate.connect(provider).listModel(providerId, "max", max))
        .to.emit(tollgate, "PriceScheduled")
        .withArgs(3n, 0n, listedAt, MAX_PRICE, MAX_PRICE, MAX_PRICE);
      expect(await epoch(tollgate, 3n, 0n)).to.include({ input: MAX_PRICE, cachedInput: MAX_PRICE, output: MAX_PRICE });

      for (const field of ["input", "cachedInput", "output"] as const) {
        const prices = { ...SMALL_PRICES, [field]: MAX_PRICE + 1n };
        await expect(tollgate.connect(provider).listModel(providerId, `too-high-${field}`, prices))
          .to.be.revertedWithCustomError(tollgate, "RegistryPriceTooHigh")
          .withArgs(MAX_PRICE + 1n, MAX_PRICE);
      }
      expect(await tollgate.modelCount()).to.equal(3n);
    });

    it("lists up to 256 models per provider and reverts with RegistryTooManyModels on the 257th", async function () {
      const { tollgate, provider } = await loadFixture(emptyTollgateFixture);
      await tollgate.connect(provider).registerProvider(provider.address, "big");
      const listing = tollgate.connect(provider);
      for (let i = 0; i < Number(MAX_MODELS); i++) {
        await listing.listModel(1n, `m${i}`, SMALL_PRICES);
      }
      expect(await tollgate.modelCount()).to.equal(MAX_MODELS);
      expect((await tollgate.providerOf(1n)).modelCount).to.equal(MAX_MODELS);
      expect((await tollgate.modelOf(MAX_MODELS)).localIndex).to.equal(255n);
      await expect(listing.listModel(1n, "one-too-many", SMALL_PRICES))
        .to.be.revertedWithCustomError(tollgate, "RegistryTooManyModels")
        .withArgs(1n, MAX_MODELS);
      // Another provider is unaffected.
      await tollgate.connect(provider).registerProvider(provider.address, "second");
      await expect(listing.listModel(2n, "fresh", SMALL_PRICES))
        .to.emit(tollgate, "ModelListed")
        .withArgs(MAX_MODELS + 1n, 2n, 0n, "fresh");
    });
  });

  describe("scheduleModelPrice", function () {
    it("appends an epoch effective the notice period after the block time", async function () {
      const { tollgate, provider, smallModel } = await loadFixture(deployMarketplace);
      expect(await tollgate.priceNoticePeriod()).to.equal(PRICE_NOTICE);
      const at = (await latestTimestamp()) + 10n;
      await time.setNextBlockTimestamp(at);
      const tx = await tollgate.connect(provider).scheduleModelPrice(smallModel, PRICES_2);
      await expect(tx)
        .to.emit(tollgate, "PriceScheduled")
        .withArgs(smallModel, 1n, at + PRICE_NOTICE, PRICES_2.input, PRICES_2.cachedInput, PRICES_2.output);
      await expect(tx).not.to.emit(tollgate, "PriceScheduleReplaced");
      expect((await tollgate.modelOf(smallModel)).epochCount).to.equal(2n);
      expect(await epoch(tollgate, smallModel, 1n)).to.deep.equal({ effectiveFrom: at + PRICE_NOTICE, ...PRICES_2 });
      // Epoch 0 is untouched.
      expect(await epoch(tollgate, smallModel, 0n)).to.include(SMALL_PRICES);
    });

    it("returns the effectiveFrom it scheduled", async function () {
      const { tollgate, provider, smallModel } = await loadFixture(deployMarketplace);
      const at = (await latestTimestamp()) + 5n;
      await time.setNextBlockTimestamp(at);
      // staticCall runs against the pending block, whose time was just set.
      const returned = await tollgate
        .connect(provider)
        .scheduleModelPrice.staticCall(smallModel, PRICES_2, { blockTag: "pending" });
      expect(returned).to.equal(at + PRICE_NOTICE);
    });

    it("replaces a not-yet-effective epoch: PriceScheduleReplaced, and the pending epoch is popped", async function () {
      const { tollgate, provider, smallModel } = await loadFixture(deployMarketplace);
      const first = await tollgate.connect(provider).scheduleModelPrice(smallModel, PRICES_2);
      const firstFrom = (await minedAt(first)) + PRICE_NOTICE;

      // One second before the scheduled epoch starts, it can still be replaced.
      const at = firstFrom - 1n;
      await time.setNextBlockTimestamp(at);
      const tx = await tollgate.connect(provider).scheduleModelPrice(smallModel, PRICES_3);
      await expect(tx).to.emit(tollgate, "PriceScheduleReplaced").withArgs(smallModel, 1n);
      await expect(tx)
        .to.emit(tollgate, "PriceScheduled")
        .withArgs(smallModel, 1n, at + PRICE_NOTICE, PRICES_3.input, PRICES_3.cachedInput, PRICES_3.output);
      expect((await tollgate.modelOf(smallModel)).epochCount).to.equal(2n);
      expect(await epoch(tollgate, smallModel, 1n)).to.deep.equal({ effectiveFrom: at + PRICE_NOTICE, ...PRICES_3 });
      await expect(tollgate.priceEpochOf(smallModel, 2n))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownPriceEpoch")
        .withArgs(smallModel, 2n);
    });

    it("keeps an epoch once it is in force and appends the next schedule after it", async function () {
      const { tollgate, provider, smallModel } = await loadFixture(deployMarketplace);
      const first = await tollgate.connect(provider).scheduleModelPrice(smallModel, PRICES_2);
      const firstFrom = (await minedAt(first)) + PRICE_NOTICE;

      // At exactly effectiveFrom the epoch is in force: it persists.
      await time.setNextBlockTimestamp(firstFrom);
      const tx = await tollgate.connect(provider).scheduleModelPrice(smallModel, PRICES_4);
      await expect(tx).not.to.emit(tollgate, "PriceScheduleReplaced");
      await expect(tx)
        .to.emit(tollgate, "PriceScheduled")
        .withArgs(smallModel, 2n, firstFrom + PRICE_NOTICE, PRICES_4.input, PRICES_4.cachedInput, PRICES_4.output);
      expect((await tollgate.modelOf(smallModel)).epochCount).to.equal(3n);
      expect(await epoch(tollgate, smallModel, 1n)).to.deep.equal({ effectiveFrom: firstFrom, ...PRICES_2 });
      expect(await epoch(tollgate, smallModel, 2n)).to.deep.equal({
        effectiveFrom: firstFrom + PRICE_NOTICE,
        ...PRICES_4,
      });
      const e0 = await epoch(tollgate, smallModel, 0n);
      expect(e0.effectiveFrom < firstFrom).to.equal(true);
    });

    it("never replaces epoch 0, which is in force from the listing", async function () {
      const { tollgate, provider, largeModel } = await loadFixture(deployMarketplace);
      const tx = await tollgate.connect(provider).scheduleModelPrice(largeModel, PRICES_2);
      await expect(tx).not.to.emit(tollgate, "PriceScheduleReplaced");
      expect(await epoch(tollgate, largeModel, 0n)).to.include(LARGE_PRICES);
      expect((await tollgate.modelOf(largeModel)).epochCount).to.equal(2n);
    });

    it("reverts with RegistryPriceTooHigh and leaves the schedule unchanged", async function () {
      const { tollgate, provider, smallModel } = await loadFixture(deployMarketplace);
      await tollgate.connect(provider).scheduleModelPrice(smallModel, PRICES_2);
      await expect(
        tollgate.connect(provider).scheduleModelPrice(smallModel, { ...PRICES_3, output: MAX_PRICE + 1n }),
      )
        .to.be.revertedWithCustomError(tollgate, "RegistryPriceTooHigh")
        .withArgs(MAX_PRICE + 1n, MAX_PRICE);
      expect(await epoch(tollgate, smallModel, 1n)).to.include(PRICES_2);
      await expect(
        tollgate.connect(provider).scheduleModelPrice(smallModel, { ...PRICES_3, input: MAX_PRICE }),
      ).to.emit(tollgate, "PriceScheduled");
    });

    it("reverts with RegistryNotProviderOwner for another provider's model and RegistryUnknownModel for an unknown one", async function () {
      const { tollgate, rival, smallModel, provider } = await loadFixture(twoProvidersFixture);
      await expect(tollgate.connect(rival).scheduleModelPrice(smallModel, PRICES_2))
        .to.be.revertedWithCustomError(tollgate, "RegistryNotProviderOwner")
        .withArgs(1n, rival.address);
      await expect(tollgate.connect(provider).scheduleModelPrice(99n, PRICES_2))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownModel")
        .withArgs(99n);
    });
  });

  describe("setModelPaused", function () {
    it("pauses and resumes a model, emitting ModelPauseChanged", async function () {
      const { tollgate, provider, smallModel } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).setModelPaused(smallModel, true))
        .to.emit(tollgate, "ModelPauseChanged")
        .withArgs(smallModel, true);
      expect((await tollgate.modelOf(smallModel)).paused).to.equal(true);
      expect((await tollgate.modelOf(2n)).paused).to.equal(false);
      await expect(tollgate.connect(provider).setModelPaused(smallModel, false))
        .to.emit(tollgate, "ModelPauseChanged")
        .withArgs(smallModel, false);
      expect((await tollgate.modelOf(smallModel)).paused).to.equal(false);
    });

    it("reverts with RegistryPauseUnchanged when the model is already in that state", async function () {
      const { tollgate, provider, smallModel } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).setModelPaused(smallModel, false))
        .to.be.revertedWithCustomError(tollgate, "RegistryPauseUnchanged")
        .withArgs(smallModel, false);
      await tollgate.connect(provider).setModelPaused(smallModel, true);
      await expect(tollgate.connect(provider).setModelPaused(smallModel, true))
        .to.be.revertedWithCustomError(tollgate, "RegistryPauseUnchanged")
        .withArgs(smallModel, true);
    });

    it("reverts with RegistryNotProviderOwner and RegistryUnknownModel", async function () {
      const { tollgate, provider, smallModel, buyers } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(buyers[0]).setModelPaused(smallModel, true))
        .to.be.revertedWithCustomError(tollgate, "RegistryNotProviderOwner")
        .withArgs(1n, buyers[0].address);
      await expect(tollgate.connect(provider).setModelPaused(0n, true))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownModel")
        .withArgs(0n);
    });
  });

  describe("setSignerAuthorization", function () {
    it("authorizes a key: SignerAuthorizationChanged and signerOf", async function () {
      const { tollgate, provider, providerId } = await loadFixture(deployMarketplace);
      const key = ethers.Wallet.createRandom().address;
      const before = await tollgate.signerOf(key);
      expect([before.providerId, before.authorized, before.nextSequence]).to.deep.equal([0n, false, 0n]);
      await expect(tollgate.connect(provider).setSignerAuthorization(providerId, key, true))
        .to.emit(tollgate, "SignerAuthorizationChanged")
        .withArgs(key, providerId, true);
      const after = await tollgate.signerOf(key);
      expect([after.providerId, after.authorized, after.nextSequence]).to.deep.equal([providerId, true, 0n]);
    });

    it("the fixture's gateway key is authorized for provider 1", async function () {
      const { tollgate, gateway, providerId } = await loadFixture(deployMarketplace);
      const view = await tollgate.signerOf(gateway.address);
      expect([view.providerId, view.authorized]).to.deep.equal([providerId, true]);
    });

    it("revokes a key, which stays bound to its provider and can be re-authorized", async function () {
      const { tollgate, provider, providerId, gateway } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).setSignerAuthorization(providerId, gateway.address, false))
        .to.emit(tollgate, "SignerAuthorizationChanged")
        .withArgs(gateway.address, providerId, false);
      let view = await tollgate.signerOf(gateway.address);
      expect([view.providerId, view.authorized]).to.deep.equal([providerId, false]);
      await expect(tollgate.connect(provider).setSignerAuthorization(providerId, gateway.address, true))
        .to.emit(tollgate, "SignerAuthorizationChanged")
        .withArgs(gateway.address, providerId, true);
      view = await tollgate.signerOf(gateway.address);
      expect([view.providerId, view.authorized]).to.deep.equal([providerId, true]);
    });

    it("reverts with RegistrySignerUnchanged when authorizing twice, revoking twice, or revoking an unknown key", async function () {
      const { tollgate, provider, providerId, gateway } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).setSignerAuthorization(providerId, gateway.address, true))
        .to.be.revertedWithCustomError(tollgate, "RegistrySignerUnchanged")
        .withArgs(gateway.address, providerId, true);
      await tollgate.connect(provider).setSignerAuthorization(providerId, gateway.address, false);
      await expect(tollgate.connect(provider).setSignerAuthorization(providerId, gateway.address, false))
        .to.be.revertedWithCustomError(tollgate, "RegistrySignerUnchanged")
        .withArgs(gateway.address, providerId, false);
      const stranger = ethers.Wallet.createRandom().address;
      await expect(tollgate.connect(provider).setSignerAuthorization(providerId, stranger, false))
        .to.be.revertedWithCustomError(tollgate, "RegistrySignerUnchanged")
        .withArgs(stranger, providerId, false);
      expect((await tollgate.signerOf(stranger)).providerId).to.equal(0n);
    });

    it("reverts with RegistrySignerOfOtherProvider when another provider claims the key, even after revocation", async function () {
      const { tollgate, provider, providerId, gateway, rival, rivalId } = await loadFixture(twoProvidersFixture);
      await expect(tollgate.connect(rival).setSignerAuthorization(rivalId, gateway.address, true))
        .to.be.revertedWithCustomError(tollgate, "RegistrySignerOfOtherProvider")
        .withArgs(gateway.address, providerId);
      await expect(tollgate.connect(rival).setSignerAuthorization(rivalId, gateway.address, false))
        .to.be.revertedWithCustomError(tollgate, "RegistrySignerOfOtherProvider")
        .withArgs(gateway.address, providerId);
      await tollgate.connect(provider).setSignerAuthorization(providerId, gateway.address, false);
      await expect(tollgate.connect(rival).setSignerAuthorization(rivalId, gateway.address, true))
        .to.be.revertedWithCustomError(tollgate, "RegistrySignerOfOtherProvider")
        .withArgs(gateway.address, providerId);
      expect((await tollgate.signerOf(gateway.address)).providerId).to.equal(providerId);
    });

    it("a key serves one provider for life even when one owner runs both providers", async function () {
      const { tollgate, provider, providerId, gateway } = await loadFixture(deployMarketplace);
      await tollgate.connect(provider).registerProvider(provider.address, "second brand");
      await expect(tollgate.connect(provider).setSignerAuthorization(2n, gateway.address, true))
        .to.be.revertedWithCustomError(tollgate, "RegistrySignerOfOtherProvider")
        .withArgs(gateway.address, providerId);
    });

    it("reverts with RegistryZeroAddress for the zero key", async function () {
      const { tollgate, provider, providerId } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).setSignerAuthorization(providerId, ethers.ZeroAddress, true))
        .to.be.revertedWithCustomError(tollgate, "RegistryZeroAddress")
        .withArgs();
    });

    it("reverts with RegistryNotProviderOwner and RegistryUnknownProvider", async function () {
      const { tollgate, provider, providerId, buyers } = await loadFixture(deployMarketplace);
      const key = ethers.Wallet.createRandom().address;
      await expect(tollgate.connect(buyers[0]).setSignerAuthorization(providerId, key, true))
        .to.be.revertedWithCustomError(tollgate, "RegistryNotProviderOwner")
        .withArgs(providerId, buyers[0].address);
      await expect(tollgate.connect(provider).setSignerAuthorization(42n, key, true))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider")
        .withArgs(42n);
      expect((await tollgate.signerOf(key)).providerId).to.equal(0n);
    });
  });

  describe("views", function () {
    it("priceEpochOf reverts with RegistryUnknownPriceEpoch past the last epoch", async function () {
      const { tollgate, smallModel } = await loadFixture(deployMarketplace);
      expect(await epoch(tollgate, smallModel, 0n)).to.include(SMALL_PRICES);
      await expect(tollgate.priceEpochOf(smallModel, 1n))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownPriceEpoch")
        .withArgs(smallModel, 1n);
      await expect(tollgate.priceEpochOf(smallModel, ethers.MaxUint256))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownPriceEpoch")
        .withArgs(smallModel, ethers.MaxUint256);
    });

    it("modelOf and priceEpochOf revert with RegistryUnknownModel for id 0 and unlisted ids", async function () {
      const { tollgate } = await loadFixture(deployMarketplace);
      await expect(tollgate.modelOf(0n)).to.be.revertedWithCustomError(tollgate, "RegistryUnknownModel").withArgs(0n);
      await expect(tollgate.modelOf(3n)).to.be.revertedWithCustomError(tollgate, "RegistryUnknownModel").withArgs(3n);
      await expect(tollgate.priceEpochOf(3n, 0n))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownModel")
        .withArgs(3n);
    });
  });
});
