import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { creditsOf, deployMarketplace, FEE_BPS, PRICE_NOTICE, USD, WITHDRAWAL_DELAY } from "../../scripts/lib/marketplace-fixtures";
import {
  emptyTollgateFixture,
  feeOn,
  feeOnTransferFixture,
  latestTimestamp,
  marketplaceWithPlanFixture,
  minedAt,
  PLAN_PRICE,
  reentrantTokenFixture,
  signPermit,
} from "../helpers/contract-fixtures";
import type { Tollgate } from "../../typechain-types";

const MAX_ACCOUNT_BALANCE = 2n ** 104n - 1n;

async function account(tollgate: Tollgate, buyer: string) {
  const view = await tollgate.accountOf(buyer);
  return { balance: view.balance, pendingWithdrawal: view.pendingWithdrawal, withdrawableAt: view.withdrawableAt };
}

describe("TollgateVault", function () {
  describe("deployment", function () {
    it("exposes the token, delay, fee, treasury, owner and constants it was deployed with", async function () {
      const { tollgate, token, treasury, owner } = await loadFixture(emptyTollgateFixture);
      expect(await tollgate.paymentToken()).to.equal(await token.getAddress());
      expect(await tollgate.withdrawalDelay()).to.equal(WITHDRAWAL_DELAY);
      expect(await tollgate.priceNoticePeriod()).to.equal(PRICE_NOTICE);
      expect(await tollgate.protocolFeeBps()).to.equal(FEE_BPS);
      expect(await tollgate.treasury()).to.equal(treasury.address);
      expect(await tollgate.owner()).to.equal(owner.address);
      expect(await tollgate.MAX_FEE_BPS()).to.equal(1_000n);
      expect(await tollgate.MAX_ACCOUNT_BALANCE()).to.equal(MAX_ACCOUNT_BALANCE);
      expect(await tollgate.paused()).to.equal(false);
    });

    it("deploys its own credits token, which names it as the only minter", async function () {
      const { tollgate } = await loadFixture(emptyTollgateFixture);
      const credits = await creditsOf(tollgate);
      expect(ethers.dataLength(await ethers.provider.getCode(await credits.getAddress()))).to.be.greaterThan(0);
      expect(await credits.tollgate()).to.equal(await tollgate.getAddress());
    });

    it("refuses a zero payment token or treasury with VaultZeroAddress", async function () {
      const [owner, treasury] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("Tollgate");
      const token = await ethers.deployContract("TestUSD");
      await expect(
        factory.deploy(ethers.ZeroAddress, WITHDRAWAL_DELAY, PRICE_NOTICE, FEE_BPS, treasury.address, owner.address),
      ).to.be.revertedWithCustomError(factory, "VaultZeroAddress");
      await expect(
        factory.deploy(await token.getAddress(), WITHDRAWAL_DELAY, PRICE_NOTICE, FEE_BPS, ethers.ZeroAddress, owner.address),
      ).to.be.revertedWithCustomError(factory, "VaultZeroAddress");
    });

    it("refuses a protocol fee above MAX_FEE_BPS at deployment with VaultFeeTooHigh", async function () {
      const [owner, treasury] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("Tollgate");
      const token = await ethers.deployContract("TestUSD");
      await expect(
        factory.deploy(await token.getAddress(), WITHDRAWAL_DELAY, PRICE_NOTICE, 1_001n, treasury.address, owner.address),
      )
        .to.be.revertedWithCustomError(factory, "VaultFeeTooHigh")
        .withArgs(1_001n, 1_000n);
    });

    it("refuses a withdrawal delay above MAX_WITHDRAWAL_DELAY, which would wrap the stored uint32 withdrawal time", async function () {
      const [owner, treasury] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("Tollgate");
      const token = await ethers.deployContract("TestUSD");
      const max = 365n * 24n * 3600n;
      await expect(factory.deploy(await token.getAddress(), max + 1n, PRICE_NOTICE, FEE_BPS, treasury.address, owner.address))
        .to.be.revertedWithCustomError(factory, "VaultWithdrawalDelayTooLong")
        .withArgs(max + 1n, max);
      const atMax = await factory.deploy(await token.getAddress(), max, PRICE_NOTICE, FEE_BPS, treasury.address, owner.address);
      expect(await atMax.withdrawalDelay()).to.equal(max);
      expect(await atMax.MAX_WITHDRAWAL_DELAY()).to.equal(max);
    });
  });

  describe("deposit", function () {
    it("credits the depositor's own balance and emits Deposited with the credited amount", async function () {
      const { tollgate, token, buyers } = await loadFixture(deployMarketplace);
      const [buyer] = buyers;
      const call = tollgate.connect(buyer).deposit(buyer.address, USD(100));
      await expect(call)
        .to.emit(tollgate, "Deposited")
        .withArgs(buyer.address, buyer.address, USD(100));
      await expect(call).to.changeTokenBalances(token, [buyer, tollgate], [-USD(100), USD(100)]);
      expect(await account(tollgate, buyer.address)).to.deep.equal({
        balance: USD(100),
        pendingWithdrawal: 0n,
        withdrawableAt: 0n,
      });
    });

    it("credits another buyer's balance, paid by the caller", async function () {
      const { tollgate, token, buyers } = await loadFixture(deployMarketplace);
      const [payer, beneficiary] = buyers;
      const call = tollgate.connect(payer).deposit(beneficiary.address, USD(40));
      await expect(call)
        .to.emit(tollgate, "Deposited")
        .withArgs(beneficiary.address, payer.address, USD(40));
      await expect(call).to.changeTokenBalances(token, [payer, beneficiary], [-USD(40), 0n]);
      expect((await tollgate.accountOf(beneficiary.address)).balance).to.equal(USD(40));
      expect((await tollgate.accountOf(payer.address)).balance).to.equal(0n);
    });

    it("adds successive deposits together", async function () {
      const { tollgate, buyers } = await loadFixture(deployMarketplace);
      const [buyer] = buyers;
      await tollgate.connect(buyer).deposit(buyer.address, USD(10));
      await tollgate.connect(buyer).deposit(buyer.address, USD("2.5"));
      expect((await tollgate.accountOf(buyer.address)).balance).to.equal(USD("12.5"));
    });

    it("reverts with VaultZeroAmount for a zero deposit", async function () {
      const { tollgate, buyers } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(buyers[0]).deposit(buyers[0].address, 0n))
        .to.be.revertedWithCustomError(tollgate, "VaultZeroAmount")
        .withArgs();
    });

    it("reverts with VaultZeroAddress when depositing for the zero address", async function () {
      const { tollgate, buyers } = await loadFixture(deployMarketplace);
      await expect(tollgate.connect(buyers[0]).deposit(ethers.ZeroAddress, USD(1)))
        .to.be.revertedWithCustomError(tollgate, "VaultZeroAddress")
        .withArgs();
    });

    it("accepts a balance of exactly MAX_ACCOUNT_BALANCE and reverts with VaultBalanceOverflow past it", async function () {
      const { tollgate, token, buyers } = await loadFixture(deployMarketplace);
      const [buyer] = buyers;
      await token.mint(buyer.address, MAX_ACCOUNT_BALANCE);
      await tollgate.connect(buyer).deposit(buyer.address, MAX_ACCOUNT_BALANCE);
      expect((await tollgate.accountOf(buyer.address)).balance).to.equal(MAX_ACCOUNT_BALANCE);
      await expect(tollgate.connect(buyer).deposit(buyer.address, 1n))
        .to.be.revertedWithCustomError(tollgate, "VaultBalanceOverflow")
        .withArgs(buyer.address, MAX_ACCOUNT_BALANCE, 1n);
    });

    it("reverts with VaultBalanceOverflow for a single deposit larger than MAX_ACCOUNT_BALANCE", async function () {
      const { tollgate, token, buyers } = await loadFixture(deployMarketplace);
      const [buyer] = buyers;
      await token.mint(buyer.address, MAX_ACCOUNT_BALANCE + 1n);
      await expect(tollgate.connect(buyer).deposit(buyer.address, MAX_ACCOUNT_BALANCE + 1n))
        .to.be.revertedWithCustomError(tollgate, "VaultBalanceOverflow")
        .withArgs(buyer.address, 0n, MAX_ACCOUNT_BALANCE + 1n);
    });

    it("reverts with the token's allowance error when the caller has not approved the vault", async function () {
      const { tollgate, token, others } = await loadFixture(deployMarketplace);
      const [stranger] = others;
      await token.mint(stranger.address, USD(5));
      await expect(tollgate.connect(stranger).deposit(stranger.address, USD(5)))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(await tollgate.getAddress(), 0n, USD(5));
    });
  });

  describe("depositWithPermit", function () {
    it("deposits with an EIP-2612 permit signed over TestUSD's domain, without a prior approval", async function () {
      const { tollgate, token, others } = await loadFixture(deployMarketplace);
      const [holder] = others;
      const tollgateAddress = await tollgate.getAddress();
      await token.mint(holder.address, USD(30));
      expect(await token.allowance(holder.address, tollgateAddress)).to.equal(0n);
      const deadline = (await latestTimestamp()) + 3_600n;
      const { v, r, s } = await signPermit(token, holder, tollgateAddress, USD(30), deadline);

      const call = tollgate.connect(holder).depositWithPermit(holder.address, USD(30), deadline, v, r, s);
      await expect(call)
        .to.emit(tollgate, "Deposited")
        .withArgs(holder.address, holder.address, USD(30));
      await expect(call).to.changeTokenBalances(token, [holder, tollgate], [-USD(30), USD(30)]);
      expect((await tollgate.accountOf(holder.address)).balance).to.equal(USD(30));
      expect(await token.nonces(holder.address)).to.equal(1n);
      expect(await token.allowance(holder.address, tollgateAddress)).to.equal(0n);
    });

    it("credits another buyer when depositing with a permit", async function () {
      const { tollgate, token, others, buyers } = await loadFixture(deployMarketplace);
      const [holder] = others;
      const tollgateAddress = await tollgate.getAddress();
      await token.mint(holder.address, USD(8));
      const deadline = (await latestTimestamp()) + 3_600n;
      const { v, r, s } = await signPermit(token, holder, tollgateAddress, USD(8), deadline);
      await expect(tollgate.connect(holder).depositWithPermit(buyers[3].address, USD(8), deadline, v, r, s))
        .to.emit(tollgate, "Deposited")
        .withArgs(buyers[3].address, holder.address, USD(8));
      expect((await tollgate.accountOf(buyers[3].address)).balance).to.equal(USD(8));
    });

    it("still deposits when someone front-ran the same permit on the token", async function () {
      const { tollgate, token, others } = await loadFixture(deployMarketplace);
      const [holder, frontRunner] = others;
      const tollgateAddress = await tollgate.getAddress();
      await token.mint(holder.address, USD(25));
      const deadline = (await latestTimestamp()) + 3_600n;
      const { v, r, s } = await signPermit(token, holder, tollgateAddress, USD(25), deadline);

      // The front-runner submits the permit straight to the token; the nonce is consumed.
      await token.connect(frontRunner).permit(holder.address, tollgateAddress, USD(25), deadline, v, r, s);
      expect(await token.allowance(holder.address, tollgateAddress)).to.equal(USD(25));
      expect(await token.nonces(holder.address)).to.equal(1n);
      // Replaying the permit on the token now fails, so the vault's own permit call must fail too...
      await expect(
        token.connect(frontRunner).permit(holder.address, tollgateAddress, USD(25), deadline, v, r, s),
      ).to.be.revertedWithCustomError(token, "ERC2612InvalidSigner");

      // ...and yet the deposit goes through on the allowance the front-runner set.
      const call = tollgate.connect(holder).depositWithPermit(holder.address, USD(25), deadline, v, r, s);
      await expect(call)
        .to.emit(tollgate, "Deposited")
        .withArgs(holder.address, holder.address, USD(25));
      await expect(call).to.changeTokenBalances(token, [holder, tollgate], [-USD(25), USD(25)]);
      expect((await tollgate.accountOf(holder.address)).balance).to.equal(USD(25));
      expect(await token.nonces(holder.address)).to.equal(1n);
      expect(await token.allowance(holder.address, tollgateAddress)).to.equal(0n);
    });

    it("reverts on the missing allowance when the permit is invalid and nothing was approved", async function () {
      const { tollgate, token, others } = await loadFixture(deployMarketplace);
      const [holder, impostor] = others;
      const tollgateAddress = await tollgate.getAddress();
      await token.mint(holder.address, USD(5));
      const deadline = (await latestTimestamp()) + 3_600n;
      // Signed by the wrong key: the permit fails, the failure is swallowed, and the transfer decides.
      const { v, r, s } = await signPermit(token, impostor, tollgateAddress, USD(5), deadline);
      await expect(tollgate.connect(holder).depositWithPermit(holder.address, USD(5), deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(tollgateAddress, 0n, USD(5));
      expect((await tollgate.accountOf(holder.address)).balance).to.equal(0n);
    });

    it("reverts with VaultZeroAmount and VaultZeroAddress like deposit", async function () {
      const { tollgate, token, others } = await loadFixture(deployMarketplace);
      const [holder] = others;
      const tollgateAddress = await tollgate.getAddress();
      const deadline = (await latestTimestamp()) + 3_600n;
      const zero = await signPermit(token, holder, tollgateAddress, 0n, deadline);
      await expect(
        tollgate.connect(holder).depositWithPermit(holder.address, 0n, deadline, zero.v, zero.r, zero.s),
      ).to.be.revertedWithCustomError(tollgate, "VaultZeroAmount");
      const one = await signPermit(token, holder, tollgateAddress, 1n, deadline);
      await expect(
        tollgate.connect(holder).depositWithPermit(ethers.ZeroAddress, 1n, deadline, one.v, one.r, one.s),
      ).to.be.revertedWithCustomError(tollgate, "VaultZeroAddress");
    });
  });

  describe("fee-on-transfer payment token", function () {
    it("credits only the 99% that arrives, and the vault holds exactly the credited balance", async function () {
      const { tollgate, fot, buyers } = await loadFixture(feeOnTransferFixture);
      const [buyer] = buyers;
      const tollgateAddress = await tollgate.getAddress();
      await fot.mint(buyer.address, USD(100));
      await fot.connect(buyer).approve(tollgateAddress, ethers.MaxUint256);

      await expect(tollgate.connect(buyer).deposit(buyer.address, USD(100)))
        .to.emit(tollgate, "Deposited")
        .withArgs(buyer.address, buyer.address, USD(99));
      expect((await tollgate.accountOf(buyer.address)).balance).to.equal(USD(99));
      expect(await fot.balanceOf(tollgateAddress)).to.equal(USD(99));
      expect(await fot.balanceOf(buyer.address)).to.equal(0n);
    });

    it("keeps token.balanceOf(vault) equal to the sum of credited balances across deposits", async function () {
      const { tollgate, fot, buyers } = await loadFixture(feeOnTransferFixture);
      const tollgateAddress = await tollgate.getAddress();
      const amounts = [USD(100), 1_234_567n, 99n];
      let credited = 0n;
      for (let i = 0; i < amounts.length; i++) {
        const buyer = buyers[i];
        await fot.mint(buyer.address, amounts[i]);
        await fot.connect(buyer).approve(tollgateAddress, ethers.MaxUint256);
        await tollgate.connect(buyer).deposit(buyer.address, amounts[i]);
        const expected = amounts[i] - amounts[i] / 100n;
        expect((await tollgate.accountOf(buyer.address)).balance).to.equal(expected);
        credited += expected;
      }
      expect(await fot.balanceOf(tollgateAddress)).to.equal(credited);
    });

    it("withdraws the whole credited balance, leaving the vault empty", async function () {
      const { tollgate, fot, buyers } = await loadFixture(feeOnTransferFixture);
      const [buyer] = buyers;
      const tollgateAddress = await tollgate.getAddress();
      await fot.mint(buyer.address, USD(100));
      await fot.connect(buyer).approve(tollgateAddress, ethers.MaxUint256);
      await tollgate.connect(buyer).deposit(buyer.address, USD(100));
      await tollgate.connect(buyer).requestWithdrawal(USD(99));
      await time.increase(WITHDRAWAL_DELAY);
      await expect(tollgate.connect(buyer).withdraw()).to.emit(tollgate, "Withdrawn").withArgs(buyer.address, USD(99));
      expect(await fot.balanceOf(tollgateAddress)).to.equal(0n);
      // The token burns 1% of the outgoing transfer too.
      expect(await fot.balanceOf(buyer.address)).to.equal(USD(99) - USD(99) / 100n);
    });

    it("refuses to sell credits for less than their price with VaultTransferShortfall", async function () {
      const { tollgate, fot, provider, buyers } = await loadFixture(feeOnTransferFixture);
      const [buyer] = buyers;
      const tollgateAddress = await tollgate.getAddress();
      await tollgate.connect(provider).registerProvider(provider.address, "ipfs://p");
      await tollgate.connect(provider).listModel(1n, "m", { input: 1n, cachedInput: 1n, output: 1n });
      await tollgate.connect(provider).defineCreditPlan(1n, USD(2), USD(2), [1n], 0);
      await fot.mint(buyer.address, USD(100));
      await fot.connect(buyer).approve(tollgateAddress, ethers.MaxUint256);

      const price = 3n * USD(2);
      await expect(tollgate.connect(buyer).buyCredits(1n, 3n, buyer.address))
        .to.be.revertedWithCustomError(tollgate, "VaultTransferShortfall")
        .withArgs(price, price - price / 100n);
      expect(await (await creditsOf(tollgate)).balanceOf(buyer.address, 1n)).to.equal(0n);
      expect(await tollgate.earningsOf(1n)).to.equal(0n);
    });
  });

  describe("withdrawal requests", function () {
    async function depositedFixture() {
      const market = await deployMarketplace();
      const [buyer] = market.buyers;
      await market.tollgate.connect(buyer).deposit(buyer.address, USD(100));
      return { ...market, buyer };
    }

    it("moves the amount into the pending withdrawal, unlocking after the delay", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      const at = (await latestTimestamp()) + 100n;
      await time.setNextBlockTimestamp(at);
      await expect(tollgate.connect(buyer).requestWithdrawal(USD(30)))
        .to.emit(tollgate, "WithdrawalRequested")
        .withArgs(buyer.address, USD(30), USD(30), at + WITHDRAWAL_DELAY);
      expect(await account(tollgate, buyer.address)).to.deep.equal({
        balance: USD(70),
        pendingWithdrawal: USD(30),
        withdrawableAt: at + WITHDRAWAL_DELAY,
      });
    });

    it("adds a second request to the pending amount and restarts the delay", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      await tollgate.connect(buyer).requestWithdrawal(USD(30));
      const later = (await latestTimestamp()) + 86_400n;
      await time.setNextBlockTimestamp(later);
      await expect(tollgate.connect(buyer).requestWithdrawal(USD(20)))
        .to.emit(tollgate, "WithdrawalRequested")
        .withArgs(buyer.address, USD(20), USD(50), later + WITHDRAWAL_DELAY);
      expect(await account(tollgate, buyer.address)).to.deep.equal({
        balance: USD(50),
        pendingWithdrawal: USD(50),
        withdrawableAt: later + WITHDRAWAL_DELAY,
      });
    });

    it("reverts with VaultZeroAmount for a zero request", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      await expect(tollgate.connect(buyer).requestWithdrawal(0n)).to.be.revertedWithCustomError(
        tollgate,
        "VaultZeroAmount",
      );
    });

    it("reverts with VaultInsufficientBalance for more than the spendable balance (pending excluded)", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      await expect(tollgate.connect(buyer).requestWithdrawal(USD(100) + 1n))
        .to.be.revertedWithCustomError(tollgate, "VaultInsufficientBalance")
        .withArgs(buyer.address, USD(100), USD(100) + 1n);
      await tollgate.connect(buyer).requestWithdrawal(USD(60));
      await expect(tollgate.connect(buyer).requestWithdrawal(USD(50)))
        .to.be.revertedWithCustomError(tollgate, "VaultInsufficientBalance")
        .withArgs(buyer.address, USD(40), USD(50));
    });

    it("reverts with VaultBalanceOverflow when the pending withdrawal would pass MAX_ACCOUNT_BALANCE", async function () {
      const { tollgate, token, buyers } = await loadFixture(deployMarketplace);
      const [buyer] = buyers;
      await token.mint(buyer.address, MAX_ACCOUNT_BALANCE + 1n);
      await tollgate.connect(buyer).deposit(buyer.address, MAX_ACCOUNT_BALANCE);
      await tollgate.connect(buyer).requestWithdrawal(MAX_ACCOUNT_BALANCE);
      await tollgate.connect(buyer).deposit(buyer.address, 1n);
      await expect(tollgate.connect(buyer).requestWithdrawal(1n))
        .to.be.revertedWithCustomError(tollgate, "VaultBalanceOverflow")
        .withArgs(buyer.address, MAX_ACCOUNT_BALANCE, 1n);
    });

    it("cancelWithdrawal can lift the balance above MAX_ACCOUNT_BALANCE; deposits are then refused and withdrawals go in MAX-sized requests", async function () {
      // Documents current behaviour: balance + pending each fit 104 bits, so cancelling may leave a
      // balance of up to 2 * MAX_ACCOUNT_BALANCE in the 112-bit slot (see the report accompanying this test).
      const { tollgate, token, buyers } = await loadFixture(deployMarketplace);
      const [buyer] = buyers;
      await token.mint(buyer.address, 2n * MAX_ACCOUNT_BALANCE + 1n);
      await tollgate.connect(buyer).deposit(buyer.address, MAX_ACCOUNT_BALANCE);
      await tollgate.connect(buyer).requestWithdrawal(MAX_ACCOUNT_BALANCE);
      await tollgate.connect(buyer).deposit(buyer.address, MAX_ACCOUNT_BALANCE);
      await tollgate.connect(buyer).cancelWithdrawal();
      expect(await account(tollgate, buyer.address)).to.deep.equal({
        balance: 2n * MAX_ACCOUNT_BALANCE,
        pendingWithdrawal: 0n,
        withdrawableAt: 0n,
      });
      await expect(tollgate.connect(buyer).deposit(buyer.address, 1n))
        .to.be.revertedWithCustomError(tollgate, "VaultBalanceOverflow")
        .withArgs(buyer.address, 2n * MAX_ACCOUNT_BALANCE, 1n);
      await expect(tollgate.connect(buyer).requestWithdrawal(MAX_ACCOUNT_BALANCE + 1n))
        .to.be.revertedWithCustomError(tollgate, "VaultBalanceOverflow")
        .withArgs(buyer.address, 0n, MAX_ACCOUNT_BALANCE + 1n);
      await tollgate.connect(buyer).requestWithdrawal(MAX_ACCOUNT_BALANCE);
      expect((await tollgate.accountOf(buyer.address)).balance).to.equal(MAX_ACCOUNT_BALANCE);
      expect(await token.balanceOf(await tollgate.getAddress())).to.equal(2n * MAX_ACCOUNT_BALANCE);
    });

    it("cancelWithdrawal returns the whole pending amount to the balance", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      await tollgate.connect(buyer).requestWithdrawal(USD(30));
      await tollgate.connect(buyer).requestWithdrawal(USD(5));
      await expect(tollgate.connect(buyer).cancelWithdrawal())
        .to.emit(tollgate, "WithdrawalCancelled")
        .withArgs(buyer.address, USD(35));
      expect(await account(tollgate, buyer.address)).to.deep.equal({
        balance: USD(100),
        pendingWithdrawal: 0n,
        withdrawableAt: 0n,
      });
    });

    it("cancelWithdrawal reverts with VaultNoPendingWithdrawal when nothing is pending", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      await expect(tollgate.connect(buyer).cancelWithdrawal())
        .to.be.revertedWithCustomError(tollgate, "VaultNoPendingWithdrawal")
        .withArgs(buyer.address);
      await tollgate.connect(buyer).requestWithdrawal(USD(1));
      await tollgate.connect(buyer).cancelWithdrawal();
      await expect(tollgate.connect(buyer).cancelWithdrawal())
        .to.be.revertedWithCustomError(tollgate, "VaultNoPendingWithdrawal")
        .withArgs(buyer.address);
    });

    it("withdraw reverts with VaultNoPendingWithdrawal when nothing was requested", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      await expect(tollgate.connect(buyer).withdraw())
        .to.be.revertedWithCustomError(tollgate, "VaultNoPendingWithdrawal")
        .withArgs(buyer.address);
    });

    it("withdraw reverts with VaultWithdrawalNotReady before the delay has passed", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      const tx = await tollgate.connect(buyer).requestWithdrawal(USD(30));
      const withdrawableAt = (await minedAt(tx)) + WITHDRAWAL_DELAY;

      const attemptAt = (await latestTimestamp()) + 1n;
      await time.setNextBlockTimestamp(attemptAt);
      await expect(tollgate.connect(buyer).withdraw())
        .to.be.revertedWithCustomError(tollgate, "VaultWithdrawalNotReady")
        .withArgs(buyer.address, withdrawableAt, attemptAt);

      await time.setNextBlockTimestamp(withdrawableAt - 1n);
      await expect(tollgate.connect(buyer).withdraw())
        .to.be.revertedWithCustomError(tollgate, "VaultWithdrawalNotReady")
        .withArgs(buyer.address, withdrawableAt, withdrawableAt - 1n);
    });

    it("withdraw pays out the pending amount at exactly withdrawableAt and clears the request", async function () {
      const { tollgate, token, buyer } = await loadFixture(depositedFixture);
      const tx = await tollgate.connect(buyer).requestWithdrawal(USD(30));
      const withdrawableAt = (await minedAt(tx)) + WITHDRAWAL_DELAY;
      await time.setNextBlockTimestamp(withdrawableAt);
      const call = tollgate.connect(buyer).withdraw();
      await expect(call)
        .to.emit(tollgate, "Withdrawn")
        .withArgs(buyer.address, USD(30));
      await expect(call).to.changeTokenBalances(token, [buyer, tollgate], [USD(30), -USD(30)]);
      expect(await account(tollgate, buyer.address)).to.deep.equal({
        balance: USD(70),
        pendingWithdrawal: 0n,
        withdrawableAt: 0n,
      });
      await expect(tollgate.connect(buyer).withdraw())
        .to.be.revertedWithCustomError(tollgate, "VaultNoPendingWithdrawal")
        .withArgs(buyer.address);
    });

    it("a later request pushes back an earlier request's unlock time", async function () {
      const { tollgate, buyer } = await loadFixture(depositedFixture);
      const first = await tollgate.connect(buyer).requestWithdrawal(USD(10));
      const firstUnlock = (await minedAt(first)) + WITHDRAWAL_DELAY;
      await time.increaseTo(firstUnlock - 10n);
      const second = await tollgate.connect(buyer).requestWithdrawal(USD(10));
      const secondUnlock = (await minedAt(second)) + WITHDRAWAL_DELAY;
      await time.setNextBlockTimestamp(firstUnlock);
      await expect(tollgate.connect(buyer).withdraw())
        .to.be.revertedWithCustomError(tollgate, "VaultWithdrawalNotReady")
        .withArgs(buyer.address, secondUnlock, firstUnlock);
      await time.setNextBlockTimestamp(secondUnlock);
      await expect(tollgate.connect(buyer).withdraw()).to.emit(tollgate, "Withdrawn").withArgs(buyer.address, USD(20));
    });

    it("deposits, withdrawal requests, cancellations and withdrawals all work while paused", async function () {
      const { tollgate, token, owner, buyer, buyers } = await loadFixture(depositedFixture);
      await tollgate.connect(owner).pause();
      expect(await tollgate.paused()).to.equal(true);
      await expect(tollgate.connect(buyers[1]).deposit(buyers[1].address, USD(5))).to.emit(tollgate, "Deposited");
      await tollgate.connect(buyer).requestWithdrawal(USD(10));
      await tollgate.connect(buyer).cancelWithdrawal();
      await tollgate.connect(buyer).requestWithdrawal(USD(40));
      await time.increase(WITHDRAWAL_DELAY);
      const call = tollgate.connect(buyer).withdraw();
      await expect(call)
        .to.emit(tollgate, "Withdrawn")
        .withArgs(buyer.address, USD(40));
      await expect(call).to.changeTokenBalance(token, buyer, USD(40));
      expect(await tollgate.paused()).to.equal(true);
    });
  });

  describe("earnings and protocol fees", function () {
    async function purchasedFixture() {
      const market = await marketplaceWithPlanFixture();
      const [buyer] = market.buyers;
      await market.tollgate.connect(buyer).buyCredits(market.planId, 4n, buyer.address);
      const price = 4n * PLAN_PRICE;
      const fee = feeOn(price);
      return { ...market, buyer, price, fee, earnings: price - fee };
    }

    it("earningsOf and protocolFeesAccrued reflect a credit purchase", async function () {
      const { tollgate, token, providerId, price, fee, earnings } = await loadFixture(purchasedFixture);
      expect(await tollgate.earningsOf(providerId)).to.equal(earnings);
      expect(await tollgate.protocolFeesAccrued()).to.equal(fee);
      expect(earnings + fee).to.equal(price);
      expect(await token.balanceOf(await tollgate.getAddress())).to.equal(price);
    });

    it("withdrawEarnings sends the provider's earnings to its payout address", async function () {
      const { tollgate, token, provider, providerId, earnings } = await loadFixture(purchasedFixture);
      const call = tollgate.connect(provider).withdrawEarnings(providerId);
      await expect(call)
        .to.emit(tollgate, "EarningsWithdrawn")
        .withArgs(providerId, provider.address, earnings);
      await expect(call).to.changeTokenBalances(token, [provider, tollgate], [earnings, -earnings]);
      expect(await tollgate.earningsOf(providerId)).to.equal(0n);
    });

    it("withdrawEarnings pays the payout address set by updateProvider, not the owner", async function () {
      const { tollgate, token, provider, providerId, others, earnings } = await loadFixture(purchasedFixture);
      const payout = others[4];
      await tollgate.connect(provider).updateProvider(providerId, payout.address, "ipfs://v2");
      const call = tollgate.connect(provider).withdrawEarnings(providerId);
      await expect(call)
        .to.emit(tollgate, "EarningsWithdrawn")
        .withArgs(providerId, payout.address, earnings);
      await expect(call).to.changeTokenBalances(token, [provider, payout], [0n, earnings]);
    });

    it("withdrawEarnings reverts with RegistryNotProviderOwner for anyone but the provider's owner", async function () {
      const { tollgate, providerId, buyer, treasury, owner } = await loadFixture(purchasedFixture);
      for (const caller of [buyer, treasury, owner]) {
        await expect(tollgate.connect(caller).withdrawEarnings(providerId))
          .to.be.revertedWithCustomError(tollgate, "RegistryNotProviderOwner")
          .withArgs(providerId, caller.address);
      }
    });

    it("withdrawEarnings reverts with RegistryUnknownProvider for an unregistered provider", async function () {
      const { tollgate, provider } = await loadFixture(purchasedFixture);
      await expect(tollgate.connect(provider).withdrawEarnings(7n))
        .to.be.revertedWithCustomError(tollgate, "RegistryUnknownProvider")
        .withArgs(7n);
    });

    it("withdrawEarnings reverts with VaultNoEarnings when there is nothing to withdraw", async function () {
      const { tollgate, provider, providerId } = await loadFixture(purchasedFixture);
      await tollgate.connect(provider).withdrawEarnings(providerId);
      await expect(tollgate.connect(provider).withdrawEarnings(providerId))
        .to.be.revertedWithCustomError(tollgate, "VaultNoEarnings")
        .withArgs(providerId);
    });

    it("collectProtocolFees can be called by anyone and pays the treasury", async function () {
      const { tollgate, token, treasury, buyer, fee } = await loadFixture(purchasedFixture);
      const call = tollgate.connect(buyer).collectProtocolFees();
      await expect(call)
        .to.emit(tollgate, "ProtocolFeesCollected")
        .withArgs(treasury.address, fee);
      await expect(call).to.changeTokenBalances(token, [treasury, buyer, tollgate], [fee, 0n, -fee]);
      expect(await tollgate.protocolFeesAccrued()).to.equal(0n);
    });

    it("collectProtocolFees reverts with VaultNoProtocolFees when none have accrued", async function () {
      const { tollgate, buyer } = await loadFixture(purchasedFixture);
      await tollgate.connect(buyer).collectProtocolFees();
      await expect(tollgate.connect(buyer).collectProtocolFees())
        .to.be.revertedWithCustomError(tollgate, "VaultNoProtocolFees")
        .withArgs();
    });

    it("collectProtocolFees pays a treasury changed by setTreasury", async function () {
      const { tollgate, token, owner, treasury, others, fee } = await loadFixture(purchasedFixture);
      const newTreasury = others[5];
      await expect(tollgate.connect(owner).setTreasury(newTreasury.address))
        .to.emit(tollgate, "TreasuryChanged")
        .withArgs(newTreasury.address);
      expect(await tollgate.treasury()).to.equal(newTreasury.address);
      await expect(tollgate.collectProtocolFees()).to.changeTokenBalances(
        token,
        [newTreasury, treasury],
        [fee, 0n],
      );
    });

    it("earnings and fees can be withdrawn while paused", async function () {
      const { tollgate, token, owner, provider, providerId, earnings, fee, treasury } =
        await loadFixture(purchasedFixture);
      await tollgate.connect(owner).pause();
      await expect(tollgate.connect(provider).withdrawEarnings(providerId)).to.changeTokenBalance(
        token,
        provider,
        earnings,
      );
      await expect(tollgate.collectProtocolFees()).to.changeTokenBalance(token, treasury, fee);
      expect(await token.balanceOf(await tollgate.getAddress())).to.equal(0n);
    });
  });

  describe("owner administration", function () {
    it("setProtocolFee changes the fee applied to later purchases", async function () {
      const { tollgate, owner, buyers, planId, providerId } = await loadFixture(marketplaceWithPlanFixture);
      await expect(tollgate.connect(owner).setProtocolFee(1_000n)).to.emit(tollgate, "ProtocolFeeChanged").withArgs(1_000n);
      expect(await tollgate.protocolFeeBps()).to.equal(1_000n);
      await tollgate.connect(buyers[0]).buyCredits(planId, 3n, buyers[0].address);
      const price = 3n * PLAN_PRICE;
      expect(await tollgate.protocolFeesAccrued()).to.equal(feeOn(price, 1_000n));
      expect(await tollgate.earningsOf(providerId)).to.equal(price - feeOn(price, 1_000n));

      await tollgate.connect(owner).setProtocolFee(0n);
      await tollgate.connect(buyers[1]).buyCredits(planId, 1n, buyers[1].address);
      expect(await tollgate.protocolFeesAccrued()).to.equal(feeOn(price, 1_000n));
      expect(await tollgate.earningsOf(providerId)).to.equal(price - feeOn(price, 1_000n) + PLAN_PRICE);
    });

    it("setProtocolFee reverts with VaultFeeTooHigh above MAX_FEE_BPS", async function () {
      const { tollgate, owner } = await loadFixture(emptyTollgateFixture);
      await expect(tollgate.connect(owner).setProtocolFee(1_001n))
        .to.be.revertedWithCustomError(tollgate, "VaultFeeTooHigh")
        .withArgs(1_001n, 1_000n);
      await expect(tollgate.connect(owner).setProtocolFee(10_000n))
        .to.be.revertedWithCustomError(tollgate, "VaultFeeTooHigh")
        .withArgs(10_000n, 1_000n);
      expect(await tollgate.protocolFeeBps()).to.equal(FEE_BPS);
    });

    it("setProtocolFee and setTreasury revert with OwnableUnauthorizedAccount for non-owners", async function () {
      const { tollgate, treasury, provider, buyers } = await loadFixture(emptyTollgateFixture);
      await expect(tollgate.connect(buyers[0]).setProtocolFee(10n))
        .to.be.revertedWithCustomError(tollgate, "OwnableUnauthorizedAccount")
        .withArgs(buyers[0].address);
      await expect(tollgate.connect(treasury).setTreasury(provider.address))
        .to.be.revertedWithCustomError(tollgate, "OwnableUnauthorizedAccount")
        .withArgs(treasury.address);
      expect(await tollgate.treasury()).to.equal(treasury.address);
    });

    it("setTreasury reverts with VaultZeroAddress for the zero address", async function () {
      const { tollgate, owner } = await loadFixture(emptyTollgateFixture);
      await expect(tollgate.connect(owner).setTreasury(ethers.ZeroAddress))
        .to.be.revertedWithCustomError(tollgate, "VaultZeroAddress")
        .withArgs();
    });

    it("pause and unpause are owner-only and toggle paused()", async function () {
      const { tollgate, owner, buyers } = await loadFixture(emptyTollgateFixture);
      await expect(tollgate.connect(buyers[0]).pause())
        .to.be.revertedWithCustomError(tollgate, "OwnableUnauthorizedAccount")
        .withArgs(buyers[0].address);
      await expect(tollgate.connect(owner).pause()).to.emit(tollgate, "Paused").withArgs(owner.address);
      expect(await tollgate.paused()).to.equal(true);
      await expect(tollgate.connect(owner).pause()).to.be.revertedWithCustomError(tollgate, "EnforcedPause");
      await expect(tollgate.connect(buyers[0]).unpause())
        .to.be.revertedWithCustomError(tollgate, "OwnableUnauthorizedAccount")
        .withArgs(buyers[0].address);
      await expect(tollgate.connect(owner).unpause()).to.emit(tollgate, "Unpaused").withArgs(owner.address);
      expect(await tollgate.paused()).to.equal(false);
      await expect(tollgate.connect(owner).unpause()).to.be.revertedWithCustomError(tollgate, "ExpectedPause");
    });

    it("transfers ownership in two steps: only the pending owner can accept", async function () {
      const { tollgate, owner, others } = await loadFixture(emptyTollgateFixture);
      const [next, stranger] = others;
      await expect(tollgate.connect(next).transferOwnership(next.address))
        .to.be.revertedWithCustomError(tollgate, "OwnableUnauthorizedAccount")
        .withArgs(next.address);
      await expect(tollgate.connect(owner).transferOwnership(next.address))
        .to.emit(tollgate, "OwnershipTransferStarted")
        .withArgs(owner.address, next.address);
      expect(await tollgate.owner()).to.equal(owner.address);
      expect(await tollgate.pendingOwner()).to.equal(next.address);

      // Not yet the owner.
      await expect(tollgate.connect(next).setProtocolFee(1n))
        .to.be.revertedWithCustomError(tollgate, "OwnableUnauthorizedAccount")
        .withArgs(next.address);
      await expect(tollgate.connect(stranger).acceptOwnership())
        .to.be.revertedWithCustomError(tollgate, "OwnableUnauthorizedAccount")
        .withArgs(stranger.address);

      await expect(tollgate.connect(next).acceptOwnership())
        .to.emit(tollgate, "OwnershipTransferred")
        .withArgs(owner.address, next.address);
      expect(await tollgate.owner()).to.equal(next.address);
      expect(await tollgate.pendingOwner()).to.equal(ethers.ZeroAddress);
      await expect(tollgate.connect(next).setProtocolFee(1n)).to.emit(tollgate, "ProtocolFeeChanged").withArgs(1n);
      await expect(tollgate.connect(owner).setProtocolFee(2n))
        .to.be.revertedWithCustomError(tollgate, "OwnableUnauthorizedAccount")
        .withArgs(owner.address);
    });
  });

  describe("views", function () {
    it("accountOf, earningsOf and protocolFeesAccrued are zero for a fresh deployment", async function () {
      const { tollgate, buyers } = await loadFixture(emptyTollgateFixture);
      expect(await account(tollgate, buyers[0].address)).to.deep.equal({
        balance: 0n,
        pendingWithdrawal: 0n,
        withdrawableAt: 0n,
      });
      expect(await tollgate.earningsOf(1n)).to.equal(0n);
      expect(await tollgate.protocolFeesAccrued()).to.equal(0n);
    });

    it("the vault's token balance equals balances + pending + earnings + fees after mixed activity", async function () {
      const { tollgate, token, buyers, planId, providerId } = await loadFixture(marketplaceWithPlanFixture);
      const [a, b, c] = buyers;
      await tollgate.connect(a).deposit(a.address, USD(50));
      await tollgate.connect(b).deposit(c.address, USD(20));
      await tollgate.connect(a).requestWithdrawal(USD(15));
      await tollgate.connect(a).buyCreditsWithBalance(planId, 7n, b.address);
      await tollgate.connect(c).buyCredits(planId, 3n, c.address);
      let held = 0n;
      for (const who of [a, b, c]) {
        const view = await tollgate.accountOf(who.address);
        held += view.balance + view.pendingWithdrawal;
      }
      held += (await tollgate.earningsOf(providerId)) + (await tollgate.protocolFeesAccrued());
      expect(await token.balanceOf(await tollgate.getAddress())).to.equal(held);
      expect(held).to.equal(USD(70) + 3n * PLAN_PRICE);
    });
  });

  describe("reentrancy through the payment token", function () {
    it("a token re-entering deposit during the transfer hits ReentrancyGuardReentrantCall; one deposit is credited", async function () {
      const { tollgate, evil, buyers } = await loadFixture(reentrantTokenFixture);
      const [buyer, accomplice] = buyers;
      const tollgateAddress = await tollgate.getAddress();
      await evil.mint(buyer.address, USD(100));
      await evil.connect(buyer).approve(tollgateAddress, ethers.MaxUint256);
      await evil.arm(tollgateAddress, tollgate.interface.encodeFunctionData("deposit", [accomplice.address, USD(1)]));

      // The token swallows its callback's failure, so the outer deposit itself succeeds.
      await expect(tollgate.connect(buyer).deposit(buyer.address, USD(100)))
        .to.emit(tollgate, "Deposited")
        .withArgs(buyer.address, buyer.address, USD(100));

      expect(await evil.callbackTarget()).to.equal(ethers.ZeroAddress); // the callback fired
      expect(await evil.lastCallbackSucceeded()).to.equal(false);
      const result = await evil.lastCallbackResult();
      expect(result).to.equal(tollgate.interface.getError("ReentrancyGuardReentrantCall")!.selector);
      expect(tollgate.interface.parseError(result)!.name).to.equal("ReentrancyGuardReentrantCall");

      expect((await tollgate.accountOf(buyer.address)).balance).to.equal(USD(100));
      expect((await tollgate.accountOf(accomplice.address)).balance).to.equal(0n);
      expect(await evil.balanceOf(tollgateAddress)).to.equal(USD(100));
    });

    it("a token re-entering withdraw during the payout hits ReentrancyGuardReentrantCall; one payout is made", async function () {
      const { tollgate, evil, buyers } = await loadFixture(reentrantTokenFixture);
      const [buyer] = buyers;
      const tollgateAddress = await tollgate.getAddress();
      await evil.mint(buyer.address, USD(100));
      await evil.connect(buyer).approve(tollgateAddress, ethers.MaxUint256);
      await tollgate.connect(buyer).deposit(buyer.address, USD(100));
      await tollgate.connect(buyer).requestWithdrawal(USD(60));
      await time.increase(WITHDRAWAL_DELAY);
      await evil.arm(tollgateAddress, tollgate.interface.encodeFunctionData("withdraw"));

      await expect(tollgate.connect(buyer).withdraw()).to.emit(tollgate, "Withdrawn").withArgs(buyer.address, USD(60));
      expect(await evil.lastCallbackSucceeded()).to.equal(false);
      expect(await evil.lastCallbackResult()).to.equal(
        tollgate.interface.getError("ReentrancyGuardReentrantCall")!.selector,
      );
      expect(await evil.balanceOf(buyer.address)).to.equal(USD(60));
      expect(await evil.balanceOf(tollgateAddress)).to.equal(USD(40));
      expect(await account(tollgate, buyer.address)).to.deep.equal({
        balance: USD(40),
        pendingWithdrawal: 0n,
        withdrawableAt: 0n,
      });
    });
  });

  describe("deployTollgate helper", function () {
    it("uses the token passed in rather than the TestUSD it deploys", async function () {
      const { tollgate, fot, token } = await loadFixture(feeOnTransferFixture);
      expect(await tollgate.paymentToken()).to.equal(await fot.getAddress());
      expect(await tollgate.paymentToken()).to.not.equal(await token.getAddress());
    });
  });
});
