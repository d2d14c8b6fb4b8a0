/**
 * Subscriptions in the web app, in Chromium against the local marketplace with the injected test wallet: the
 * provider defines a plan on #/provider (a wallet rejection first, which changes nothing); the Market lists it
 * with its period, price, included usage, models, overage rule and "does not roll over", and a Subscribe the
 * contract refuses while the vault balance is short (nothing sent) then accepts; Funds shows the included usage
 * a settled batch drew on-chain and cancels. Every outcome is asserted against the chain from Node; each view
 * is axe-clean and fits 390 px.
 */
import { expect } from "chai";
import type { Locator, Page } from "playwright-core";
import { keccak256, parseUnits, toHex, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { deposit, setSignerAuthorization } from "../../client";
import { tollgateAbi, tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { signedUsageBatch } from "../../server/chain/sign-batch";
import { startAppMarket, type AppMarket } from "../helpers/browser/app-market";
import type { InjectedWallet } from "../helpers/browser";

const NARROW = { width: 390, height: 844 };
const DAY = 86_400;

/** Clicks and waits for a new final outcome in the scope's action status; returns its state and text. */
async function act(scope: Locator, click: () => Promise<void>): Promise<{ status: string; text: string }> {
  const status = scope.locator(".action-status").first();
  const before = await status.innerText().catch(() => "");
  await click();
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
    const state = await status.getAttribute("data-status");
    const text = await status.innerText();
    if ((state === "done" || state === "failed") && text !== before) return { status: state, text };
  }
  throw new Error(`no new outcome in the action status: ${await status.innerText()}`);
}

describe("web app: subscriptions (Provider, Market, Funds)", function () {
  this.timeout(300_000);
  let market: AppMarket;
  let subscriptions: Address;
  const units = (whole: string) => parseUnits(whole, market.run.token.decimals);
  const sent = (wallet: InjectedWallet) => wallet.requests.filter((request) => request.method === "eth_sendTransaction" && !request.error).length;
  const readSubs = <const name extends "subscriptionPlanCount" | "subscriptionPlanOf" | "subscriptionOf" | "includedUsedOf">(functionName: name, args: readonly unknown[] = []) =>
    market.run.client.readContract({ address: subscriptions, abi: tollgateSubscriptionsAbi, functionName, args } as never) as Promise<never>;
  let planId: bigint;
  let buyer: { key: `0x${string}`; address: Address };

  before(async function () {
    market = await startAppMarket();
    subscriptions = await market.run.client.readContract({ address: market.run.deployment.tollgate, abi: tollgateAbi, functionName: "subscriptions" });
  });
  after(async () => market?.close());

  it("the provider defines a plan (after a rejection in the wallet that changes nothing) and the page lists it (390 px)", async function () {
    const { page, wallet } = await market.openApp({ path: "#/provider", viewport: NARROW, account: market.run.providerKey });
    const card = page.getByRole("region", { name: "Subscription plans", exact: true });
    await card.getByText("No subscription plan yet.").waitFor({ timeout: 60_000 });
    const form = page.getByRole("form", { name: "Define a subscription plan" });
    await form.getByLabel("Period (days)").fill("1");
    await form.getByLabel("Price per period").fill("2");
    await form.getByLabel("Included usage per period").fill("0.05");
    // No model chosen: said at the field, nothing asked of the wallet.
    await form.getByRole("button", { name: "Define subscription plan" }).click();
    await form.getByText("Choose at least one model the plan covers.").waitFor();
    expect(sent(wallet)).to.equal(0);
    const [small] = market.run.models;
    await form.getByLabel(small.name, { exact: true }).check();
    await form.getByLabel("Overage").selectOption("refuse");

    wallet.rejectNext("eth_sendTransaction");
    const rejected = await act(form, () => form.getByRole("button", { name: "Define subscription plan" }).click());
    expect(rejected.status).to.equal("failed");
    expect(rejected.text).to.contain("You rejected the request in your wallet.");
    expect(await readSubs("subscriptionPlanCount")).to.equal(0n);
    await market.expectNoA11yViolations(page, "provider: subscription plan refused in the wallet (390 px)");

    const defined = await act(form, () => form.getByRole("button", { name: "Define subscription plan" }).click());
    expect(defined.text, defined.text).to.contain("Defined subscription plan #1.");
    planId = 1n;
    const plan = (await readSubs("subscriptionPlanOf", [planId])) as { providerId: number; period: number; price: bigint; includedValue: bigint; overage: number };
    expect([plan.providerId, Number(plan.period), plan.price, plan.includedValue, plan.overage]).to.deep.equal([market.run.providerId, DAY, units("2"), units("0.05"), 1]);
    const row = card.getByRole("row").filter({ hasText: "#1" });
    await row.waitFor();
    const text = await row.innerText();
    for (const part of ["1 day", "2 tUSD", "0.05 tUSD", small.name, "Refused"]) expect(text).to.contain(part);
    await card.getByText("Unused included usage does not roll over").first().waitFor();
    await market.expectNoA11yViolations(page, "provider: subscription plans (390 px)");
    await market.expectFitsWidth(page);
    market.expectNoConsoleErrors(page);
  });

  it("the Market lists the plan and the rule, refuses Subscribe while the balance is short (nothing sent), then subscribes (390 px)", async function () {
    const { account, key } = await market.newBuyer();
    buyer = { key, address: account.address };
    const { page, wallet } = await market.openApp({ path: "#/market", viewport: NARROW, account: key });
    const table = page.getByRole("table", { name: `Subscription plans of provider ${market.run.providerId}` });
    const row = table.getByRole("row").filter({ hasText: "#1" });
    await row.waitFor({ timeout: 60_000 });
    const text = await row.innerText();
    for (const part of ["1 day", "2 tUSD", "0.05 tUSD", market.run.models[0].name, "Refused"]) expect(text).to.contain(part);
    await page.getByText("Unused included usage does not roll over").first().waitFor();

    // No vault balance yet: the contract's named error, decoded before signing.
    const subscribe = page.getByRole("button", { name: "Subscribe to plan 1" });
    await subscribe.click();
    const refusal = page.locator('[role="alert"][data-revert="SubscriptionsInsufficientBalance"]');
    await refusal.waitFor({ timeout: 30_000 });
    expect(await refusal.innerText()).to.contain("less than the period price 2 tUSD");
    expect(sent(wallet)).to.equal(0);
    expect(((await readSubs("subscriptionOf", [buyer.address, market.run.providerId])) as { id: bigint }).id).to.equal(0n);
    await market.expectNoA11yViolations(page, "market: subscribe refused (390 px)");

    await deposit(await market.run.as(key), { amount: units("10") });
    await subscribe.click();
    await page.getByText(/^Subscribed to plan 1: paid 2 tUSD/).waitFor({ timeout: 30_000 });
    const sub = (await readSubs("subscriptionOf", [buyer.address, market.run.providerId])) as { id: bigint; planId: number; paidPeriods: number; active: boolean };
    expect([sub.planId, sub.paidPeriods, sub.active]).to.deep.equal([1, 1, true]);
    const account_ = await market.run.client.readContract({ address: market.run.deployment.tollgate, abi: tollgateAbi, functionName: "accountOf", args: [buyer.address] });
    expect(account_.balance).to.equal(units("8"));
    await market.expectFitsWidth(page);
    market.expectNoConsoleErrors(page);
  });

  it("Funds shows the included usage a settled batch drew on-chain and what is left, and cancels at the period's end (390 px)", async function () {
    // A batch signed by a gateway key the provider authorizes now, settled from Node: real signature, real draw.
    const { run } = market;
    const gateway = privateKeyToAccount(generatePrivateKey());
    await setSignerAuthorization(await run.as(run.providerKey), { providerId: run.providerId, signer: gateway.address, authorized: true });
    const sub = (await readSubs("subscriptionOf", [buyer.address, run.providerId])) as { id: bigint; startedAt: number };
    const [small] = run.models;
    const record = { sequence: 0n, buyer: buyer.address, modelId: small.modelId, priceEpoch: 0, inputTokens: 100_000, cachedInputTokens: 0, outputTokens: 10_000, servedAt: Number(sub.startedAt) + 1, receiptHash: keccak256(toHex("subscribed call")) };
    const epoch = await run.client.readContract({ address: run.deployment.tollgate, abi: tollgateAbi, functionName: "modelOf", args: [small.modelId] });
    record.priceEpoch = Number(epoch.epochCount) - 1;
    const { batch, signature } = await signedUsageBatch(gateway, { chainId: run.chain.id, address: run.deployment.tollgate }, [record]);
    const settler = await run.as(generatePrivateKey());
    const hash = await settler.wallet!.writeContract({ address: run.deployment.tollgate, abi: tollgateAbi, functionName: "settleBatch", args: [batch, signature], chain: run.chain, account: settler.wallet!.account! });
    expect((await run.client.waitForTransactionReceipt({ hash })).status).to.equal("success");
    const used = (await readSubs("includedUsedOf", [sub.id, 0n])) as bigint;
    const cost = (100_000n * small.prices.input + 10_000n * small.prices.output + 999_999n) / 1_000_000n;
    expect(used).to.equal(cost < units("0.05") ? cost : units("0.05"));

    const { page } = await market.openApp({ viewport: NARROW, account: buyer.key });
    const card = page.getByRole("region", { name: `Subscription to provider ${run.providerId}` });
    const figure = card.getByTestId("included-used");
    await figure.waitFor({ timeout: 60_000 });
    expect(await figure.innerText()).to.contain(`${run.amount(used)} of 0.05 tUSD settled on-chain; ${run.amount(units("0.05") - used)} left`);
    expect(await card.innerText()).to.contain("Renews");
    await page.getByText("Unused included usage does not roll over").first().waitFor();
    await market.expectNoA11yViolations(page, "funds: subscription (390 px)");
    await market.expectFitsWidth(page);

    const cancelled = await act(card, () => card.getByRole("button", { name: "Cancel subscription" }).click());
    expect(cancelled.status, cancelled.text).to.equal("done");
    expect(cancelled.text).to.contain("Cancelled: covered until");
    const after = (await readSubs("subscriptionOf", [buyer.address, run.providerId])) as { cancelled: boolean; active: boolean };
    expect([after.cancelled, after.active]).to.deep.equal([true, true]);
    await card.locator("dd", { hasText: "Cancelled: covered until" }).waitFor({ timeout: 30_000 });
    market.expectNoConsoleErrors(page);
  });
});
