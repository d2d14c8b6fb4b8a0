/**
 * The browser-test harness on its own, before any app exists: a tiny dapp page served from a loopback port
 * discovers two injected wallets through EIP-6963 and drives them as a dapp would, against Hardhat's chain
 * served over HTTP. viem runs in Node over the page's provider (Node -> page -> wallet -> Node), so the
 * wallet is checked against viem's own reading of EIP-1193: its transaction path and its error mapping.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import hre, { ethers } from "hardhat";
import { expect } from "chai";
import type { Page } from "playwright-core";
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  erc20Abi,
  http as httpTransport,
  numberToHex,
  parseAbi,
  recoverTypedDataAddress,
  UserRejectedRequestError,
  verifyMessage,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
} from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import {
  assertNoPageErrors,
  assertNoSeriousAxeViolations,
  ChromiumNotFoundError,
  DEFAULT_WALLET_NAME,
  DEFAULT_WALLET_RDNS,
  injectWallet,
  launchChromium,
  pageErrors,
  ProviderErrorCode,
  runAxe,
  type ChromiumSession,
  type InjectedWallet,
} from "../helpers/browser";
import { permitTypes } from "../../server/chain/permit";

const transferWithErrors = parseAbi([
  "function transfer(address to, uint256 amount) returns (bool)",
  "error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)",
]);

const SECOND_WALLET = "Second Test Wallet";
const OTHER_CHAIN = 11_155_111;

const DAPP = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Harness dapp</title><link rel="icon" href="data:,"></head>
<body><main><h1>Harness dapp</h1></main>
<script>
  window.discovered = [];
  window.walletEvents = [];
  window.addEventListener("eip6963:announceProvider", (event) => {
    const { info, provider } = event.detail;
    if (window.discovered.some((known) => known.info.uuid === info.uuid)) return;
    window.discovered.push({ info, provider });
    for (const name of ["accountsChanged", "chainChanged", "connect", "disconnect"]) {
      provider.on(name, (payload) => window.walletEvents.push({ wallet: info.name, name, payload: payload instanceof Error ? { code: payload.code } : payload }));
    }
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
</script></body></html>`;

const CLEAN = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clean form</title><link rel="icon" href="data:,"></head>
<body><main><h1>Deposit</h1><label for="amount">Amount</label><input id="amount" type="text"><button type="button">Deposit</button></main></body></html>`;

/** The clean page with the label removed: axe's "label" rule (critical) must catch it. */
const SEEDED = CLEAN.replace("<title>Clean form</title>", "<title>Seeded form</title>").replace('<label for="amount">Amount</label>', "");

/** The app discovers wallets with mipd; its ES module build has no dependencies, so the page imports it as is. */
const MIPD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mipd discovery</title><link rel="icon" href="data:,"></head>
<body><main><h1>mipd discovery</h1></main>
<script type="module">
  import { createStore } from "/mipd/index.js";
  const store = createStore();
  window.mipdProviders = () => store.getProviders().map((detail) => ({ ...detail.info, hasRequest: typeof detail.provider.request === "function" }));
