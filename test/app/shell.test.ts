/**
 * The app's frame in a real browser against the local marketplace: the gateway serves it and tells it the
 * deployment, EIP-6963 offers every injected wallet, connecting follows the wallet's account, a wallet on
 * another chain is warned and switched back, and a page reload reconnects without a prompt.
 */
import { expect } from "chai";
import { injectWallet } from "../helpers/browser";
import { startAppMarket, type AppMarket } from "../helpers/browser/app-market";

describe("web app: the shell", function () {
  this.timeout(180_000);
  let market: AppMarket;

  before(async function () {
    market = await startAppMarket();
  });
  after(async () => market?.close());

  it("names the deployment the gateway serves, offers every injected wallet, and connects to the one picked", async () => {
    const { key, account } = await market.newBuyer(0n);
    const other = await market.newBuyer(0n);
    const page = await market.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await injectWallet(page, { privateKey: other.key, rpcUrl: market.run.rpcUrl, info: { name: "Second Wallet", rdns: "dev.tollgate.second" } });
    const wallet = await injectWallet(page, { privateKey: key, rpcUrl: market.run.rpcUrl });
    await page.goto(market.appUrl);

    const header = await page.locator("header.top").innerText();
    expect(header).to.include(`chain ${market.run.deployment.chainId}`);
    await market.expectNoA11yViolations(page, "shell, disconnected");

    await page.getByRole("button", { name: "Connect wallet" }).click();
    const offered = await page.getByRole("group", { name: "Wallets in this browser" }).getByRole("button").allInnerTexts();
    expect(offered.map((name) => name.trim())).to.have.members(["Second Wallet", "Tollgate Test Wallet"]);
    await page.getByRole("button", { name: "Tollgate Test Wallet" }).click();
    await page.getByRole("button", { name: "Disconnect" }).waitFor();
    expect(await page.getByLabel(`Connected with Tollgate Test Wallet as ${account.address}`).count()).to.equal(1);
    expect(wallet.requests.map((request) => request.method)).to.include("eth_requestAccounts");

    // A reload reconnects to the wallet picked last, asking nothing.
    const asked = wallet.requests.filter((request) => request.method === "eth_requestAccounts").length;
    await page.reload();
    await page.getByRole("button", { name: "Disconnect" }).waitFor();
    expect(wallet.requests.filter((request) => request.method === "eth_requestAccounts").length).to.equal(asked);

    // Disconnecting forgets the choice: the next load stays disconnected.
    await page.getByRole("button", { name: "Disconnect" }).click();
    await page.reload();
    await page.getByRole("button", { name: "Connect wallet" }).waitFor();
    market.expectNoConsoleErrors(page);
  });

  it("warns when the wallet is on another chain, signs nothing there, and switches back on request", async () => {
    const { page, wallet } = await market.openApp({ path: "#/" });
    await wallet.setChain(1);
    const banner = page.locator(".network-banner");
    await banner.waitFor();
    expect(await banner.innerText()).to.match(new RegExp(`Your wallet is on chain 1, but this Tollgate deployment is on .*chain ${market.run.deployment.chainId}`));
    await market.expectNoA11yViolations(page, "wrong network");

    await page.getByRole("button", { name: /^Switch to / }).click();
    await banner.waitFor({ state: "detached" });
    expect(wallet.chainId).to.equal(market.run.deployment.chainId);
    expect(wallet.requests.some((request) => request.method === "wallet_switchEthereumChain")).to.equal(true);
    market.expectNoConsoleErrors(page);
  });

  it("says so when the user refuses the switch in the wallet, and stays on the warning", async () => {
    const { page, wallet } = await market.openApp({ path: "#/" });
    await wallet.setChain(1);
    wallet.rejectNext("wallet_switchEthereumChain");
    await page.getByRole("button", { name: /^Switch to / }).click();
    const alert = page.locator(".network-banner .notice");
    await alert.waitFor();
    expect(await alert.innerText()).to.include("You rejected the request in your wallet.");
    expect(wallet.chainId).to.equal(1);
    market.expectNoConsoleErrors(page);
  });

  it("shows a transaction the chain recorded, with its decoded events, on chains without an explorer", async () => {
    const settlement = market.run.transactions.find((transaction) => transaction.label.startsWith("oracle settles"))!;
    const { page } = await market.openApp({ path: `#/tx/${settlement.hash}`, connect: false });
    const card = page.locator("section.card");
    await card.getByText("Confirmed").waitFor();
    const text = await card.innerText();
    const receipt = await market.run.client.getTransactionReceipt({ hash: settlement.hash });
    expect(text).to.include(`${receipt.blockNumber} at`);
    expect(text).to.include(receipt.gasUsed.toLocaleString("en-US"));
    expect(text).to.include("BatchSettled");
    await market.expectNoA11yViolations(page, "transaction page");
  });

  it("works from the keyboard alone: skip link, connecting, the navigation, and focus on each new page's heading", async () => {
    const { page } = await market.openApp({ path: "#/", connect: false });
    /** Presses Tab until the focused element's accessible text is `name` (fails after 40 presses: not reachable). */
    const tabTo = async (name: string) => {
      for (let presses = 0; presses < 40; presses++) {
        await page.keyboard.press("Tab");
        const focused = await page.evaluate(() => {
          const element = document.activeElement as HTMLElement | null;
          return element ? (element.getAttribute("aria-label") ?? element.innerText ?? "").trim() : "";
        });
        if (focused === name) return;
      }
      throw new Error(`"${name}" cannot be reached with the Tab key`);
    };
    await page.getByRole("button", { name: "Connect wallet" }).waitFor();
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).to.equal("Skip to content");
    await page.keyboard.press("Enter");
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal("main");

    await page.locator("body").focus();
    await tabTo("Connect wallet");
    await page.keyboard.press("Enter");
    await tabTo("Tollgate Test Wallet");
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "Disconnect" }).waitFor();

    await tabTo("Market");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.activeElement?.tagName === "H1" && document.activeElement.textContent === "Market");
    market.expectNoConsoleErrors(page);
  });

  it("fits a 390-pixel screen", async () => {
    const { page } = await market.openApp({ path: "#/", viewport: { width: 390, height: 844 } });
    await market.expectFitsWidth(page);
    await market.expectNoA11yViolations(page, "shell, narrow");
    market.expectNoConsoleErrors(page);
  });
});
