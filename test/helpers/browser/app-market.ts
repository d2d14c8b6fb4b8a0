/**
 * The web app's browser tests run against the local marketplace exactly as `npm run demo -- --serve` serves
 * it: Hardhat's chain over HTTP JSON-RPC, the gateway serving the built app at /app/, the oracle settling,
 * the simulated upstream. Each test file starts its own (about 7 s) and closes it in `after`, because other
 * suites snapshot and revert the shared in-process chain underneath anything left running.
 *
 *   let market: AppMarket;
 *   before(async function () { this.timeout(120_000); market = await startAppMarket(); });
 *   after(async () => market?.close());
 *   it("...", async () => {
 *     const { page, wallet, account } = await market.openApp({ path: "#/keys" });
 *     ...
 *   });
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { parseEther, parseUnits, type Hex, type PrivateKeyAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { BrowserContextOptions, Page } from "playwright-core";
import { mintTestTokens } from "../../../client";
import { runMarketplace, type MarketplaceOptions, type MarketplaceRun } from "../../../scripts/marketplace";
import { assertNoPageErrors, assertNoSeriousAxeViolations, DEFAULT_WALLET_NAME, injectWallet, launchChromium, pageErrors, type ChromiumSession, type InjectedWallet, type PageError } from "./index";
import { buildWebApp } from "./build-web-app";

export interface OpenAppOptions {
  /** Who the wallet holds (default: a new buyer with ETH and 1,000 test tokens). */
  account?: PrivateKeyAccount | Hex;
  /** Hash route, e.g. "#/keys" (default the Funds page). */
  path?: string;
  /** Click "Connect wallet" and pick the test wallet (default true). */
  connect?: boolean;
  viewport?: { width: number; height: number };
  /** More Playwright context options (e.g. permissions for the clipboard). */
  context?: BrowserContextOptions;
}

export interface OpenedApp {
  page: Page;
  /** The page's console errors and uncaught exceptions so far (a live array: it grows as they happen). */
  consoleErrors: PageError[];
  wallet: InjectedWallet;
  account: PrivateKeyAccount;
  key: Hex;
}

export interface AppMarket {
  run: MarketplaceRun;
  browser: ChromiumSession;
  /** `<gateway>/app/` */
  appUrl: string;
  /** A new account with gas money and `tokens` of the payment token (default 1,000 whole tokens). */
  newBuyer(tokens?: bigint): Promise<{ account: PrivateKeyAccount; key: Hex }>;
  openApp(options?: OpenAppOptions): Promise<OpenedApp>;
  /** No serious or critical axe violation on the page as it is now. */
  expectNoA11yViolations(page: Page, view: string): Promise<void>;
  /** The page does not scroll sideways (390 px: the narrowest phone we support). */
  expectFitsWidth(page: Page): Promise<void>;
  /** No console error and no uncaught exception so far, except those matching `allow`. */
  expectNoConsoleErrors(page: Page, allow?: RegExp[]): void;
  close(): Promise<void>;
}

export async function startAppMarket(options: Pick<MarketplaceOptions, "calls" | "upstream" | "wrapUpstream"> = {}): Promise<AppMarket> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-app-"));
  const appDir = await buildWebApp();
  const run = await runMarketplace({
    calls: options.calls ?? 2,
    rpcPort: 0,
    gatewayPort: 0,
    dataDir,
    deploymentFile: path.join(dataDir, "deployment.json"),
    log: () => undefined,
    appDir,
    upstream: options.upstream,
    wrapUpstream: options.wrapUpstream,
  });
  let browser: ChromiumSession;
  try {
    browser = await launchChromium();
  } catch (error) {
    await run.close();
    throw error;
  }
  const appUrl = `${run.gatewayUrl}/app/`;

  const newBuyer = async (tokens = parseUnits("1000", run.token.decimals)) => {
    const key = generatePrivateKey();
    const account = privateKeyToAccount(key);
    const client = await run.as(key, `buyer ${account.address.slice(0, 8)}`);
    if (tokens > 0n) await mintTestTokens(client, { amount: tokens });
    return { account, key };
  };

  return {
    run,
    browser,
    appUrl,
    newBuyer,
    async openApp(openOptions = {}) {
      let key: Hex;
      if (openOptions.account === undefined) key = (await newBuyer()).key;
      else if (typeof openOptions.account === "string") key = openOptions.account;
      else throw new Error("openApp: pass the account's private key (Hex): the injected wallet signs with it");
      const account = privateKeyToAccount(key);
      const page = await browser.newPage({ viewport: openOptions.viewport ?? { width: 1280, height: 900 }, ...openOptions.context });
      const wallet = await injectWallet(page, { privateKey: key, rpcUrl: run.rpcUrl });
      await page.goto(`${appUrl}${openOptions.path ?? "#/"}`);
      if (openOptions.connect ?? true) {
        await page.getByRole("button", { name: "Connect wallet" }).click();
        await page.getByRole("button", { name: DEFAULT_WALLET_NAME }).click();
        await page.getByRole("button", { name: "Disconnect" }).waitFor();
      }
      return { page, consoleErrors: pageErrors(page), wallet, account, key };
    },
    async expectNoA11yViolations(page, view) {
      await assertNoSeriousAxeViolations(page, { view });
    },
    async expectFitsWidth(page) {
      const { scrollWidth, clientWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }));
      expect(scrollWidth, "the page scrolls sideways").to.be.at.most(clientWidth);
    },
    expectNoConsoleErrors(page, allow = []) {
      assertNoPageErrors(page, allow);
    },
    async close() {
      await browser.close().catch(() => undefined);
      await run.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Gas money for accounts the tests create outside `newBuyer` (e.g. a second provider). */
export const GAS_MONEY = parseEther("10");
