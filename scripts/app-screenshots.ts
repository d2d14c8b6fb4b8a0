/**
 * Screenshots of the web app's main views, desktop (1280 px) and narrow (390 px), for the README:
 * `npm run app:screenshots` writes docs/screenshots/*.png. It runs the local marketplace as the browser tests
 * do (a fresh build of the app, Chromium, the injected test wallet), gives a buyer some history (a deposit,
 * credits, a key, calls through the openai client, settled), and photographs each page as that buyer and as
 * the demo's provider.
 */
import fs from "node:fs";
import path from "node:path";
import { parseUnits } from "viem";
import { buyCredits, createApiKey, deposit, scheduleModelPrice } from "../client";
import { startAppMarket } from "../test/helpers/browser/app-market";

const OUT = path.resolve(__dirname, "..", "docs", "screenshots");
const SIZES = { desktop: { width: 1280, height: 900 }, narrow: { width: 390, height: 844 } } as const;

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  console.log("starting the local marketplace and Chromium...");
  const market = await startAppMarket();
  try {
    const { run } = market;
    const buyer = await market.newBuyer();
    const client = await run.as(buyer.key, "screenshot buyer");
    await deposit(client, { amount: parseUnits("40", run.token.decimals) });
    await buyCredits(client, { planId: run.planId, count: 150n, payFrom: "balance" });
    const key = await createApiKey(client, { label: "research bot", tags: ["team:research"] });
    for (const [i, model] of run.models.flatMap((m) => [m.name, m.name]).entries()) {
      await run.openai(key.key).chat.completions.create({ model, messages: [{ role: "user", content: `Question ${i}: why settle usage on-chain?` }], max_tokens: 40 + i * 10 });
    }
    await run.settle();
    // A price change announced for tomorrow, so the market shows one.
    const small = run.models[0];
    await scheduleModelPrice(await run.as(run.providerKey, "provider"), { modelId: small.modelId, prices: { ...small.prices, output: (small.prices.output * 9n) / 10n } });
    console.log("history ready: a deposit, credits, a key, 4 settled calls, a scheduled price change");

    for (const [size, viewport] of Object.entries(SIZES)) {
      const shoot = async (name: string, page: import("playwright-core").Page) => {
        const file = path.join(OUT, `${name}-${size}.png`);
        await page.screenshot({ path: file, fullPage: size === "desktop" });
        console.log(`  ${path.relative(process.cwd(), file)}`);
      };
      const { page } = await market.openApp({ account: buyer.key, path: "#/", viewport });
      await page.getByRole("region", { name: "Deposit", exact: true }).getByText("One transaction").waitFor();
      await page.waitForLoadState("networkidle");
      await shoot("funds", page);
      await page.getByRole("link", { name: "Market" }).click();
      await page.getByRole("table", { name: `Scheduled price changes of provider ${run.providerId}` }).waitFor({ timeout: 60_000 });
      await shoot("market", page);
      await page.getByRole("link", { name: "Usage" }).click();
      await page.getByRole("button", { name: "Sign in to the gateway" }).click();
      await page.getByRole("button", { name: "Verify all shown" }).click();
      await page.getByText(/Checked against the chain: \d+ verified/).waitFor({ timeout: 60_000 });
      await shoot("usage", page);
      await page.getByRole("link", { name: "API keys" }).click();
      await page.getByRole("button", { name: "Sign and create the key" }).waitFor();
      await page.waitForLoadState("networkidle");
      await shoot("keys", page);
      await page.close();

      const provider = await market.openApp({ account: run.providerKey, path: "#/provider", viewport });
      await provider.page.getByRole("heading", { name: `Provider #${run.providerId}` }).waitFor({ timeout: 60_000 });
      await provider.page.waitForLoadState("networkidle");
      await shoot("provider", provider.page);
      await provider.page.close();
    }
  } finally {
    await market.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
