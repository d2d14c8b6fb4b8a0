/**
 * The provider page (#/provider) in Chromium, driven as a provider would through the injected test wallet,
 * against the local marketplace: what it shows is compared with the chain, and every action is checked on
 * the chain from Node afterwards. The buyer-to-provider journey (earnings from a browser call) is
 * journey.test.ts's; these cover the page's own behaviour.
 */
import { expect } from "chai";
import type { Locator, Page } from "playwright-core";
import { erc20Abi, getAddress, parseUnits, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { tollgateAbi } from "../../server/chain/abis";
import { startAppMarket, type AppMarket } from "../helpers/browser/app-market";

const NARROW = { width: 390, height: 844 };

/**
 * Runs `click` and waits until the action status in `scope` has finished with something new (a status left by
 * an earlier action in the same scope does not count), and returns what it says.
 */
async function act(scope: Locator, click: () => Promise<void>): Promise<{ status: string; text: string }> {
  const status = scope.locator(".action-status").first();
  const before = await status.innerText();
  await click();
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
    const state = await status.getAttribute("data-status");
    const text = await status.innerText();
    if ((state === "done" || state === "failed") && text !== before) return { status: state, text };
  }
  throw new Error(`no new outcome in the action status of ${scope}: ${await status.innerText()}`);
}

function digits(text: string): bigint {
  return BigInt(text.replace(/[^\d]/g, ""));
}

