/**
 * The Funds page (#/) in Chromium against the local marketplace, with the injected test wallet: every money
 * action driven through the page's labels and buttons, and the chain's state asserted from Node after each
 * one. A rejection and a revert each say what happened and change nothing.
 */
import { expect } from "chai";
import type { Page } from "playwright-core";
import { parseUnits, type Address } from "viem";
import { buyCredits, depositWithPermit, getBuyerPosition } from "../../client";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi } from "../../server/chain/abis";
import { startAppMarket, type AppMarket } from "../helpers/browser/app-market";
import type { InjectedWallet } from "../helpers/browser";

const NARROW = { width: 390, height: 844 };

describe("web app: Funds page", function () {
  this.timeout(180_000);
  let market: AppMarket;
  const units = (whole: string) => parseUnits(whole, market.run.token.decimals);

  before(async function () {
    market = await startAppMarket();
  });
  after(async () => market?.close());

  const position = async (buyer: Address) => getBuyerPosition(await market.run.as(market.run.provider), { buyer, planIds: [market.run.planId], providerIds: [market.run.providerId] });
  const walletTokens = (owner: Address) => market.run.client.readContract({ address: market.run.token.address, abi: testUsdAbi, functionName: "balanceOf", args: [owner] });
  const creditsOf = (owner: Address, planId = market.run.planId) =>
    market.run.client.readContract({ address: market.run.deployment.credits, abi: tollgateCreditsAbi, functionName: "balanceOf", args: [owner, planId] });
  const sent = (wallet: InjectedWallet) => wallet.requests.filter((request) => request.method === "eth_sendTransaction" && !request.error).length;
  const region = (page: Page, name: string) => page.getByRole("region", { name, exact: true });
  /** Waits for the action's final line in the card's status region. */
  const statusOf = (page: Page, card: string, text: string | RegExp) => region(page, card).getByRole("status").getByText(text).waitFor({ timeout: 30_000 });

  it("deposits with a permit in one transaction after a refused signature, then buys credits from the balance and from the wallet (390 px)", async function () {
    const { page, wallet, account } = await market.openApp({ viewport: NARROW });
    const deposit = region(page, "Deposit");
    await deposit.getByText("One transaction").waitFor();

    // Field checks speak before the wallet is asked.
    await deposit.getByLabel("Amount to deposit (tUSD)").fill("1.1234567");
    await deposit.getByText("tUSD has 6 decimals; use at most 6 digits after the point.").waitFor();
    await deposit.getByLabel("Amount to deposit (tUSD)").fill("5000");
    await deposit.getByText(/That is more than your wallet holds \(1,000 tUSD\)/).waitFor();
    await deposit.getByRole("button", { name: "Deposit", exact: true }).click();
    expect(wallet.requests.filter((request) => request.method === "eth_signTypedData_v4" || request.method === "eth_sendTransaction")).to.have.length(0);

    // The permit signature refused: said so, nothing signed, nothing sent, nothing changed.
    await deposit.getByLabel("Amount to deposit (tUSD)").fill("100");
    wallet.rejectNext("eth_signTypedData_v4");
    await deposit.getByRole("button", { name: "Deposit", exact: true }).click();
    await deposit.getByRole("alert").getByText("You rejected the request in your wallet.").waitFor();
    await deposit.getByText("Nothing was signed or sent, and nothing changed.").waitFor();
    expect(sent(wallet)).to.equal(0);
    expect((await position(account.address)).balance).to.equal(0n);
    await market.expectNoA11yViolations(page, "funds: deposit refused in the wallet (390 px)");

    await deposit.getByRole("button", { name: "Deposit", exact: true }).click();
    await statusOf(page, "Deposit", "Deposited 100 tUSD into your vault balance.");
    expect((await position(account.address)).balance).to.equal(units("100"));
    expect(await walletTokens(account.address)).to.equal(units("900"));
    expect(sent(wallet), "a permit deposit is one transaction").to.equal(1);

    // Credits from the balance: the total and the value are shown before signing.
    const plan = await market.run.client.readContract({ address: market.run.deployment.tollgate, abi: tollgateAbi, functionName: "creditPlanOf", args: [market.run.planId] });
    const buy = region(page, "Buy credits");
    await buy.getByLabel("Plan").selectOption(market.run.planId.toString());
    await buy.getByLabel("Number of credits").fill("300");
    await buy.getByLabel(/Vault balance/).check();
    await buy.getByLabel("Order summary").getByText(market.run.amount(plan.pricePerCredit * 300n), { exact: true }).waitFor();
    await buy.getByLabel("Order summary").getByText(new RegExp(`^${market.run.amount(plan.valuePerCredit * 300n).replace(".", "\\.")} \\(bonus`)).waitFor();
    await buy.getByRole("button", { name: "Buy credits" }).click();
    await statusOf(page, "Buy credits", `Bought 300 credits of plan ${market.run.planId} for ${market.run.amount(plan.pricePerCredit * 300n)}.`);
    expect(await creditsOf(account.address)).to.equal(300n);
    expect((await position(account.address)).balance).to.equal(units("100") - plan.pricePerCredit * 300n);
    expect(sent(wallet)).to.equal(2);

    // From the wallet: an exact approval, then the purchase.
    await buy.getByLabel("Number of credits").fill("200");
    await buy.getByLabel(/Wallet/).check();
    await buy.getByRole("button", { name: "Buy credits" }).click();
    await statusOf(page, "Buy credits", `Bought 200 credits of plan ${market.run.planId} for ${market.run.amount(plan.pricePerCredit * 200n)}.`);
    expect(await creditsOf(account.address)).to.equal(500n);
    expect(await walletTokens(account.address)).to.equal(units("900") - plan.pricePerCredit * 200n);
    expect(sent(wallet), "approve + buy").to.equal(4);

    // The credits table follows the chain.
    await region(page, "Your credits").getByRole("cell", { name: "500", exact: true }).waitFor();
    await market.expectNoA11yViolations(page, "funds: after deposit and purchases (390 px)");
    await market.expectFitsWidth(page);
    market.expectNoConsoleErrors(page);
  });

  it("transfers credits, sets then clears a spending limit, and shows the gateway's unsettled figures after signing in", async function () {
    const { key, account } = await market.newBuyer();
    const setup = await market.run.as(key);
    await depositWithPermit(setup, { amount: units("50") });
    await buyCredits(setup, { planId: market.run.planId, count: 10n, payFrom: "balance" });
    const { page, wallet } = await market.openApp({ account: key });
    const friend = (await market.newBuyer(0n)).account.address;

    const transfer = region(page, "Transfer credits");
    await transfer.getByLabel("Recipient address").fill(account.address);
    await transfer.getByLabel("Number of credits to send").fill("11");
    await transfer.getByRole("button", { name: "Transfer credits" }).click();
    await transfer.getByText("That is your own address.").waitFor();
    await transfer.getByText(`You hold 10 credits of this plan.`).waitFor();
    expect(sent(wallet)).to.equal(0);
    await transfer.getByLabel("Recipient address").fill(friend);
    await transfer.getByLabel("Number of credits to send").fill("4");
    await transfer.getByRole("button", { name: "Transfer credits" }).click();
    await statusOf(page, "Transfer credits", `Sent 4 credits of plan ${market.run.planId} to ${friend}.`);
    expect(await creditsOf(friend)).to.equal(4n);
    expect(await creditsOf(account.address)).to.equal(6n);

    // The local test token has a faucet, offered on the page.
    const tokens = await walletTokens(account.address);
    await region(page, "Deposit").getByRole("button", { name: "Get test tokens" }).click();
    await statusOf(page, "Deposit", "Minted 1,000 tUSD to your wallet.");
    expect(await walletTokens(account.address)).to.equal(tokens + units("1000"));

    const limits = region(page, "Spending limits");
    await limits.getByLabel("Provider").selectOption(String(market.run.providerId));
    await limits.getByLabel("Limit per period (tUSD)").fill("2.5");
    await limits.getByLabel("Period", { exact: true }).selectOption({ label: "Week" });
    await limits.getByRole("button", { name: "Set limit" }).click();
    await statusOf(page, "Spending limits", `Provider ${market.run.providerId} may now charge at most 2.5 tUSD per week.`);
    const set = await position(account.address);
    expect(set.spendingLimits).to.have.length(1);
    expect(set.spendingLimits[0]).to.include({ providerId: market.run.providerId, limitPerPeriod: units("2.5"), periodSeconds: 604_800 });
    await limits.getByRole("cell", { name: "1 week" }).waitFor();
    await market.expectNoA11yViolations(page, "funds: a spending limit set");

    await limits.getByRole("button", { name: `Clear the limit of provider ${market.run.providerId}` }).click();
    await statusOf(page, "Spending limits", `Provider ${market.run.providerId} has no limit any more.`);
    expect((await position(account.address)).spendingLimits).to.have.length(0);

    // The gateway's side: one signature (no transaction), then its figures.
    const gateway = region(page, "At the gateway");
    const before = sent(wallet);
    await gateway.getByRole("button", { name: "Sign in to the gateway" }).click();
    await gateway.getByText("Unsettled usage").waitFor({ timeout: 30_000 });
    await gateway.getByText("0 tUSD (usage served but not yet settled)").waitFor();
    await gateway.getByRole("cell", { name: market.run.models[0].name }).waitFor();
    expect(sent(wallet)).to.equal(before);
    market.expectNoConsoleErrors(page);
  });

  it("requests and cancels a withdrawal; executing early is refused before the wallet is asked, naming the unlock time; after the delay it pays out", async function () {
    const { key, account } = await market.newBuyer();
    await depositWithPermit(await market.run.as(key), { amount: units("100") });
    const { page, wallet } = await market.openApp({ account: key });
    const withdraw = region(page, "Withdraw");

    await withdraw.getByLabel("Amount to withdraw (tUSD)").fill("40");
    await withdraw.getByRole("button", { name: "Request withdrawal" }).click();
    await statusOf(page, "Withdraw", /^40 tUSD pending; it unlocks /);
    let now = await position(account.address);
    expect(now.pendingWithdrawal).to.equal(units("40"));
    expect(now.balance).to.equal(units("60"));

    await withdraw.getByRole("button", { name: "Cancel withdrawal" }).click();
    await statusOf(page, "Withdraw", "40 tUSD returned to your vault balance.");
    now = await position(account.address);
    expect(now.pendingWithdrawal).to.equal(0n);
    expect(now.balance).to.equal(units("100"));

    await withdraw.getByLabel("Amount to withdraw (tUSD)").fill("25");
    await withdraw.getByRole("button", { name: "Request withdrawal" }).click();
    await statusOf(page, "Withdraw", /^25 tUSD pending/);
    const pending = await position(account.address);
    const transactions = sent(wallet);

    // Too early: the simulation refuses with the contract's custom error and its unlock time; nothing is sent.
    await withdraw.getByRole("button", { name: "Execute withdrawal" }).click();
    const refusal = withdraw.locator('[role="alert"][data-revert="VaultWithdrawalNotReady"]');
    await refusal.waitFor({ timeout: 30_000 });
    const text = await refusal.innerText();
    expect(text).to.contain("The contract would refuse this: VaultWithdrawalNotReady.");
    expect(text).to.contain(`withdrawableAt: ${pending.withdrawableAt}`);
    expect(text).to.contain("The withdrawal unlocks at");
    expect(text).to.contain("Nothing was sent and no gas was spent.");
    expect(sent(wallet)).to.equal(transactions);
    expect((await position(account.address)).pendingWithdrawal).to.equal(units("25"));
    await market.expectNoA11yViolations(page, "funds: a withdrawal refused as not ready");

    // The delay passes on the chain's clock.
    const provider = market.run.hre.network.provider;
    await provider.request({ method: "evm_increaseTime", params: [Number(pending.withdrawableAt - pending.chainTime) + 1] });
    await provider.request({ method: "evm_mine", params: [] });
    const tokensBefore = await walletTokens(account.address);
    await withdraw.getByRole("button", { name: "Execute withdrawal" }).click();
    await statusOf(page, "Withdraw", "25 tUSD sent to your wallet.");
    expect(await walletTokens(account.address)).to.equal(tokensBefore + units("25"));
    expect((await position(account.address)).pendingWithdrawal).to.equal(0n);
    await region(page, "What you can spend").getByText("75 tUSD", { exact: true }).waitFor();
    market.expectNoConsoleErrors(page);
  });
});
