import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { creditsOf, deployMarketplace, FEE_BPS, SMALL_PRICES, USD } from "../../scripts/lib/marketplace-fixtures";
import {
  feeOn,
  latestTimestamp,
  marketplaceWithPlanFixture,
  minedAt,
  PLAN_PRICE,
  PLAN_VALUE,
  reentrantReceiverFixture,
} from "../helpers/contract-fixtures";
import type { Tollgate } from "../../typechain-types";

const MAX_CREDITS = 2n ** 128n - 1n;
const UINT96_MAX = 2n ** 96n - 1n;
const MAX_LIMIT_PERIOD = 366n * 24n * 3600n;
const DAY = 24n * 3600n;

async function plan(tollgate: Tollgate, planId: bigint) {
  const p = await tollgate.creditPlanOf(planId);
  return {
    providerId: p.providerId,
    expiresAt: p.expiresAt,
    pricePerCredit: p.pricePerCredit,
    valuePerCredit: p.valuePerCredit,
    modelMask: p.modelMask,
  };
}

async function limitOf(tollgate: Tollgate, buyer: string, providerId: bigint) {
  const l = await tollgate.spendingLimitOf(buyer, providerId);
  return { limitPerPeriod: l.limitPerPeriod, period: l.period, windowStart: l.windowStart, spentInWindow: l.spentInWindow };
}

/** Provider 1 (models 1, 2) with plan 1, plus a second provider (owner others[0]) with model 3. */
async function twoProvidersWithPlanFixture() {
  const market = await marketplaceWithPlanFixture();
  const [rival] = market.others;
  await market.tollgate.connect(rival).registerProvider(rival.address, "ipfs://rival");
  await market.tollgate.connect(rival).listModel(2n, "rival-model", SMALL_PRICES);
  return { ...market, rival, rivalId: 2n, rivalModel: 3n };
}