describe("provider page (#/provider)", function () {
  this.timeout(300_000);
  let market: AppMarket;
  let tollgate: Address;

  const read = <const name extends "providerOf" | "modelOf" | "priceEpochOf" | "signerOf" | "earningsOf" | "creditPlanOf" | "creditPlanCount" | "modelCount" | "priceNoticePeriod" | "providerCount">(
    functionName: name,
    args: readonly unknown[] = [],
  ) => market.run.client.readContract({ address: tollgate, abi: tollgateAbi, functionName, args } as never) as Promise<never>;

  before(async function () {
    this.timeout(180_000);
    market = await startAppMarket();
    tollgate = market.run.deployment.tollgate;
    // The demo's calls are settled before the page is read, so its batches are all on the chain.
    await market.run.settle();
  });

  after(async () => market?.close());

  async function openAsProvider(): Promise<Awaited<ReturnType<AppMarket["openApp"]>>> {
    const opened = await market.openApp({ path: "#/provider", viewport: NARROW, account: market.run.providerKey });
    await opened.page.getByRole("heading", { name: `Provider #${market.run.providerId}` }).waitFor({ timeout: 60_000 })
      .catch(async (error: Error) => {
        throw new Error(`${error.message}\nThe page said: ${await opened.page.locator("main").innerText()}`);
      });
    return opened;
  }

  it("shows the demo's models, plan, signer and settled batches with their gas as the chain has them", async function () {
    const { page } = await openAsProvider();
    const { run } = market;

    const models = page.getByRole("region", { name: "Models and prices per million tokens" });
    for (const model of run.models) {
      const row = models.getByRole("row").filter({ hasText: model.name });
      await expect(await row.count(), model.name).to.equal(1);
      const text = await row.innerText();
      expect(text).to.include(`${run.amount(model.prices.input).replace(/ .*/, "")} ${run.token.symbol} / 1M`);
      expect(text).to.include("active");
    }

    const plan = (await read("creditPlanOf", [run.planId])) as { pricePerCredit: bigint; valuePerCredit: bigint };
    const plans = page.getByRole("region", { name: "Credit plans" }).getByRole("row").filter({ hasText: `#${run.planId}` });
    const bonusBasisPoints = ((plan.valuePerCredit - plan.pricePerCredit) * 10_000n) / plan.pricePerCredit;
    expect(await plans.innerText()).to.include(`+${bonusBasisPoints / 100n}.${(bonusBasisPoints % 100n).toString().padStart(2, "0")}`.replace(/\.?0+$/, "") + "%");

    const signer = (await read("signerOf", [run.gatewaySigner])) as { authorized: boolean; nextSequence: bigint };
    const signerRow = page.getByRole("region", { name: "Gateway signer keys" }).getByRole("row").filter({ hasText: run.gatewaySigner });
    const signerText = await signerRow.innerText();
    expect(signerText).to.include("authorized");
    expect(signerText).to.include(signer.nextSequence.toString());

    // Every BatchSettled of this provider, with the gas its transaction used, newest first.
    const settledLogs = await run.client.getContractEvents({ address: tollgate, abi: tollgateAbi, eventName: "BatchSettled", fromBlock: 0n });
    const ours = settledLogs.filter((log) => log.args.providerId === run.providerId).reverse();
    expect(ours.length, "the demo settled batches").to.be.greaterThan(0);
    const rows = page.getByRole("region", { name: "Settled batches, newest first" }).locator("tbody tr");
    expect(await rows.count()).to.equal(ours.length);
    for (const [index, log] of ours.entries()) {
      const receipt = await run.client.getTransactionReceipt({ hash: log.transactionHash });
      const cells = await rows.nth(index).locator("td").allInnerTexts();
      // Time, tx, signer, first sequence, records, total cost, earnings, fee, shortfall, gas used, gas per record.
      expect(digits(cells[3]), "first sequence").to.equal(log.args.firstSequence);
      expect(digits(cells[4]), "records").to.equal(BigInt(log.args.recordCount!));
      expect(cells[5]).to.equal(run.amount(log.args.totalCost!));
      expect(cells[6]).to.equal(run.amount(log.args.providerEarnings!));
      expect(digits(cells[9]), "gas used").to.equal(receipt.gasUsed);
      expect(digits(cells[10]), "gas per record").to.equal(receipt.gasUsed / BigInt(log.args.recordCount!));
    }
    // The usage chart in value: its figures (per model and day, from the records rebuilt in the browser) add up
    // to what the contract charged in those batches.
    const usage = page.getByRole("region", { name: "Usage served" });
    await usage.getByLabel("Show").selectOption("value");
    await usage.getByText("Show the figures as a table").click();
    const figures = await usage.locator("table tbody td").allInnerTexts();
    const charted = figures.reduce((sum, text) => sum + parseUnits(text.replace(/[^\d.]/g, ""), run.token.decimals), 0n);
    expect(charted).to.equal(ours.reduce((sum, log) => sum + log.args.totalCost!, 0n));
    expect(await usage.locator("canvas").count()).to.equal(1);
    await market.expectNoA11yViolations(page, "provider dashboard, 390 px");
    await market.expectFitsWidth(page);
    market.expectNoConsoleErrors(page);
  });

  it("lists a model, pauses and resumes it, refuses a price above the contract's bound before signing, schedules a change at the notice period, defines a plan", async function () {
    const { page, wallet } = await openAsProvider();
    const providerId = market.run.providerId;
    const name = `test-model-${Date.now() % 100_000}`;

    const listForm = page.getByRole("form", { name: "List a new model" });
    await listForm.getByLabel("Model name").fill(name);
    await listForm.getByLabel("Input price per 1M tokens", { exact: true }).fill("1.25");
    await listForm.getByLabel("Cached input price per 1M tokens").fill("0.5");
    await listForm.getByLabel("Output price per 1M tokens").fill("4");
    const listed = await act(listForm, () => listForm.getByRole("button", { name: "List model" }).click());
    expect(listed.status, listed.text).to.equal("done");
    const modelId = Number(/model #(\d+)/.exec(listed.text)![1]);
    const model = (await read("modelOf", [modelId])) as { providerId: number; epochCount: bigint };
    expect(model.providerId).to.equal(providerId);
    const unit = 10n ** BigInt(market.run.token.decimals);
    expect(await read("priceEpochOf", [modelId, 0n])).to.include({ input: (125n * unit) / 100n, cachedInput: unit / 2n, output: 4n * unit });
    // Pause and resume it: gateways stop serving a paused model.
    const modelsCard = page.getByRole("region", { name: "Models", exact: true });
    const paused = await act(modelsCard, () => page.getByRole("button", { name: `Pause ${name}` }).click());
    expect(paused.status, paused.text).to.equal("done");
    expect(await read("modelOf", [modelId])).to.include({ paused: true });
    const resumed = await act(modelsCard, () => page.getByRole("button", { name: `Resume ${name}` }).click());
    expect(resumed.status, resumed.text).to.equal("done");
    expect(await read("modelOf", [modelId])).to.include({ paused: false });

    // A price the contract refuses is decoded before the wallet is asked: nothing sent, nothing changed.
    const scheduleForm = page.getByRole("form", { name: "Schedule a price change" });
    await scheduleForm.getByLabel("Model to reprice").selectOption(String(modelId));
    const sentBefore = wallet.requests.filter((request) => request.method === "eth_sendTransaction").length;
    await scheduleForm.getByLabel("Output price per 1M tokens").fill("9".repeat(30));
    const refused = await act(scheduleForm, () => scheduleForm.getByRole("button", { name: "Schedule price change" }).click());
    expect(refused.status).to.equal("failed");
    expect(await scheduleForm.getByRole("alert").getAttribute("data-revert")).to.equal("RegistryPriceTooHigh");
    expect(refused.text).to.match(/at most/);
    expect(wallet.requests.filter((request) => request.method === "eth_sendTransaction").length).to.equal(sentBefore);
    expect(((await read("modelOf", [modelId])) as { epochCount: bigint }).epochCount).to.equal(1n);
    await market.expectNoA11yViolations(page, "price change refused");

    // The earliest time is prefilled from the chain: the latest block's time plus the notice period.
    const notice = (await read("priceNoticePeriod")) as bigint;
    const shownEarliest = BigInt((await scheduleForm.locator("output").getAttribute("data-earliest"))!);
    const latest = await market.run.client.getBlock();
    expect(shownEarliest - notice).to.be.at.most(latest.timestamp);
    await scheduleForm.getByLabel("Output price per 1M tokens").fill("5");
    const scheduled = await act(scheduleForm, () => scheduleForm.getByRole("button", { name: "Schedule price change" }).click());
    expect(scheduled.status, scheduled.text).to.equal("done");
    const epoch = (await read("priceEpochOf", [modelId, 1n])) as { effectiveFrom: number; output: bigint };
    expect(epoch.output).to.equal(5n * unit);
    const logs = await market.run.client.getContractEvents({ address: tollgate, abi: tollgateAbi, eventName: "PriceScheduled", args: { modelId }, fromBlock: latest.number });
    const block = await market.run.client.getBlock({ blockNumber: logs.at(-1)!.blockNumber });
    expect(BigInt(epoch.effectiveFrom)).to.equal(block.timestamp + notice);
    await page.getByRole("region", { name: "Models and prices per million tokens" }).getByRole("row").filter({ hasText: name }).getByText(/^From /).waitFor();

    // A plan: price 8, value 10 (a 25% bonus, shown as typed) covering the new model.
    const planForm = page.getByRole("form", { name: "Define a credit plan" });
    await planForm.getByLabel("Price per credit").fill("8");
    await planForm.getByLabel("Value per credit").fill("10");
    expect(await planForm.getByTestId("plan-bonus").innerText()).to.equal("+25%");
    await planForm.getByRole("checkbox", { name }).check();
    const plansBefore = (await read("creditPlanCount")) as bigint;
    const defined = await act(planForm, () => planForm.getByRole("button", { name: "Define plan" }).click());
    expect(defined.status, defined.text).to.equal("done");
    const planId = plansBefore + 1n;
    expect(await read("creditPlanCount")).to.equal(planId);
    expect(await read("creditPlanOf", [planId])).to.include({ providerId, pricePerCredit: 8n * unit, valuePerCredit: 10n * unit, expiresAt: 0 });
    await page.getByRole("region", { name: "Credit plans" }).getByRole("row").filter({ hasText: `#${planId}` }).waitFor();
    await market.expectNoA11yViolations(page, "model listed, price scheduled, plan defined");
    await market.expectFitsWidth(page);
    market.expectNoConsoleErrors(page);
  });

  it("authorizes then revokes a new gateway key; a rejected withdrawal changes nothing; a withdrawal pays exactly the earnings to the payout", async function () {
    const { page, wallet } = await openAsProvider();
    const { run } = market;
    const signers = page.getByRole("region", { name: "Gateway signers" });
    const key = privateKeyToAccount(generatePrivateKey()).address;
    await signers.getByLabel("Gateway key address").fill(key);
    expect((await act(signers, () => signers.getByRole("button", { name: "Authorize key" }).click())).status).to.equal("done");
    expect(await read("signerOf", [key])).to.include({ providerId: run.providerId, authorized: true });
    expect((await act(signers, () => signers.getByRole("button", { name: `Revoke ${key}` }).click())).status).to.equal("done");
    expect(await read("signerOf", [key])).to.include({ authorized: false });
    await signers.getByRole("row").filter({ hasText: key }).getByText("revoked").waitFor();

    const earningsCard = page.getByRole("region", { name: "Earnings" });
    const earnings = (await read("earningsOf", [run.providerId])) as bigint;
    expect(earnings, "the demo's settled usage earned something").to.be.greaterThan(0n);
    expect(await earningsCard.locator(".stat").innerText()).to.equal(run.amount(earnings));

    wallet.rejectNext("eth_sendTransaction");
    const rejected = await act(earningsCard, () => earningsCard.getByRole("button", { name: "Withdraw earnings" }).click());
    expect(rejected.status).to.equal("failed");
    expect(rejected.text).to.include("You rejected the request in your wallet.");
    expect(await read("earningsOf", [run.providerId])).to.equal(earnings);

    const { payout } = (await read("providerOf", [run.providerId])) as { payout: Address };
    const balance = () => run.client.readContract({ address: run.token.address, abi: erc20Abi, functionName: "balanceOf", args: [payout] });
    const before = await balance();
    const owed = (await read("earningsOf", [run.providerId])) as bigint;
    const withdrawn = await act(earningsCard, () => earningsCard.getByRole("button", { name: "Withdraw earnings" }).click());
    expect(withdrawn.status, withdrawn.text).to.equal("done");
    expect((await balance()) - before).to.equal(owed);
    expect(withdrawn.text).to.include(`Sent ${run.amount(owed)} to ${getAddress(payout)}`);
    await market.expectNoA11yViolations(page, "signer revoked, earnings withdrawn");
    market.expectNoConsoleErrors(page);
  });

  it("a wallet that owns no provider sees only the registration form, and registers one", async function () {
    const { page, account } = await market.openApp({ path: "#/provider", viewport: NARROW });
    const form = page.getByRole("region", { name: "Register as a provider" });
    await form.waitFor();
    for (const tool of ["Earnings", "Models", "Gateway signers", "Batches settled"]) expect(await page.getByRole("region", { name: tool, exact: true }).count(), tool).to.equal(0);
    expect(await form.getByLabel("Payout address").inputValue()).to.equal(account.address);
    await market.expectNoA11yViolations(page, "no provider: registration form");
    await market.expectFitsWidth(page);

    const before = (await read("providerCount")) as bigint;
    await form.getByLabel("Metadata URI").fill("https://new-provider.example/tollgate.json");
    await form.getByRole("button", { name: "Register provider" }).click();
    const providerId = Number(before) + 1;
    await page.getByRole("heading", { name: `Provider #${providerId}` }).waitFor({ timeout: 60_000 });
    expect(await read("providerCount")).to.equal(before + 1n);
    expect(await read("providerOf", [providerId])).to.include({ owner: account.address, payout: account.address });
    expect(await page.getByRole("region", { name: `Provider #${providerId}` }).innerText()).to.include("https://new-provider.example/tollgate.json");
    await market.expectNoA11yViolations(page, "new provider's dashboard");
    await market.expectFitsWidth(page);
    market.expectNoConsoleErrors(page);
  });
});
