/**
 * The browser-test harness: Debian's Chromium (loopback only, errors collected), an injected EIP-1193 /
 * EIP-6963 wallet backed by a local key, and axe-core scans. test/app/browser-harness.test.ts proves each
 * piece on a tiny page; the app's journey tests build on them like this:
 *
 * ```ts
 * import hre from "hardhat";
 * import { startRpcServer } from "../../scripts/lib/rpc-server";
 * import { assertNoPageErrors, assertNoSeriousAxeViolations, injectWallet, launchChromium } from "../helpers/browser";
 *
 * describe("buyer journey", function () {
 *   this.timeout(180_000);
 *   let browser: ChromiumSession; let rpc: RpcServer;
 *   before(async () => {
 *     rpc = await startRpcServer(hre.network.provider);  // the wallet and the app read the chain over HTTP
 *     browser = await launchChromium();                   // throws "install Debian's chromium" when missing
 *   });
 *   afterEach(() => browser.closePages());                   // each test's contexts, not the browser
 *   after(async () => { await browser?.close(); await rpc?.close(); });
 *
 *   it("deposits", async () => {
 *     const page = await browser.newPage({ viewport: { width: 390, height: 844 } }); // own context, own storage
 *     const wallet = await injectWallet(page, { privateKey: buyerKey, rpcUrl: rpc.url }); // before goto
 *     await page.goto(`${gatewayUrl}/app`);
 *     await page.getByRole("button", { name: /connect/i }).click();
 *     await page.getByRole("button", { name: "Tollgate Test Wallet" }).click();
 *     wallet.rejectNext("eth_signTypedData_v4");             // the permit signature is refused once
 *     // ... assert the page's message, then that wallet.requests shows no eth_sendTransaction ...
 *     await wallet.setChain(1);                              // the wrong-network warning
 *     await assertNoSeriousAxeViolations(page, { view: "deposit, narrow" });
 *     assertNoPageErrors(page);
 *   });
 * });
 * ```
 * Two wallets: call `injectWallet` twice on one page with different `info.name`s; the first also becomes
 * `window.ethereum`. `browser.blockedRequests` lists anything the page tried to fetch off loopback.
 */
export {
  assertNoPageErrors,
  CHROMIUM_ARGS,
  CHROMIUM_PATH,
  ChromiumNotFoundError,
  isLoopbackUrl,
  launchChromium,
  pageErrors,
  type ChromiumSession,
  type LaunchChromiumOptions,
  type PageError,
} from "./chromium";
export {
  DEFAULT_WALLET_NAME,
  DEFAULT_WALLET_RDNS,
  injectWallet,
  ProviderErrorCode,
  type InjectedWallet,
  type InjectWalletOptions,
  type ProviderRpcErrorShape,
  type WalletInfo,
  type WalletRequest,
} from "./injected-wallet";
export { assertNoSeriousAxeViolations, formatViolations, runAxe, seriousViolations, type AxeViolation, type RunAxeOptions } from "./axe";
