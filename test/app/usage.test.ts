/**
 * The Usage page in Chromium with the injected test wallet, against the local marketplace: a buyer's calls
 * (made with a key through the real `openai` client and settled by the oracle) appear after one read-session
 * signature, charted and listed; each receipt is verified against the chain in the browser; filters and
 * CSV export match the gateway's store. A receipt tampered with on the way (route interception) shows a
 * mismatch naming the field, never "verified"; a rejected signature and an unreachable gateway are said
 * plainly.
 */
import fs from "node:fs";
import { expect } from "chai";
import { formatUnits, parseUnits } from "viem";
import { createApiKey, createBudget, deposit, getUsageSummary, recordOutcome, setSignerAuthorization } from "../../client";
import { formatAmount } from "../../app/src/lib/amounts";
import { percent } from "../../app/src/lib/percent";
import { startAppMarket, type AppMarket } from "../helpers/browser/app-market";

const NARROW = { width: 390, height: 844 };

describe("Usage page (#/usage)", function () {
  this.timeout(240_000);
  let market: AppMarket;
  let buyer: Awaited<ReturnType<AppMarket["newBuyer"]>>;
  let models: string[];
  let apiKey: string;

  const records = () => market.run.gateway.ctx.store.recordsOf(buyer.account.address, {});

  before(async function () {
    market = await startAppMarket();
    // A buyer with two settled calls, one per model, through a key with a tag.
    buyer = await market.newBuyer();
    const client = await market.run.as(buyer.key);
    await deposit(client, { amount: parseUnits("20", market.run.token.decimals) });
    const key = await createApiKey(client, { label: "usage bot", tags: ["team:search"] });
    apiKey = key.key;
    models = market.run.models.map((model) => model.name).slice(0, 2);
    for (const model of models) await market.run.openai(key.key).chat.completions.create({ model, messages: [{ role: "user", content: `Hello ${model}` }], max_tokens: 16 });
    await market.run.settle();
    expect(records().map((record) => record.settlement !== null)).to.deep.equal([true, true]);
  });

  it("signs in once, charts and lists the calls, verifies every receipt against the chain, filters, and exports the CSV", async function () {
    const { page } = await market.openApp({ path: "#/usage", account: buyer.key, viewport: NARROW });
    await page.getByRole("button", { name: "Sign in to the gateway" }).waitFor();
    await market.expectNoA11yViolations(page, "usage: sign in");
    await page.getByRole("button", { name: "Sign in to the gateway" }).click();

    const stored = records();
    const calls = page.getByRole("region", { name: "Calls" });
    for (const record of stored) await calls.getByRole("row", { name: new RegExp(`^${record.sequence} .*${record.modelName}`) }).waitFor();
    expect(await calls.getByRole("row").count(), "header + one row per call").to.equal(stored.length + 1);
    const total = stored.reduce((sum, record) => sum + record.cost, 0n);
    await page.getByText(`Total in this range: ${formatUnits(total, market.run.token.decimals)} ${market.run.token.symbol}`).waitFor();
    await page.getByRole("img", { name: "Spend per day by model" }).waitFor();
    await market.expectNoA11yViolations(page, "usage: calls listed");
    await market.expectFitsWidth(page);

    // Verified in the browser, one row, then all shown: the status line and each row say so in words.
    await page.getByRole("button", { name: `Verify call ${stored[0].sequence} against the chain` }).click();
    await page.getByText("Checked against the chain: 1 verified, 0 mismatch, 0 pending settlement.").waitFor();
    await page.getByRole("button", { name: "Verify all shown" }).click();
    await page.getByText(`Checked against the chain: ${stored.length} verified, 0 mismatch, 0 pending settlement.`).waitFor();
    for (const record of stored) {
      const row = calls.getByRole("row", { name: new RegExp(`^${record.sequence} `) });
      expect(await row.textContent()).to.include("verified").and.to.include(record.settlement!.txHash.slice(0, 6));
    }
    await market.expectNoA11yViolations(page, "usage: verified");
    await market.expectFitsWidth(page);

    // Grouping and filters go to the chart and to the gateway's /v1/usage filters.
    await page.getByLabel("Group spend by").selectOption("key");
    await page.getByRole("img", { name: "Spend per day by API key" }).waitFor();
    await page.getByLabel("Model").selectOption(models[1]);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await calls.getByRole("row", { name: new RegExp(`^${stored[0].sequence} `) }).waitFor({ state: "detached" });
    expect(await calls.getByRole("row").count()).to.equal(2);
    await page.getByRole("button", { name: "Clear" }).click();
    await calls.getByRole("row", { name: new RegExp(`^${stored[0].sequence} `) }).waitFor();

    // The CSV: the gateway's rows, saved under a name with the date range.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
    expect(download.suggestedFilename()).to.match(/^tollgate-usage_\d{4}-\d{2}-\d{2}_to_\d{4}-\d{2}-\d{2}\.csv$/);
    const [header, ...lines] = fs.readFileSync((await download.path())!, "utf8").trim().split("\n");
    const columns = header.split(",");
    const rows = lines.map((line) => line.split(","));
    expect(rows.map((row) => row[columns.indexOf("sequence")])).to.deep.equal(stored.map((record) => record.sequence.toString()));
    expect(rows.map((row) => row[columns.indexOf("cost")])).to.deep.equal(stored.map((record) => record.cost.toString()));
    expect(rows.map((row) => row[columns.indexOf("settlement_tx")])).to.deep.equal(stored.map((record) => record.settlement!.txHash));
    await page.getByText(/Saved tollgate-usage_.*\(2 calls\)/).waitFor();
    market.expectNoConsoleErrors(page);
  });

  it("a receipt altered on its way from the gateway shows a mismatch naming the field, never verified", async function () {
    const { page } = await market.openApp({ path: "#/usage", account: buyer.key });
    await page.route("**/v1/usage?**", async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      if (body.data?.length === 2) {
        // Row 1: the gateway lies consistently (listed and signed cost), so the signature and the chain disagree.
        body.data[0].cost = (BigInt(body.data[0].cost) + 1n).toString();
        body.data[0].receipt.receipt.cost = body.data[0].cost;
        // Row 2: only the listed figure differs from what was signed.
        body.data[1].cost = (BigInt(body.data[1].cost) * 2n).toString();
      }
      await route.fulfill({ response, json: body });
    });
    await page.getByRole("button", { name: "Sign in to the gateway" }).click();
    await page.getByRole("button", { name: "Verify all shown" }).click();
    await page.getByText("Checked against the chain: 0 verified, 2 mismatch, 0 pending settlement.").waitFor();
    const calls = page.getByRole("region", { name: "Calls" });
    const [first, second] = records();
    const firstRow = await calls.getByRole("row", { name: new RegExp(`^${first.sequence} `) }).textContent();
    expect(firstRow).to.include("mismatch: cost").and.to.include(`the chain settled ${first.cost}`).and.not.to.match(/\bverified\b/);
    const secondRow = await calls.getByRole("row", { name: new RegExp(`^${second.sequence} `) }).textContent();
    expect(secondRow).to.include("mismatch: cost").and.to.include(`its signed receipt says ${second.cost}`);
    await market.expectNoA11yViolations(page, "usage: mismatch");
  });

  it("a rejected sign-in and an unreachable gateway are said plainly, and nothing is shown as if read", async function () {
    const { page, wallet } = await market.openApp({ path: "#/usage", account: buyer.key });
    wallet.rejectNext("eth_signTypedData_v4");
    await page.getByRole("button", { name: "Sign in to the gateway" }).click();
    await page.getByRole("alert").getByText("You rejected the request in your wallet.").waitFor();
    await market.expectNoA11yViolations(page, "usage: sign-in rejected");

    await page.route("**/v1/**", (route) => route.abort());
    await page.getByRole("button", { name: "Sign in to the gateway" }).click();
    await page.getByRole("alert").getByText("Cannot reach the Tollgate gateway.").waitFor();
    expect(await page.getByRole("region", { name: "Calls" }).count()).to.equal(0);
    await market.expectNoA11yViolations(page, "usage: gateway unreachable");
  });

  it("a call the chain has not settled yet is pending settlement, then verified once the oracle settles it", async function () {
    const provider = market.run.hre.network.provider;
    // Blocks stop being mined: the oracle's settlement waits in the mempool while the page looks.
    await provider.send("evm_setAutomine", [false]);
    try {
      await market.run.openai(apiKey).chat.completions.create({ model: models[0], messages: [{ role: "user", content: "Not settled yet" }], max_tokens: 16 });
      const fresh = records().at(-1)!;
      const { page } = await market.openApp({ path: "#/usage", account: buyer.key });
      await page.getByRole("button", { name: "Sign in to the gateway" }).click();
      const row = page.getByRole("region", { name: "Calls" }).getByRole("row", { name: new RegExp(`^${fresh.sequence} `) });
      await row.getByText("unsettled").waitFor();
      await row.getByRole("button", { name: `Verify call ${fresh.sequence} against the chain` }).click();
      await row.getByText("pending settlement").waitFor();
      expect(await row.textContent()).to.include("Not settled on-chain yet").and.not.to.match(/\bverified\b/);
      await market.expectNoA11yViolations(page, "usage: pending settlement");

      await provider.send("evm_setAutomine", [true]);
      await provider.send("evm_mine", []);
      await market.run.settle();
      expect(records().at(-1)!.settlement, "settled on-chain").to.not.equal(null);
      await page.reload();
      await row.getByRole("button", { name: `Verify call ${fresh.sequence} against the chain` }).click();
      await row.getByText("verified").waitFor();
      market.expectNoConsoleErrors(page);
    } finally {
      await provider.send("evm_setAutomine", [true]);
    }
  });

  it("where the money went: spend by tag and by run, a workflow's retry tail and cost per completed run, and a budget's spend, as the gateway totals them", async function () {
    const { decimals } = market.run.token;
    const shown = (value: bigint) => formatAmount(value, market.run.token);
    const spender = await market.newBuyer();
    const client = await market.run.as(spender.key);
    await deposit(client, { amount: parseUnits("20", decimals) });
    const key = await createApiKey(client, { label: "triage bot", tags: ["team:support", "workflow:triage"] });
    await createBudget(client, { scope: "tag", target: "team:support", period: "month", limit: parseUnits("5", decimals), label: "support monthly" });
    const ask = (trace: string, headers: Record<string, string> = {}) =>
      market.run.openai(key.key).chat.completions.create({ model: models[0], messages: [{ role: "user", content: `Triage ${trace}` }], max_tokens: 16 }, { headers: { "x-tollgate-trace-id": trace, ...headers } });
    await ask("run-1", { "idempotency-key": "ticket-1" });
    await ask("run-1", { "idempotency-key": "ticket-1" }); // the client retried: the same idempotency key
    await ask("run-2");
    await recordOutcome(client, { apiKey: key.key, traceId: "run-1", type: "ticket_resolved", success: true });
    await recordOutcome(client, { apiKey: key.key, traceId: "run-2", type: "ticket_resolved", success: false });

    const stored = market.run.gateway.ctx.store.recordsOf(spender.account.address, {});
    expect(stored).to.have.length(3);
    const total = stored.reduce((sum, record) => sum + record.cost, 0n);
    const runCost = (trace: string) => stored.filter((record) => record.attribution?.traceId === trace).reduce((sum, record) => sum + record.cost, 0n);
    // The gateway's own figures for this buyer, checked against its records before the page is.
    const summary = await getUsageSummary(client, { apiKey: key.key, groupBy: ["tag"] });
    const triage = summary.workflows.find((workflow) => workflow.workflow.endsWith("triage"))!;
    expect(triage).to.deep.include({ runs: 2, retry_calls: 1, retry_cost: stored[1].cost.toString(), successful_runs: 1, cost_per_completed_run: total.toString() });

    const { page } = await market.openApp({ path: "#/usage", account: spender.key, viewport: NARROW });
    await page.getByRole("button", { name: "Sign in to the gateway" }).click();
    const byTag = page.getByRole("region", { name: "Spend by team or workflow tag" });
    const sum = (field: "inputTokens" | "cachedInputTokens" | "outputTokens") => stored.reduce((total, record) => total + record[field], 0).toLocaleString();
    for (const tag of ["team:support", "workflow:triage"]) {
      const row = byTag.getByRole("row", { name: new RegExp(`^${tag} `) });
      await row.waitFor();
      const cells = await row.getByRole("cell").allTextContents();
      expect(cells).to.deep.equal([tag, "3", sum("inputTokens"), sum("cachedInputTokens"), sum("outputTokens"), shown(total)]);
    }
    const workflows = page.getByRole("region", { name: "Workflows: retries and cost per completed run" });
    const row = await workflows.getByRole("row", { name: new RegExp(triage.workflow) }).textContent();
    expect(row).to.include(`${shown(stored[1].cost)} (${percent(triage.retry_cost_share)})`);
    expect(row).to.include(shown(total)); // cost per completed run: every run's cost over the one that succeeded
    const budgets = page.getByRole("region", { name: "Budgets this period" });
    expect(await budgets.getByRole("row", { name: /^support monthly/ }).textContent()).to.include(shown(total)).and.to.include(shown(parseUnits("5", decimals)));
    await market.expectNoA11yViolations(page, "usage: where the money went");
    await market.expectFitsWidth(page);

    // By run: each trace's own calls.
    await page.getByLabel("Total spend by").selectOption("trace");
    const byRun = page.getByRole("region", { name: "Spend by run (trace id)" });
    for (const trace of ["run-1", "run-2"]) expect(await byRun.getByRole("row", { name: new RegExp(`^${trace} `) }).textContent()).to.include(shown(runCost(trace)));
    market.expectNoConsoleErrors(page);
  });

  it("a call settled by a gateway key the provider has since retired still verifies: its signer was authorized when it settled", async function () {
    // Last in the file: with its key revoked the gateway can sign nothing more.
    const { run } = market;
    await setSignerAuthorization(await run.as(run.providerKey), { providerId: run.providerId, signer: run.gatewaySigner, authorized: false });
    const settled = records().filter((record) => record.settlement !== null);
    expect(settled.length).to.be.greaterThan(0);
    const { page } = await market.openApp({ path: "#/usage", account: buyer.key });
    await page.getByRole("button", { name: "Sign in to the gateway" }).click();
    await page.getByRole("button", { name: "Verify all shown" }).click();
    await page.getByText(new RegExp(`Checked against the chain: ${settled.length} verified, 0 mismatch`)).waitFor();
    market.expectNoConsoleErrors(page);
  });
});
