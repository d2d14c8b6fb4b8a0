/**
 * The Market page (#/market) in Chromium against the local marketplace, read without a wallet: the demo's
 * models with the chain's prices in force, a change the provider scheduled, a paused model, the credit
 * plans (an expired one marked and not sold), and a "Buy" link that opens the Funds page's form on its plan.
 */
import { expect } from "chai";
import { formatUnits } from "viem";
import { defineCreditPlan, scheduleModelPrice, setModelPaused } from "../../client";
import { DEFAULT_WALLET_NAME } from "../helpers/browser";
import { startAppMarket, type AppMarket } from "../helpers/browser/app-market";

describe("web app: Market page", function () {
  this.timeout(180_000);
  let market: AppMarket;

  before(async function () {
    market = await startAppMarket();
  });
  after(async () => market?.close());

  it("lists each model's prices in force and scheduled, paused models, and the plans with their bonus; Buy opens the form on that plan (390 px, no wallet)", async function () {
    const { run } = market;
    const perMillion = (value: bigint) => `${formatUnits(value, run.token.decimals)} ${run.token.symbol} / 1M`;
    const [small, large] = run.models;
    const provider = await run.as(run.provider);
    const newPrices = { input: small.prices.input * 2n, cachedInput: small.prices.cachedInput * 2n, output: small.prices.output * 3n };
    const scheduled = await scheduleModelPrice(provider, { modelId: small.modelId, prices: newPrices });
    await setModelPaused(provider, { modelId: large.modelId, paused: true });
    const now = (await run.client.getBlock()).timestamp;
    const expired = await defineCreditPlan(provider, { providerId: run.providerId, pricePerCredit: 1_000_000n, valuePerCredit: 1_200_000n, modelIds: [small.modelId], expiresAt: Number(now) - 1 });
    const bundle = await defineCreditPlan(provider, { providerId: run.providerId, pricePerCredit: 2_000_000n, valuePerCredit: 2_500_000n, modelIds: [small.modelId, large.modelId] });

    const { page, wallet } = await market.openApp({ path: "#/market", connect: false, viewport: { width: 390, height: 844 } });
    const models = page.getByRole("table", { name: `Models of provider ${run.providerId}, prices in force now` });
    const smallRow = await models.getByRole("row").filter({ hasText: small.name }).innerText();
    for (const price of [small.prices.input, small.prices.cachedInput, small.prices.output]) expect(smallRow).to.contain(perMillion(price));
    expect(smallRow).to.contain("On sale");
    const largeRow = await models.getByRole("row").filter({ hasText: large.name }).innerText();
    expect(largeRow).to.contain("Paused");
    expect(largeRow).to.contain(perMillion(large.prices.output));

    const changes = await page.getByRole("table", { name: `Scheduled price changes of provider ${run.providerId}` }).getByRole("row").filter({ hasText: small.name }).innerText();
    for (const price of [newPrices.input, newPrices.cachedInput, newPrices.output]) expect(changes).to.contain(perMillion(price));
    // The deployment's notice period (a day) counted on the chain's clock, read a moment after scheduling.
    expect(run.deployment.parameters.priceNoticeSeconds).to.equal(86_400);
    expect(scheduled.effectiveFrom > now).to.equal(true);
    expect(changes).to.match(/\(in (1 d|23 h \d+ min)\)/);

    const plans = page.getByRole("table", { name: `Credit plans of provider ${run.providerId}` });
    const bundleRow = await plans.getByRole("row").filter({ hasText: `#${bundle.planId}` }).innerText();
    expect(bundleRow).to.contain("+25%");
    expect(bundleRow).to.contain(`${small.name}, ${large.name}`);
    expect(bundleRow).to.contain("never");
    const expiredRow = plans.getByRole("row").filter({ hasText: `#${expired.planId}` });
    expect(await expiredRow.innerText()).to.contain("Expired");
    expect(await expiredRow.getByRole("link").count(), "an expired plan has no Buy link").to.equal(0);
    await market.expectNoA11yViolations(page, "market (390 px, no wallet)");
    await market.expectFitsWidth(page);

    await page.getByRole("link", { name: `Buy credits of plan ${bundle.planId}` }).click();
    await page.getByText("Connect a wallet to see what you can spend").waitFor();
    await page.getByRole("button", { name: "Connect wallet" }).click();
    await page.getByRole("button", { name: DEFAULT_WALLET_NAME }).click();
    const plan = page.getByRole("region", { name: "Buy credits", exact: true }).getByLabel("Plan");
    await plan.waitFor();
    // The form picks the linked plan once the market's plans are read.
    for (let tries = 0; (await plan.inputValue()) !== bundle.planId.toString() && tries < 100; tries++) await page.waitForTimeout(100);
    expect(await plan.inputValue()).to.equal(bundle.planId.toString());
    expect(page.url()).to.contain(`#/?plan=${bundle.planId}`);
    expect(wallet.requests.filter((request) => request.method === "eth_sendTransaction")).to.have.length(0);
    market.expectNoConsoleErrors(page);
  });
});