describe("AccessCredits", function () {
  describe("defineCreditPlan", function () {
    it("defines a plan with the mask of its models' local indices and emits CreditPlanDefined", async function () {
      const { tollgate, provider, providerId, smallModel, largeModel } = await loadFixture(deployMarketplace);
      expect(await tollgate.creditPlanCount()).to.equal(0n);
      await expect(
        tollgate.connect(provider).defineCreditPlan(providerId, PLAN_PRICE, PLAN_VALUE, [smallModel, largeModel], 0),
      )
        .to.emit(tollgate, "CreditPlanDefined")
        .withArgs(1n, providerId, PLAN_PRICE, PLAN_VALUE, 0b11n, 0n);
      expect(await plan(tollgate, 1n)).to.deep.equal({
        providerId,
        expiresAt: 0n,
        pricePerCredit: PLAN_PRICE,
        valuePerCredit: PLAN_VALUE,
        modelMask: 0b11n,
      });

      await expect(tollgate.connect(provider).defineCreditPlan(providerId, USD(2), USD(3), [largeModel], 12345))
        .to.emit(tollgate, "CreditPlanDefined")
        .withArgs(2n, providerId, USD(2), USD(3), 0b10n, 12345n);
      expect((await plan(tollgate, 2n)).modelMask).to.equal(0b10n);
      expect((await plan(tollgate, 2n)).expiresAt).to.equal(12345n);
      expect(await tollgate.creditPlanCount()).to.equal(2n);
    });

    it("sets bit i for the model with local index i, whatever its global id, and tolerates duplicates", async function () {
      const { tollgate, provider, providerId, rival, rivalId } = await loadFixture(twoProvidersWithPlanFixture);
      // Provider 1 lists a third model after the rival's: global id 4, local index 2.
      await tollgate.connect(rival).listModel(rivalId, "rival-2", SMALL_PRICES);
      await tollgate.connect(provider).listModel(providerId, "third", SMALL_PRICES);
      expect((await tollgate.modelOf(5n)).localIndex).to.equal(2n);
      await expect(tollgate.connect(provider).defineCreditPlan(providerId, 1n, 1n, [5n, 1n, 5n], 0))
        .to.emit(tollgate, "CreditPlanDefined")
        .withArgs(2n, providerId, 1n, 1n, 0b101n, 0n);
      // The rival's second model (id 4) has local index 1.
      await expect(tollgate.connect(rival).defineCreditPlan(rivalId, 1n, 1n, [4n], 0))
        .to.emit(tollgate, "CreditPlanDefined")
        .withArgs(3n, rivalId, 1n, 1n, 0b10n, 0n);
    });

    it("reverts with CreditsInvalidPlan for a zero value per credit or no models", async function () {
      const { tollgate, provider, providerId, smallModel } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).defineCreditPlan(providerId, PLAN_PRICE, 0n, [smallModel], 0))
        .to.be.revertedWithCustomError(tollgate, "CreditsInvalidPlan")
        .withArgs();
      await expect(tollgate.connect(provider).defineCreditPlan(providerId, PLAN_PRICE, PLAN_VALUE, [], 0))
        .to.be.revertedWithCustomError(tollgate, "CreditsInvalidPlan")
        .withArgs();
      expect(await tollgate.creditPlanCount()).to.equal(0n);
    });

    it("reverts with CreditsModelNotOfProvider for another provider's model", async function () {
      const { tollgate, provider, providerId, smallModel, rivalModel } = await loadFixture(twoProvidersWithPlanFixture);
      await expect(
        tollgate.connect(provider).defineCreditPlan(providerId, PLAN_PRICE, PLAN_VALUE, [smallModel, rivalModel], 0),
      )
        .to.be.revertedWithCustomError(tollgate, "CreditsModelNotOfProvider")
        .withArgs(rivalModel, providerId);
    });

    it("reverts with RegistryUnknownModel for an unlisted model", async function () {
      const { tollgate, provider, providerId } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).defineCreditPlan(providerId, PLAN_PRICE, PLAN_VALUE, [77n], 0))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownModel")
        .withArgs(77n);
    });

    it("reverts with CreditsPriceOutOfRange for a price or value of 2^96, and accepts 2^96 - 1", async function () {
      const { tollgate, provider, providerId, smallModel } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(provider).defineCreditPlan(providerId, 2n ** 96n, PLAN_VALUE, [smallModel], 0))
        .to.be.revertedWithCustomError(tollgate, "CreditsPriceOutOfRange")
        .withArgs(2n ** 96n);
      await expect(tollgate.connect(provider).defineCreditPlan(providerId, PLAN_PRICE, 2n ** 96n, [smallModel], 0))
        .to.be.revertedWithCustomError(tollgate, "CreditsPriceOutOfRange")
        .withArgs(2n ** 96n);
      await tollgate.connect(provider).defineCreditPlan(providerId, UINT96_MAX, UINT96_MAX, [smallModel], 0);
      expect(await plan(tollgate, 1n)).to.include({ pricePerCredit: UINT96_MAX, valuePerCredit: UINT96_MAX });
    });

    it("reverts with RegistryNotProviderOwner for non-owners and RegistryUnknownProvider for unknown providers", async function () {
      const { tollgate, provider, providerId, smallModel, buyers } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(buyers[0]).defineCreditPlan(providerId, 1n, 1n, [smallModel], 0))
        .to.be.revertedWithCustomError(tollgate, "RegistryNotProviderOwner")
        .withArgs(providerId, buyers[0].address);
      await expect(tollgate.connect(provider).defineCreditPlan(3n, 1n, 1n, [smallModel], 0))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider")
        .withArgs(3n);
    });

    it("creditPlanOf reverts with CreditsUnknownPlan for plan 0 and undefined plans", async function () {
      const { tollgate } = await loadFixture(marketplaceWithPlanFixture);
      await expect(tollgate.creditPlanOf(0n)).to.be.revertedWithCustomError(tollgate, "CreditsUnknownPlan").withArgs(0n);
      await expect(tollgate.creditPlanOf(2n)).to.be.revertedWithCustomError(tollgate, "CreditsUnknownPlan").withArgs(2n);
    });
  });

  describe("buyCredits (from the wallet)", function () {
    it("mints credits to the recipient and splits the payment into earnings and protocol fee", async function () {
      const { tollgate, token, buyers, planId, providerId } = await loadFixture(marketplaceWithPlanFixture);
      const [payer, recipient] = buyers;
      const amount = 5n;
      const price = amount * PLAN_PRICE;
      const fee = feeOn(price);
      expect(fee).to.equal(125_000n); // 2.5% of $5

      const call = tollgate.connect(payer).buyCredits(planId, amount, recipient.address);
      await expect(call)
        .to.emit(tollgate, "CreditsPurchased")
        .withArgs(planId, payer.address, recipient.address, amount, price, fee);
      await expect(call)
        .to.emit(await creditsOf(tollgate), "TransferSingle")
        .withArgs(await tollgate.getAddress(), ethers.ZeroAddress, recipient.address, planId, amount); // Tollgate is the minting operator
      await expect(call).to.changeTokenBalances(token, [payer, recipient, tollgate], [-price, 0n, price]);

      expect(await (await creditsOf(tollgate)).balanceOf(recipient.address, planId)).to.equal(amount);
      expect(await (await creditsOf(tollgate)).balanceOf(payer.address, planId)).to.equal(0n);
      expect(await tollgate.earningsOf(providerId)).to.equal(price - fee);
      expect(await tollgate.protocolFeesAccrued()).to.equal(fee);
      // The wallet purchase never touches vault balances.
      expect((await tollgate.accountOf(payer.address)).balance).to.equal(0n);
    });

    it("rounds the protocol fee up: ceil(price * 250 / 10000)", async function () {
      const { tollgate, provider, providerId, smallModel, buyers } = await loadFixture(deployMarketplace);
      await tollgate.connect(provider).defineCreditPlan(providerId, 333_333n, 400_000n, [smallModel], 0);
      const price = 3n * 333_333n; // 999_999: 2.5% is 24_999.975
      await expect(tollgate.connect(buyers[0]).buyCredits(1n, 3n, buyers[0].address))
        .to.emit(tollgate, "CreditsPurchased")
        .withArgs(1n, buyers[0].address, buyers[0].address, 3n, price, 25_000n);
      expect(await tollgate.protocolFeesAccrued()).to.equal(25_000n);
      expect(await tollgate.earningsOf(providerId)).to.equal(price - 25_000n);
      expect(FEE_BPS).to.equal(250n);

      // A single base unit still pays a fee of one unit.
      await tollgate.connect(provider).defineCreditPlan(providerId, 1n, 1n, [smallModel], 0);
      await tollgate.connect(buyers[1]).buyCredits(2n, 1n, buyers[1].address);
      expect(await tollgate.protocolFeesAccrued()).to.equal(25_001n);
      expect(await tollgate.earningsOf(providerId)).to.equal(price - 25_000n);
    });

    it("accumulates earnings and fees over several purchases, conserving the vault's tokens", async function () {
      const { tollgate, token, buyers, planId, providerId } = await loadFixture(marketplaceWithPlanFixture);
      let earnings = 0n;
      let fees = 0n;
      for (const [i, amount] of [1n, 7n, 13n].entries()) {
        await tollgate.connect(buyers[i]).buyCredits(planId, amount, buyers[i].address);
        const price = amount * PLAN_PRICE;
        fees += feeOn(price);
        earnings += price - feeOn(price);
        expect(await (await creditsOf(tollgate)).balanceOf(buyers[i].address, planId)).to.equal(amount);
      }
      expect(await tollgate.earningsOf(providerId)).to.equal(earnings);
      expect(await tollgate.protocolFeesAccrued()).to.equal(fees);
      expect(await token.balanceOf(await tollgate.getAddress())).to.equal(earnings + fees);
    });

    it("reverts with the token's error when the wallet cannot pay", async function () {
      const { tollgate, token, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const [buyer] = buyers;
      await expect(tollgate.connect(buyer).buyCredits(planId, 1_001n, buyer.address))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientBalance")
        .withArgs(buyer.address, USD(1_000), 1_001n * PLAN_PRICE);
    });

    it("reverts with CreditsUnknownPlan for an undefined plan", async function () {
      const { tollgate, buyers } = await loadFixture(marketplaceWithPlanFixture);
      await expect(tollgate.connect(buyers[0]).buyCredits(9n, 1n, buyers[0].address))
        .to.be.revertedWithCustomError(tollgate, "CreditsUnknownPlan")
        .withArgs(9n);
      await expect(tollgate.connect(buyers[0]).buyCreditsWithBalance(9n, 1n, buyers[0].address))
        .to.be.revertedWithCustomError(tollgate, "CreditsUnknownPlan")
        .withArgs(9n);
    });

    it("reverts with CreditsAmountOutOfRange for 0 and for MAX_CREDITS_PER_PURCHASE + 1", async function () {
      const { tollgate, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const buyer = buyers[0];
      expect(await tollgate.MAX_CREDITS_PER_PURCHASE()).to.equal(MAX_CREDITS);
      for (const amount of [0n, MAX_CREDITS + 1n]) {
        await expect(tollgate.connect(buyer).buyCredits(planId, amount, buyer.address))
          .to.be.revertedWithCustomError(tollgate, "CreditsAmountOutOfRange")
          .withArgs(amount, MAX_CREDITS);
        await expect(tollgate.connect(buyer).buyCreditsWithBalance(planId, amount, buyer.address))
          .to.be.revertedWithCustomError(tollgate, "CreditsAmountOutOfRange")
          .withArgs(amount, MAX_CREDITS);
      }
    });

    it("sells MAX_CREDITS_PER_PURCHASE credits in one purchase when the price allows it", async function () {
      const { tollgate, token, provider, providerId, smallModel, buyers } = await loadFixture(deployMarketplace);
      await tollgate.connect(provider).defineCreditPlan(providerId, 1n, 1n, [smallModel], 0);
      const buyer = buyers[0];
      await token.mint(buyer.address, MAX_CREDITS);
      await expect(tollgate.connect(buyer).buyCredits(1n, MAX_CREDITS, buyer.address))
        .to.emit(tollgate, "CreditsPurchased")
        .withArgs(1n, buyer.address, buyer.address, MAX_CREDITS, MAX_CREDITS, feeOn(MAX_CREDITS));
      expect(await (await creditsOf(tollgate)).balanceOf(buyer.address, 1n)).to.equal(MAX_CREDITS);
    });

    it("reverts with CreditsPlanExpired from the plan's expiresAt on", async function () {
      const { tollgate, provider, providerId, smallModel, buyers } = await loadFixture(deployMarketplace);
      const expiresAt = (await latestTimestamp()) + 1_000n;
      await tollgate.connect(provider).defineCreditPlan(providerId, PLAN_PRICE, PLAN_VALUE, [smallModel], expiresAt);
      await time.setNextBlockTimestamp(expiresAt - 1n);
      await tollgate.connect(buyers[0]).buyCredits(1n, 1n, buyers[0].address);
      expect(await (await creditsOf(tollgate)).balanceOf(buyers[0].address, 1n)).to.equal(1n);

      await time.setNextBlockTimestamp(expiresAt);
      await expect(tollgate.connect(buyers[0]).buyCredits(1n, 1n, buyers[0].address))
        .to.be.revertedWithCustomError(tollgate, "CreditsPlanExpired")
        .withArgs(1n, expiresAt);
      await tollgate.connect(buyers[0]).deposit(buyers[0].address, USD(5));
      await expect(tollgate.connect(buyers[0]).buyCreditsWithBalance(1n, 1n, buyers[0].address))
        .to.be.revertedWithCustomError(tollgate, "CreditsPlanExpired")
        .withArgs(1n, expiresAt);
      expect(await (await creditsOf(tollgate)).balanceOf(buyers[0].address, 1n)).to.equal(1n);
    });

    it("a plan defined with a past expiry can never be bought", async function () {
      const { tollgate, provider, providerId, smallModel, buyers } = await loadFixture(deployMarketplace);
      await tollgate.connect(provider).defineCreditPlan(providerId, PLAN_PRICE, PLAN_VALUE, [smallModel], 1);
      await expect(tollgate.connect(buyers[0]).buyCredits(1n, 1n, buyers[0].address))
        .to.be.revertedWithCustomError(tollgate, "CreditsPlanExpired")
        .withArgs(1n, 1n);
    });

    it("reverts with ERC1155InvalidReceiver for the zero recipient or a contract that cannot receive", async function () {
      const { tollgate, token, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      await expect(tollgate.connect(buyers[0]).buyCredits(planId, 1n, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(await creditsOf(tollgate), "ERC1155InvalidReceiver")
        .withArgs(ethers.ZeroAddress);
      const tokenAddress = await token.getAddress();
      await expect(tollgate.connect(buyers[0]).buyCredits(planId, 1n, tokenAddress))
        .to.be.revertedWithCustomError(await creditsOf(tollgate), "ERC1155InvalidReceiver")
        .withArgs(tokenAddress);
    });

    it("purchases revert with EnforcedPause while paused and work again after unpause", async function () {
      const { tollgate, owner, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const [buyer] = buyers;
      await tollgate.connect(buyer).deposit(buyer.address, USD(10));
      await tollgate.connect(owner).pause();
      await expect(tollgate.connect(buyer).buyCredits(planId, 1n, buyer.address))
        .to.be.revertedWithCustomError(tollgate, "EnforcedPause")
        .withArgs();
      await expect(tollgate.connect(buyer).buyCreditsWithBalance(planId, 1n, buyer.address))
        .to.be.revertedWithCustomError(tollgate, "EnforcedPause")
        .withArgs();
      expect(await (await creditsOf(tollgate)).balanceOf(buyer.address, planId)).to.equal(0n);
      await tollgate.connect(owner).unpause();
      await tollgate.connect(buyer).buyCredits(planId, 1n, buyer.address);
      await tollgate.connect(buyer).buyCreditsWithBalance(planId, 1n, buyer.address);
      expect(await (await creditsOf(tollgate)).balanceOf(buyer.address, planId)).to.equal(2n);
    });

    it("a plan priced at zero hands out credits without moving tokens or taking a fee", async function () {
      const { tollgate, token, provider, providerId, smallModel, buyers } = await loadFixture(deployMarketplace);
      await tollgate.connect(provider).defineCreditPlan(providerId, 0n, PLAN_VALUE, [smallModel], 0);
      const call = tollgate.connect(buyers[0]).buyCredits(1n, 10n, buyers[0].address);
      await expect(call)
        .to.emit(tollgate, "CreditsPurchased")
        .withArgs(1n, buyers[0].address, buyers[0].address, 10n, 0n, 0n);
      await expect(call).to.changeTokenBalances(token, [buyers[0], tollgate], [0n, 0n]);
      expect(await (await creditsOf(tollgate)).balanceOf(buyers[0].address, 1n)).to.equal(10n);
      expect(await tollgate.earningsOf(providerId)).to.equal(0n);
    });
  });

  describe("buyCreditsWithBalance", function () {
    it("debits the buyer's vault balance and splits the price into earnings and fee", async function () {
      const { tollgate, token, buyers, planId, providerId } = await loadFixture(marketplaceWithPlanFixture);
      const [buyer, recipient] = buyers;
      await tollgate.connect(buyer).deposit(buyer.address, USD(10));
      const price = 3n * PLAN_PRICE;
      const fee = feeOn(price);
      const call = tollgate.connect(buyer).buyCreditsWithBalance(planId, 3n, recipient.address);
      await expect(call)
        .to.emit(tollgate, "CreditsPurchased")
        .withArgs(planId, buyer.address, recipient.address, 3n, price, fee);
      await expect(call).to.changeTokenBalances(token, [buyer, tollgate], [0n, 0n]);
      expect((await tollgate.accountOf(buyer.address)).balance).to.equal(USD(10) - price);
      expect(await (await creditsOf(tollgate)).balanceOf(recipient.address, planId)).to.equal(3n);
      expect(await tollgate.earningsOf(providerId)).to.equal(price - fee);
      expect(await tollgate.protocolFeesAccrued()).to.equal(fee);
    });

    it("spends exactly the whole balance", async function () {
      const { tollgate, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const [buyer] = buyers;
      await tollgate.connect(buyer).deposit(buyer.address, 4n * PLAN_PRICE);
      await tollgate.connect(buyer).buyCreditsWithBalance(planId, 4n, buyer.address);
      expect((await tollgate.accountOf(buyer.address)).balance).to.equal(0n);
    });

    it("reverts with VaultInsufficientBalance when the balance is short", async function () {
      const { tollgate, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const [buyer] = buyers;
      await expect(tollgate.connect(buyer).buyCreditsWithBalance(planId, 1n, buyer.address))
        .to.be.revertedWithCustomError(tollgate, "VaultInsufficientBalance")
        .withArgs(buyer.address, 0n, PLAN_PRICE);
      await tollgate.connect(buyer).deposit(buyer.address, USD("2.5"));
      await expect(tollgate.connect(buyer).buyCreditsWithBalance(planId, 3n, buyer.address))
        .to.be.revertedWithCustomError(tollgate, "VaultInsufficientBalance")
        .withArgs(buyer.address, USD("2.5"), 3n * PLAN_PRICE);
    });

    it("cannot spend money pending withdrawal", async function () {
      const { tollgate, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const [buyer] = buyers;
      await tollgate.connect(buyer).deposit(buyer.address, USD(10));
      await tollgate.connect(buyer).requestWithdrawal(USD(8));
      await expect(tollgate.connect(buyer).buyCreditsWithBalance(planId, 3n, buyer.address))
        .to.be.revertedWithCustomError(tollgate, "VaultInsufficientBalance")
        .withArgs(buyer.address, USD(2), 3n * PLAN_PRICE);
      expect((await tollgate.accountOf(buyer.address)).pendingWithdrawal).to.equal(USD(8));
    });
  });

  describe("credits as ERC-1155 tokens", function () {
    it("only its Tollgate can mint or burn credits: anyone else gets CreditsOnlyTollgate", async function () {
      const { tollgate, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const credits = await creditsOf(tollgate);
      expect(await credits.tollgate()).to.equal(await tollgate.getAddress());
      const [attacker] = buyers;
      await expect(credits.connect(attacker).mint(attacker.address, planId, 1n))
        .to.be.revertedWithCustomError(credits, "CreditsOnlyTollgate")
        .withArgs(attacker.address);
      await tollgate.connect(attacker).buyCredits(planId, 2n, attacker.address);
      await expect(credits.connect(attacker).burn(attacker.address, planId, 1n))
        .to.be.revertedWithCustomError(credits, "CreditsOnlyTollgate")
        .withArgs(attacker.address);
      expect(await credits.balanceOf(attacker.address, planId)).to.equal(2n);
    });

    it("credits can be resold with safeTransferFrom", async function () {
      const { tollgate, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const [seller, purchaser] = buyers;
      await tollgate.connect(seller).buyCredits(planId, 10n, seller.address);
      await expect((await creditsOf(tollgate)).connect(seller).safeTransferFrom(seller.address, purchaser.address, planId, 4n, "0x"))
        .to.emit(await creditsOf(tollgate), "TransferSingle")
        .withArgs(seller.address, seller.address, purchaser.address, planId, 4n);
      expect(await (await creditsOf(tollgate)).balanceOf(seller.address, planId)).to.equal(6n);
      expect(await (await creditsOf(tollgate)).balanceOf(purchaser.address, planId)).to.equal(4n);
    });

    it("an approved operator can move credits, an unapproved one cannot", async function () {
      const { tollgate, buyers, others, planId } = await loadFixture(marketplaceWithPlanFixture);
      const [holder, destination] = buyers;
      const operator = others[2];
      await tollgate.connect(holder).buyCredits(planId, 3n, holder.address);
      await expect(
        (await creditsOf(tollgate)).connect(operator).safeTransferFrom(holder.address, destination.address, planId, 1n, "0x"),
      )
        .to.be.revertedWithCustomError(await creditsOf(tollgate), "ERC1155MissingApprovalForAll")
        .withArgs(operator.address, holder.address);
      await (await creditsOf(tollgate)).connect(holder).setApprovalForAll(operator.address, true);
      await (await creditsOf(tollgate)).connect(operator).safeTransferFrom(holder.address, destination.address, planId, 3n, "0x");
      expect(await (await creditsOf(tollgate)).balanceOf(destination.address, planId)).to.equal(3n);
      expect(await (await creditsOf(tollgate)).balanceOf(holder.address, planId)).to.equal(0n);
    });

    it("transferring more credits than held reverts with ERC1155InsufficientBalance", async function () {
      const { tollgate, buyers, planId } = await loadFixture(marketplaceWithPlanFixture);
      const [holder, destination] = buyers;
      await tollgate.connect(holder).buyCredits(planId, 2n, holder.address);
      await expect((await creditsOf(tollgate)).connect(holder).safeTransferFrom(holder.address, destination.address, planId, 3n, "0x"))
        .to.be.revertedWithCustomError(await creditsOf(tollgate), "ERC1155InsufficientBalance")
        .withArgs(holder.address, 2n, 3n, planId);
    });

    it("supports the ERC-1155 and ERC-165 interfaces", async function () {
      const { tollgate } = await loadFixture(marketplaceWithPlanFixture);
      expect(await (await creditsOf(tollgate)).supportsInterface("0xd9b67a26")).to.equal(true); // IERC1155
      expect(await (await creditsOf(tollgate)).supportsInterface("0x01ffc9a7")).to.equal(true); // IERC165
      expect(await (await creditsOf(tollgate)).supportsInterface("0xffffffff")).to.equal(false);
    });
  });

  describe("reentrancy through the ERC-1155 receiver hook", function () {
    it("a receiver re-entering buyCreditsWithBalance on mint hits ReentrancyGuardReentrantCall; one purchase stands", async function () {
      const { tollgate, buyers, planId, providerId, receiver, receiverAddress } =
        await loadFixture(reentrantReceiverFixture);
      const [buyer] = buyers;
      const tollgateAddress = await tollgate.getAddress();
      const reentry = tollgate.interface.encodeFunctionData("buyCreditsWithBalance", [planId, 1n, receiverAddress]);
      await receiver.arm(reentry);
      expect((await tollgate.accountOf(receiverAddress)).balance).to.equal(USD(50));

      const tx = await tollgate.connect(buyer).buyCredits(planId, 2n, receiverAddress);
      const receipt = await tx.wait();
      const purchases = receipt!.logs.filter(
        (log) => log.address === tollgateAddress && tollgate.interface.parseLog(log)?.name === "CreditsPurchased",
      );
      expect(purchases.length).to.equal(1);

      expect(await receiver.reentered()).to.equal(true);
      expect(await receiver.lastCallbackSucceeded()).to.equal(false);
      const result = await receiver.lastCallbackResult();
      expect(result).to.equal(tollgate.interface.getError("ReentrancyGuardReentrantCall")!.selector);
      expect(tollgate.interface.parseError(result)!.name).to.equal("ReentrancyGuardReentrantCall");

      const price = 2n * PLAN_PRICE;
      expect(await (await creditsOf(tollgate)).balanceOf(receiverAddress, planId)).to.equal(2n);
      expect((await tollgate.accountOf(receiverAddress)).balance).to.equal(USD(50));
      expect(await tollgate.earningsOf(providerId)).to.equal(price - feeOn(price));
      expect(await tollgate.protocolFeesAccrued()).to.equal(feeOn(price));
    });

    it("the same call made outside the hook succeeds, so the guard is what stopped it", async function () {
      const { tollgate, buyers, planId, receiver, receiverAddress } = await loadFixture(reentrantReceiverFixture);
      const reentry = tollgate.interface.encodeFunctionData("buyCreditsWithBalance", [planId, 1n, receiverAddress]);
      await receiver.arm(reentry);
      await tollgate.connect(buyers[0]).buyCredits(planId, 2n, receiverAddress);
      expect(await receiver.lastCallbackSucceeded()).to.equal(false);

      await receiver.execute(await tollgate.getAddress(), reentry);
      expect(await (await creditsOf(tollgate)).balanceOf(receiverAddress, planId)).to.equal(3n);
      expect((await tollgate.accountOf(receiverAddress)).balance).to.equal(USD(50) - PLAN_PRICE);
    });

    it("a receiver re-entering during buyCreditsWithBalance is stopped the same way", async function () {
      const { tollgate, buyers, planId, receiver, receiverAddress } = await loadFixture(reentrantReceiverFixture);
      const [buyer] = buyers;
      await tollgate.connect(buyer).deposit(buyer.address, USD(10));
      await receiver.arm(tollgate.interface.encodeFunctionData("requestWithdrawal", [USD(50)]));
      await tollgate.connect(buyer).buyCreditsWithBalance(planId, 1n, receiverAddress);
      expect(await receiver.reentered()).to.equal(true);
      expect(await receiver.lastCallbackSucceeded()).to.equal(false);
      expect(await receiver.lastCallbackResult()).to.equal(
        tollgate.interface.getError("ReentrancyGuardReentrantCall")!.selector,
      );
      const view = await tollgate.accountOf(receiverAddress);
      expect([view.balance, view.pendingWithdrawal]).to.deep.equal([USD(50), 0n]);
      expect((await tollgate.accountOf(buyer.address)).balance).to.equal(USD(10) - PLAN_PRICE);
    });
  });
});

describe("SpendingLimits", function () {
  it("setSpendingLimit stores the limit, starts the window at the block time and emits SpendingLimitSet", async function () {
    const { tollgate, buyers, providerId } = await loadFixture(deployMarketplace);
    const [buyer] = buyers;
    expect(await limitOf(tollgate, buyer.address, providerId)).to.deep.equal({
      limitPerPeriod: 0n,
      period: 0n,
      windowStart: 0n,
      spentInWindow: 0n,
    });
    const tx = await tollgate.connect(buyer).setSpendingLimit(providerId, USD(100), DAY);
    await expect(tx).to.emit(tollgate, "SpendingLimitSet").withArgs(buyer.address, providerId, USD(100), DAY);
    expect(await limitOf(tollgate, buyer.address, providerId)).to.deep.equal({
      limitPerPeriod: USD(100),
      period: DAY,
      windowStart: await minedAt(tx),
      spentInWindow: 0n,
    });
  });

  it("changing a limit keeps the current window's start", async function () {
    const { tollgate, buyers, providerId } = await loadFixture(deployMarketplace);
    const [buyer] = buyers;
    const first = await tollgate.connect(buyer).setSpendingLimit(providerId, USD(100), DAY);
    const windowStart = await minedAt(first);
    await time.increase(3_600);
    await expect(tollgate.connect(buyer).setSpendingLimit(providerId, USD(20), 7n * DAY))
      .to.emit(tollgate, "SpendingLimitSet")
      .withArgs(buyer.address, providerId, USD(20), 7n * DAY);
    expect(await limitOf(tollgate, buyer.address, providerId)).to.deep.equal({
      limitPerPeriod: USD(20),
      period: 7n * DAY,
      windowStart,
      spentInWindow: 0n,
    });
  });

  it("limits are kept per buyer and per provider", async function () {
    const { tollgate, buyers, providerId, others } = await loadFixture(deployMarketplace);
    await tollgate.connect(others[0]).registerProvider(others[0].address, "second");
    await tollgate.connect(buyers[0]).setSpendingLimit(providerId, USD(5), DAY);
    expect((await limitOf(tollgate, buyers[0].address, 2n)).period).to.equal(0n);
    expect((await limitOf(tollgate, buyers[1].address, providerId)).period).to.equal(0n);
    await tollgate.connect(buyers[0]).setSpendingLimit(2n, USD(7), 2n * DAY);
    expect((await limitOf(tollgate, buyers[0].address, providerId)).limitPerPeriod).to.equal(USD(5));
    expect((await limitOf(tollgate, buyers[0].address, 2n)).limitPerPeriod).to.equal(USD(7));
  });

  it("clearSpendingLimit removes the limit and emits SpendingLimitCleared", async function () {
    const { tollgate, buyers, providerId } = await loadFixture(deployMarketplace);
    const [buyer] = buyers;
    await tollgate.connect(buyer).setSpendingLimit(providerId, USD(100), DAY);
    await expect(tollgate.connect(buyer).clearSpendingLimit(providerId))
      .to.emit(tollgate, "SpendingLimitCleared")
      .withArgs(buyer.address, providerId);
    expect(await limitOf(tollgate, buyer.address, providerId)).to.deep.equal({
      limitPerPeriod: 0n,
      period: 0n,
      windowStart: 0n,
      spentInWindow: 0n,
    });
    // A fresh limit after clearing starts a fresh window.
    await time.increase(100);
    const again = await tollgate.connect(buyer).setSpendingLimit(providerId, USD(1), DAY);
    expect((await limitOf(tollgate, buyer.address, providerId)).windowStart).to.equal(await minedAt(again));
  });

  it("clearing one buyer's limit leaves another buyer's in place", async function () {
    const { tollgate, buyers, providerId } = await loadFixture(deployMarketplace);
    await tollgate.connect(buyers[0]).setSpendingLimit(providerId, USD(3), DAY);
    await tollgate.connect(buyers[1]).setSpendingLimit(providerId, USD(4), DAY);
    await tollgate.connect(buyers[0]).clearSpendingLimit(providerId);
    expect((await limitOf(tollgate, buyers[0].address, providerId)).period).to.equal(0n);
    expect((await limitOf(tollgate, buyers[1].address, providerId)).limitPerPeriod).to.equal(USD(4));
  });

  it("reverts with LimitInvalidPeriod for a zero period and for one above 366 days", async function () {
    const { tollgate, buyers, providerId } = await loadFixture(deployMarketplace);
    const [buyer] = buyers;
    await expect(tollgate.connect(buyer).setSpendingLimit(providerId, USD(1), 0n))
      .to.be.revertedWithCustomError(tollgate, "LimitInvalidPeriod")
      .withArgs(0n, MAX_LIMIT_PERIOD);
    await expect(tollgate.connect(buyer).setSpendingLimit(providerId, USD(1), MAX_LIMIT_PERIOD + 1n))
      .to.be.revertedWithCustomError(tollgate, "LimitInvalidPeriod")
      .withArgs(MAX_LIMIT_PERIOD + 1n, MAX_LIMIT_PERIOD);
    await tollgate.connect(buyer).setSpendingLimit(providerId, USD(1), MAX_LIMIT_PERIOD);
    expect((await limitOf(tollgate, buyer.address, providerId)).period).to.equal(MAX_LIMIT_PERIOD);
    await tollgate.connect(buyer).setSpendingLimit(providerId, USD(1), 1n);
    expect((await limitOf(tollgate, buyer.address, providerId)).period).to.equal(1n);
  });

  it("reverts with LimitOutOfRange for a limit of 2^96, and accepts 2^96 - 1 and 0", async function () {
    const { tollgate, buyers, providerId } = await loadFixture(deployMarketplace);
    const [buyer] = buyers;
    await expect(tollgate.connect(buyer).setSpendingLimit(providerId, 2n ** 96n, DAY))
      .to.be.revertedWithCustomError(tollgate, "LimitOutOfRange")
      .withArgs(2n ** 96n);
    await tollgate.connect(buyer).setSpendingLimit(providerId, UINT96_MAX, DAY);
    expect((await limitOf(tollgate, buyer.address, providerId)).limitPerPeriod).to.equal(UINT96_MAX);
    await tollgate.connect(buyer).setSpendingLimit(providerId, 0n, DAY);
    expect(await limitOf(tollgate, buyer.address, providerId)).to.include({ limitPerPeriod: 0n, period: DAY });
  });

  it("setSpendingLimit and clearSpendingLimit revert with RegistryUnknownProvider for an unknown provider", async function () {
    const { tollgate, buyers } = await loadFixture(deployMarketplace);
    const [buyer] = buyers;
    await expect(tollgate.connect(buyer).setSpendingLimit(2n, USD(1), DAY))
      .to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider")
      .withArgs(2n);
    await expect(tollgate.connect(buyer).clearSpendingLimit(2n))
      .to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider")
      .withArgs(2n);
    await expect(tollgate.connect(buyer).setSpendingLimit(0n, USD(1), DAY))
      .to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider")
      .withArgs(0n);
  });
});