</script></body></html>`;
const MIPD_DIR = path.dirname(require.resolve("mipd/package.json")) + "/dist/esm";

interface Site {
  url: string;
  close(): Promise<void>;
}

async function startSite(): Promise<Site> {
  const pages: Record<string, string> = { "/dapp": DAPP, "/clean": CLEAN, "/seeded": SEEDED, "/mipd": MIPD };
  const server = http.createServer((req, res) => {
    const body = pages[req.url ?? ""];
    const module = /^\/mipd\/([a-z]+\.js)$/.exec(req.url ?? "");
    if (module && fs.existsSync(path.join(MIPD_DIR, module[1]))) {
      res.writeHead(200, { "content-type": "text/javascript" }).end(fs.readFileSync(path.join(MIPD_DIR, module[1])));
    } else if (req.url === "/ping") {
      res.writeHead(200, { "content-type": "text/plain", "access-control-allow-origin": "*" }).end("pong");
    } else if (body) {
      // The form pages carry a CSP as strict as the app's: axe must run without an inline <script>.
      const csp = body === CLEAN || body === SEEDED ? { "content-security-policy": "script-src 'self'" } : {};
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", ...csp }).end(body);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type Reply = { result: unknown } | { error: { code: number; message: string; data?: unknown } };

/** What the page's script gets from the named wallet's provider, errors as their EIP-1193 fields. */
function requestFrom(page: Page, wallet: string, method: string, params?: unknown): Promise<Reply> {
  return page.evaluate(
    async ({ wallet, method, params }) => {
      const found = (window as any).discovered.find((known: any) => known.info.name === wallet);
      try {
        return { result: await found.provider.request({ method, params }) };
      } catch (error: any) {
        return { error: { code: error.code, message: error.message, data: error.data } };
      }
    },
    { wallet, method, params },
  );
}

async function resultFrom(page: Page, wallet: string, method: string, params?: unknown): Promise<unknown> {
  const reply = await requestFrom(page, wallet, method, params);
  if ("error" in reply) throw new Error(`${method} failed: ${reply.error.code} ${reply.error.message}`);
  return reply.result;
}

async function errorFrom(page: Page, wallet: string, method: string, params?: unknown) {
  const reply = await requestFrom(page, wallet, method, params);
  if (!("error" in reply)) throw new Error(`${method} was expected to fail, returned ${JSON.stringify(reply.result)}`);
  return reply.error;
}

/** A viem EIP-1193 transport whose requests are made by the page's script, as a dapp's viem client would. */
function pageTransport(page: Page, wallet: string) {
  return custom({
    async request({ method, params }) {
      const reply = await requestFrom(page, wallet, method, params);
      if ("error" in reply) throw Object.assign(new Error(reply.error.message), reply.error);
      return reply.result;
    },
  });
}

const walletEvents = (page: Page) =>
  page.evaluate(() => (window as any).walletEvents as { wallet: string; name: string; payload: unknown }[]);

describe("browser test harness (Chromium, injected wallet, axe)", function () {
  this.timeout(180_000);

  let browser: ChromiumSession;
  let rpc: RpcServer;
  let site: Site;
  let chain: Chain;
  let reader: PublicClient;
  let token: Address;
  const firstKey = generatePrivateKey();
  const secondKey = generatePrivateKey();
  const first = privateKeyToAddress(firstKey);
  const second = privateKeyToAddress(secondKey);
  const recipient = privateKeyToAddress(generatePrivateKey());

  before(async function () {
    rpc = await startRpcServer(hre.network.provider);
    site = await startSite();
    browser = await launchChromium();
    const chainId = Number(await hre.network.provider.request({ method: "eth_chainId" }));
    chain = defineChain({ id: chainId, name: "hardhat", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [rpc.url] } } });
    reader = createPublicClient({ chain, transport: httpTransport(rpc.url) }) as PublicClient;
    for (const address of [first, second]) {
      await hre.network.provider.request({ method: "hardhat_setBalance", params: [address, numberToHex(10n ** 20n)] });
    }
    const testUsd = await ethers.deployContract("TestUSD");
    token = (await testUsd.getAddress()) as Address;
    await (await testUsd.mint(first, 1_000_000_000n)).wait();
  });

  afterEach(async function () {
    await browser?.closePages();
  });

  after(async function () {
    await browser?.close();
    await site?.close();
    await rpc?.close();
  });

  /** A fresh page with both wallets injected, at the dapp, once it has heard both announcements. */
  async function openDapp(options: { connected?: boolean } = {}): Promise<{ page: Page; wallet: InjectedWallet; other: InjectedWallet }> {
    const page = await browser.newPage();
    const wallet = await injectWallet(page, { privateKey: firstKey, rpcUrl: rpc.url, connected: options.connected });
    const other = await injectWallet(page, { privateKey: secondKey, rpcUrl: rpc.url, info: { name: SECOND_WALLET, rdns: "dev.tollgate.second" } });
    await page.goto(`${site.url}/dapp`);
    await page.waitForFunction(() => (window as any).walletEvents.filter((event: any) => event.name === "connect").length === 2);
    return { page, wallet, other };
  }

  it("announces both wallets through EIP-6963, the first also as window.ethereum, each emitting connect", async function () {
    const { page, wallet, other } = await openDapp();
    const discovered = await page.evaluate(() =>
      (window as any).discovered.map((known: any) => ({ ...known.info, isWindowEthereum: known.provider === (window as any).ethereum })),
    );
    expect(discovered).to.deep.equal([
      { ...wallet.info, isWindowEthereum: true },
      { ...other.info, isWindowEthereum: false },
    ]);
    expect(wallet.info.name).to.equal(DEFAULT_WALLET_NAME);
    expect(wallet.info.rdns).to.equal(DEFAULT_WALLET_RDNS);
    expect(wallet.info.icon).to.match(/^data:image\/svg\+xml;base64,/);
    expect(wallet.info.uuid).to.not.equal(other.info.uuid);
    const connects = (await walletEvents(page)).filter((event) => event.name === "connect");
    expect(connects).to.deep.equal([
      { wallet: DEFAULT_WALLET_NAME, name: "connect", payload: { chainId: numberToHex(chain.id) } },
      { wallet: SECOND_WALLET, name: "connect", payload: { chainId: numberToHex(chain.id) } },
    ]);
    // The wallets' own lookups are not the page's requests.
    expect(wallet.requests).to.deep.equal([]);
    assertNoPageErrors(page);
  });

  it("mipd, the app's discovery library, finds both wallets", async function () {
    const page = await browser.newPage();
    const wallet = await injectWallet(page, { privateKey: firstKey, rpcUrl: rpc.url });
    const other = await injectWallet(page, { privateKey: secondKey, rpcUrl: rpc.url, info: { name: SECOND_WALLET, rdns: "dev.tollgate.second" } });
    await page.goto(`${site.url}/mipd`);
    await page.waitForFunction(() => typeof (window as any).mipdProviders === "function");
    expect(await page.evaluate(() => (window as any).mipdProviders())).to.deep.equal([
      { ...wallet.info, hasRequest: true },
      { ...other.info, hasRequest: true },
    ]);
    assertNoPageErrors(page);
  });

  it("connects on eth_requestAccounts: accounts before and after, accountsChanged, chain id and net_version", async function () {
    const { page, wallet } = await openDapp();
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "eth_accounts")).to.deep.equal([]);
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "eth_requestAccounts")).to.deep.equal([first]);
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "eth_accounts")).to.deep.equal([first]);
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "eth_chainId")).to.equal(numberToHex(chain.id));
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "net_version")).to.equal(String(chain.id));
    expect(await resultFrom(page, SECOND_WALLET, "eth_accounts")).to.deep.equal([], "connecting one wallet leaves the other alone");
    const accountEvents = (await walletEvents(page)).filter((event) => event.name === "accountsChanged");
    expect(accountEvents).to.deep.equal([{ wallet: DEFAULT_WALLET_NAME, name: "accountsChanged", payload: [first] }]);
    expect(wallet.requests.map((request) => request.method)).to.deep.equal(["eth_accounts", "eth_requestAccounts", "eth_accounts", "eth_chainId", "net_version"]);
    assertNoPageErrors(page);
  });

  it("signs typed data (v4) and personal messages that viem attributes to the account", async function () {
    const { page } = await openDapp({ connected: true });
    const typedData = {
      domain: { name: "Tollgate Test USD", version: "1", chainId: chain.id, verifyingContract: token },
      types: {
        EIP712Domain: [
          { name: "name", type: "string" },
          { name: "version", type: "string" },
          { name: "chainId", type: "uint256" },
          { name: "verifyingContract", type: "address" },
        ],
        ...permitTypes,
      },
      primaryType: "Permit",
      // As a dapp's viem sends it: bigints as decimal strings inside the JSON.
      message: { owner: first, spender: recipient, value: "250000000", nonce: "0", deadline: "99999999999" },
    } as const;
    const signature = (await resultFrom(page, DEFAULT_WALLET_NAME, "eth_signTypedData_v4", [first, JSON.stringify(typedData)])) as Hex;
    const { EIP712Domain: _, ...types } = typedData.types;
    const signer = await recoverTypedDataAddress({
      domain: typedData.domain,
      types,
      primaryType: "Permit",
      message: { owner: first, spender: recipient, value: 250_000_000n, nonce: 0n, deadline: 99_999_999_999n },
      signature,
    });
    expect(signer).to.equal(first);

    const message = "Sign in to Tollgate";
    const personal = (await resultFrom(page, DEFAULT_WALLET_NAME, "personal_sign", [
      `0x${Buffer.from(message).toString("hex")}`,
      first,
    ])) as Hex;
    expect(await verifyMessage({ address: first, message, signature: personal })).to.equal(true);

    // Typed data for another chain is refused, as MetaMask does, and an account not granted is unauthorized.
    const wrongChain = await errorFrom(page, DEFAULT_WALLET_NAME, "eth_signTypedData_v4", [
      first,
      JSON.stringify({ ...typedData, domain: { ...typedData.domain, chainId: OTHER_CHAIN } }),
    ]);
    expect(wrongChain.code).to.equal(ProviderErrorCode.invalidParams);
    const notGranted = await errorFrom(page, SECOND_WALLET, "personal_sign", ["0x01", second]);
    expect(notGranted.code).to.equal(ProviderErrorCode.unauthorized);
  });

  it("sends a real token transfer that viem writes through the page: mined, balances moved, nonce advanced", async function () {
    const { page, wallet } = await openDapp();
    const dapp = createWalletClient({ chain, transport: pageTransport(page, DEFAULT_WALLET_NAME) });
    const [account] = await dapp.requestAddresses();
    expect(account).to.equal(first);
    const nonceBefore = await reader.getTransactionCount({ address: first });
    const hash = await dapp.writeContract({ account, address: token, abi: erc20Abi, functionName: "transfer", args: [recipient, 123_456n] });
    const receipt = await reader.waitForTransactionReceipt({ hash });
    expect(receipt.status).to.equal("success");
    expect(receipt.from).to.equal(first.toLowerCase());
    expect(await reader.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [recipient] })).to.equal(123_456n);
    expect(await reader.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [first] })).to.equal(1_000_000_000n - 123_456n);
    expect(await reader.getTransactionCount({ address: first })).to.equal(nonceBefore + 1);
    expect(wallet.requests.map((request) => request.method)).to.include("eth_sendTransaction");
    // Reads the dapp makes through the wallet reach the node.
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "eth_getTransactionReceipt", [hash])).to.have.property("transactionHash", hash);
    assertNoPageErrors(page);
  });

  it("a reverting transaction reaches viem as the contract's decoded custom error, and nothing is sent", async function () {
    const { page, wallet } = await openDapp({ connected: true });
    const dapp = createWalletClient({ chain, account: first, transport: pageTransport(page, DEFAULT_WALLET_NAME) });
    const balance = await reader.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [first] });
    const nonceBefore = await reader.getTransactionCount({ address: first });
    const failure = await dapp
      .writeContract({ address: token, abi: transferWithErrors, functionName: "transfer", args: [recipient, balance + 1n] })
      .catch((error: unknown) => error);
    const reverted = (failure as BaseError).walk((cause) => cause instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError;
    expect(reverted, String(failure)).to.be.instanceOf(ContractFunctionRevertedError);
    expect(reverted.data?.errorName).to.equal("ERC20InsufficientBalance");
    expect(reverted.data?.args).to.deep.equal([first, balance, balance + 1n]);
    expect(await reader.getTransactionCount({ address: first })).to.equal(nonceBefore);
    // The node's error crossed the wallet unchanged: its revert data is what viem decoded.
    const failed = wallet.requests.find((request) => request.error);
    expect(failed?.error?.data).to.have.property("data").that.matches(/^0xe450d38c/);
  });

  it("rejectNext: the transaction fails with 4001 (viem's UserRejectedRequestError) and nothing is sent", async function () {
    const { page, wallet } = await openDapp({ connected: true });
    const dapp = createWalletClient({ chain, account: first, transport: pageTransport(page, DEFAULT_WALLET_NAME) });
    const nonceBefore = await reader.getTransactionCount({ address: first });
    const balanceBefore = await reader.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [recipient] });

    wallet.rejectNext("eth_sendTransaction");
    const failure = await dapp.writeContract({ address: token, abi: erc20Abi, functionName: "transfer", args: [recipient, 1n] }).catch((error: unknown) => error);
    expect(failure).to.be.instanceOf(BaseError);
    expect((failure as BaseError).walk((cause) => cause instanceof UserRejectedRequestError)).to.be.instanceOf(UserRejectedRequestError);
    const rejected = wallet.requests.filter((request) => request.method === "eth_sendTransaction");
    expect(rejected).to.have.length(1);
    expect(rejected[0].error).to.deep.equal({ code: ProviderErrorCode.userRejected, message: "User rejected the request." });
    expect(await reader.getTransactionCount({ address: first })).to.equal(nonceBefore);
    expect(await reader.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [recipient] })).to.equal(balanceBefore);

    // One rejection only: the same request then goes through; a signature rejection without a method name too.
    await reader.waitForTransactionReceipt({ hash: await dapp.writeContract({ address: token, abi: erc20Abi, functionName: "transfer", args: [recipient, 1n] }) });
    expect(await reader.getTransactionCount({ address: first })).to.equal(nonceBefore + 1);
    wallet.rejectNext();
    expect((await errorFrom(page, DEFAULT_WALLET_NAME, "personal_sign", ["0x01", first])).code).to.equal(ProviderErrorCode.userRejected);
    // A site not connected cannot send from the wallet.
    const unauthorized = await errorFrom(page, SECOND_WALLET, "eth_sendTransaction", [{ from: second, to: recipient, value: "0x1" }]);
    expect(unauthorized.code).to.equal(ProviderErrorCode.unauthorized);
  });

  it("setChain reports another chain and fires chainChanged; switching back works; unknown chains get 4902", async function () {
    const { page, wallet } = await openDapp({ connected: true });
    await wallet.setChain(OTHER_CHAIN);
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "eth_chainId")).to.equal(numberToHex(OTHER_CHAIN));
    // Nothing can be sent or read on a chain the wallet has no node for.
    const noNode = await errorFrom(page, DEFAULT_WALLET_NAME, "eth_sendTransaction", [{ from: first, to: recipient, value: "0x1" }]);
    expect(noNode.code).to.equal(ProviderErrorCode.chainDisconnected);
    expect((await errorFrom(page, DEFAULT_WALLET_NAME, "wallet_switchEthereumChain", [{ chainId: "0x999999" }])).code).to.equal(
      ProviderErrorCode.unrecognizedChain,
    );
    // What viem's switchChain sends.
    const dapp = createWalletClient({ chain, transport: pageTransport(page, DEFAULT_WALLET_NAME) });
    await dapp.switchChain({ id: chain.id });
    expect(await dapp.getChainId()).to.equal(chain.id);
    const chainEvents = (await walletEvents(page)).filter((event) => event.name === "chainChanged");
    expect(chainEvents.map((event) => event.payload)).to.deep.equal([numberToHex(OTHER_CHAIN), numberToHex(chain.id)]);
    // wallet_addEthereumChain is accepted and switches, as MetaMask does after approval.
    await resultFrom(page, DEFAULT_WALLET_NAME, "wallet_addEthereumChain", [{ chainId: "0x999999", chainName: "Elsewhere", rpcUrls: ["http://127.0.0.1:1"] }]);
    expect(wallet.chainId).to.equal(0x999999);
  });

  it("switchAccount emits accountsChanged; unsupported wallet methods get 4200; disconnect and reconnect emit events", async function () {
    const { page, wallet } = await openDapp({ connected: true });
    const nextKey = generatePrivateKey();
    await wallet.switchAccount(nextKey);
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "eth_accounts")).to.deep.equal([privateKeyToAddress(nextKey)]);
    expect((await errorFrom(page, DEFAULT_WALLET_NAME, "wallet_getCallsStatus", ["0x01"])).code).to.equal(ProviderErrorCode.unsupportedMethod);
    expect((await errorFrom(page, DEFAULT_WALLET_NAME, "eth_sign", [first, "0x01"])).code).to.equal(ProviderErrorCode.unsupportedMethod);
    await wallet.disconnect();
    expect(await page.evaluate(() => (window as any).ethereum.isConnected())).to.equal(false);
    expect((await errorFrom(page, DEFAULT_WALLET_NAME, "eth_blockNumber")).code).to.equal(ProviderErrorCode.disconnected);
    await wallet.reconnect();
    expect(await resultFrom(page, DEFAULT_WALLET_NAME, "eth_blockNumber")).to.match(/^0x[0-9a-f]+$/);
    const events = (await walletEvents(page)).filter((event) => event.wallet === DEFAULT_WALLET_NAME && event.name !== "connect").map(({ name, payload }) => ({ name, payload }));
    expect(events).to.deep.equal([
      { name: "accountsChanged", payload: [privateKeyToAddress(nextKey)] },
      { name: "disconnect", payload: { code: ProviderErrorCode.disconnected } },
    ]);
    const connects = (await walletEvents(page)).filter((event) => event.wallet === DEFAULT_WALLET_NAME && event.name === "connect");
    expect(connects).to.have.length(2, "one at load, one on reconnect");
  });

  it("axe, under a strict CSP, finds the seeded violation (an input without a label), naming it and its element, and none on the clean page", async function () {
    const page = await browser.newPage();
    await page.goto(`${site.url}/seeded`);
    const violations = await runAxe(page);
    const label = violations.find((violation) => violation.id === "label");
    expect(label, JSON.stringify(violations.map((violation) => violation.id))).to.not.equal(undefined);
    expect(label!.impact).to.equal("critical");
    expect(label!.nodes.map((node) => node.target)).to.deep.equal([["#amount"]]);
    const failure = await assertNoSeriousAxeViolations(page, { view: "seeded form" }).catch((error: Error) => error);
    expect(failure).to.be.instanceOf(Error);
    expect((failure as Error).message).to.contain("on seeded form").and.contain("label (critical)").and.contain(label!.help).and.contain('["#amount"]');

    await page.goto(`${site.url}/clean`);
    expect(await runAxe(page)).to.deep.equal([]);
    await assertNoSeriousAxeViolations(page);
    assertNoPageErrors(page);
  });

  it("blocks every request off loopback (fetch and WebSocket) and lets loopback through", async function () {
    const page = await browser.newPage();
    await page.goto(`${site.url}/clean`);
    const outcome = await page.evaluate(async (loopback) => {
      const offsite = await fetch("http://example.com/tracker.js").then(
        () => "reached",
        (error: Error) => `failed: ${error.message}`,
      );
      const local = await fetch(loopback).then((response) => response.text());
      const byName = await fetch(loopback.replace("127.0.0.1", "localhost")).then((response) => response.text());
      const socket = await new Promise<string>((resolve) => {
        const ws = new WebSocket("wss://example.com/socket");
        ws.onopen = () => resolve("open");
        ws.onclose = () => resolve("closed");
      });
      return { offsite, local, byName, socket };
    }, `${site.url}/ping`);
    expect(outcome).to.deep.equal({ offsite: "failed: Failed to fetch", local: "pong", byName: "pong", socket: "closed" });
    expect(browser.blockedRequests).to.include("http://example.com/tracker.js");
    expect(browser.blockedRequests).to.include("wss://example.com/socket");
    expect(browser.blockedRequests.filter((url) => url.startsWith(site.url))).to.deep.equal([]);
  });

  it("collects console errors and uncaught exceptions per page, and assertNoPageErrors lists them", async function () {
    const page = await browser.newPage();
    const quiet = await browser.newPage();
    await page.goto(`${site.url}/clean`);
    await quiet.goto(`${site.url}/clean`);
    // The collector listens from newPage() on, so once these events are seen it has recorded them.
    const seen = Promise.all([page.waitForEvent("console", (message) => message.type() === "error"), page.waitForEvent("pageerror")]);
    await page.evaluate(() => {
      console.error("balance failed to load");
      console.log("not an error");
      setTimeout(() => {
        throw new RangeError("amount out of range");
      });
    });
    await seen;
    expect(pageErrors(page).map(({ kind, text }) => ({ kind, text }))).to.deep.equal([
      { kind: "console", text: "balance failed to load" },
      { kind: "pageerror", text: "RangeError: amount out of range" },
    ]);
    expect(() => assertNoPageErrors(page)).to.throw(/2 console error\(s\)[\s\S]*balance failed to load[\s\S]*RangeError: amount out of range/);
    expect(() => assertNoPageErrors(page, [/balance failed/, /out of range/])).to.not.throw();
    expect(pageErrors(quiet)).to.deep.equal([]);
  });

  it("launchChromium says how to install a missing Chromium; closePages() keeps the browser; close() removes its profile directory", async function () {
    const missing = await launchChromium({ executablePath: "/nonexistent/chromium" }).catch((error: unknown) => error);
    expect(missing).to.be.instanceOf(ChromiumNotFoundError);
    expect((missing as Error).message).to.contain("apt-get install chromium");

    const session = await launchChromium();
    expect(fs.existsSync(session.userDataDir)).to.equal(true);
    const page = await session.newPage();
    await session.closePages();
    expect(page.isClosed()).to.equal(true);
    expect((await session.newPage()).isClosed()).to.equal(false, "the browser outlives closePages()");
    await session.close();
    expect(fs.existsSync(session.userDataDir)).to.equal(false);
    await session.close();
  });
});
