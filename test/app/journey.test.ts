/**
 * The whole web-app journey the issue names, in one browser against the local marketplace, every step through
 * the pages a MetaMask user sees (the injected EIP-1193 wallet stands in for the extension): connect, deposit
 * with a permit, buy credits, create an API key by signature, call a model with that key through the real
 * `openai` client, watch the call appear, settle and verify against the chain in the page; then the provider,
 * in its own browser tab and wallet, sees the earnings that call paid and withdraws them to its payout.
 */
import { expect } from "chai";
import { parseUnits, type Address } from "viem";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi } from "../../server/chain/abis";
import { startAppMarket, type AppMarket } from "../helpers/browser/app-market";

describe("web app: the buyer-to-provider journey", function () {
  this.timeout(300_000);
  let market: AppMarket;

  before(async function () {
    market = await startAppMarket();
  });
  after(async () => market?.close());

  it("connect, deposit with a permit, buy credits, create a key, call through the openai client, see it settle and verify; the provider withdraws what it earned", async () => {
    const { run } = market;
    const units = (whole: string) => parseUnits(whole, run.token.decimals);
    const read = <T>(functionName: string, args: readonly unknown[]) =>
      run.client.readContract({ address: run.deployment.tollgate, abi: tollgateAbi, functionName: functionName as never, args: args as never }) as Promise<T>;
    const tokens = (owner: Address) => run.client.readContract({ address: run.token.address, abi: testUsdAbi, functionName: "balanceOf", args: [owner] });

    // 1. Connect (the fixture clicks "Connect wallet" and picks the test wallet) and deposit with a permit.
    const { page, wallet, account } = await market.openApp({ path: "#/" });
    const deposit = page.getByRole("region", { name: "Deposit", exact: true });
    await deposit.getByText("One transaction").waitFor();
    await deposit.getByLabel(`Amount to deposit (${run.token.symbol})`).fill("50");
    await deposit.getByRole("button", { name: "Deposit", exact: true }).click();
    await deposit.getByRole("status").getByText(`Deposited 50 ${run.token.symbol} into your vault balance.`).waitFor({ timeout: 60_000 });
    expect((await read<{ balance: bigint }>("accountOf", [account.address])).balance).to.equal(units("50"));
    expect(wallet.requests.filter((request) => request.method === "eth_sendTransaction" && !request.error), "a permit deposit is one transaction").to.have.length(1);

    // 2. Buy credits from the vault balance.
    const plan = await read<{ pricePerCredit: bigint }>("creditPlanOf", [run.planId]);
    const buy = page.getByRole("region", { name: "Buy credits", exact: true });
    await buy.getByLabel("Plan").selectOption(run.planId.toString());
    await buy.getByLabel("Number of credits").fill("100");
    await buy.getByLabel(/Vault balance/).check();
    await buy.getByRole("button", { name: "Buy credits" }).click();
    await buy.getByRole("status").getByText(`Bought 100 credits of plan ${run.planId}`, { exact: false }).waitFor({ timeout: 60_000 });
    const credits = await run.client.readContract({ address: run.deployment.credits, abi: tollgateCreditsAbi, functionName: "balanceOf", args: [account.address, run.planId] });
    expect(credits).to.equal(100n);
    expect((await read<{ balance: bigint }>("accountOf", [account.address])).balance).to.equal(units("50") - plan.pricePerCredit * 100n);

    // 3. Create an API key by signing in the wallet; the secret is shown once.
    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByLabel("Label").fill("journey");
    await page.getByLabel("Tags (optional)").fill("team:journey");
    await page.getByRole("button", { name: "Sign and create the key" }).click();
    const secretBox = page.getByLabel("API key secret");
    await secretBox.waitFor({ timeout: 60_000 });
    const secret = ((await secretBox.textContent()) ?? "").trim();
    expect(secret).to.match(/^tg_/);

    // 4. A call with that key through the real openai client, as the page's snippet says.
    const model = run.models[0].name;
    const { data: completion, response } = await run
      .openai(secret)
      .chat.completions.create({ model, messages: [{ role: "user", content: "What does a prepaid balance protect a provider against?" }], max_tokens: 24 })
      .withResponse();
    expect(completion.usage?.completion_tokens).to.be.greaterThan(0);
    expect(response.headers.get("x-tollgate-receipt"), "the gateway hands over a signed receipt").to.be.a("string");
    const [record] = run.gateway.ctx.store.recordsOf(account.address, {});
    expect(record.modelName).to.equal(model);

    // 5. It appears in Usage (one read-session signature), settles, and verifies against the chain in the page.
    await page.getByRole("link", { name: "Usage" }).click();
    await page.getByRole("button", { name: "Sign in to the gateway" }).click();
    const calls = page.getByRole("region", { name: "Calls" });
    await calls.getByRole("row", { name: new RegExp(`^${record.sequence} .*${model}`) }).waitFor({ timeout: 60_000 });
    await run.settle();
    const settled = run.gateway.ctx.store.recordsOf(account.address, {})[0];
    expect(settled.settlement, "the oracle settled the call").to.not.equal(null);
    await page.reload();
    const row = calls.getByRole("row", { name: new RegExp(`^${record.sequence} `) });
    await row.waitFor({ timeout: 60_000 });
    await row.getByRole("button", { name: `Verify call ${record.sequence} against the chain` }).click();
    await page.getByText("Checked against the chain: 1 verified, 0 mismatch, 0 pending settlement.").waitFor({ timeout: 60_000 });
    expect(await row.textContent()).to.include("verified").and.to.include(settled.settlement!.txHash.slice(0, 6));
    // The credits paid for it first: the chain burned what the call cost.
    market.expectNoConsoleErrors(page);

    // 6. The provider, in its own tab and wallet, sees the earnings and withdraws them to its payout.
    const provider = await market.openApp({ path: "#/provider", account: run.providerKey });
    const earningsCard = provider.page.getByRole("region", { name: "Earnings" });
    const earnings = await read<bigint>("earningsOf", [run.providerId]);
    expect(earnings).to.be.greaterThan(0n);
    await earningsCard.locator(".stat").getByText(run.amount(earnings), { exact: true }).waitFor({ timeout: 60_000 });
    const { payout } = await read<{ payout: Address }>("providerOf", [run.providerId]);
    const before = await tokens(payout);
    await earningsCard.getByRole("button", { name: "Withdraw earnings" }).click();
    await earningsCard.getByRole("status").getByText(/confirmed in block/).waitFor({ timeout: 60_000 });
    expect(await tokens(payout)).to.equal(before + earnings);
    expect(await read<bigint>("earningsOf", [run.providerId])).to.equal(0n);
    market.expectNoConsoleErrors(provider.page);
  });
});
