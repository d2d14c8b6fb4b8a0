/**
 * A browser wallet for tests: an EIP-1193 provider injected into a page before any of its scripts run,
 * announced through EIP-6963 and set as `window.ethereum`, whose keys stay in Node.
 *
 * The page holds only a thin provider object. Each `request()` crosses into Node through
 * `page.exposeFunction`, where a viem local account signs and the chain's HTTP RPC answers, so a dapp
 * under test goes through exactly the calls it would make against MetaMask: approvals, signatures,
 * transactions, and plain reads that a real wallet forwards to its node. Errors come back as EIP-1193
 * `ProviderRpcError`s (`{ code, message, data }`), which viem maps to its own error classes (4001 to
 * UserRejectedRequestError and so on); errors from the node (a revert during gas estimation) pass through
 * untouched, so the dapp can decode custom errors from them as it would in production.
 *
 * Like a real wallet it remembers, per page, whether the site is connected and which chain it is on, across
 * reloads. It does not prompt: every approval is granted unless a test queued a rejection with `rejectNext`.
 * Inject before `page.goto` (an init script only runs on documents loaded after it is added).
 */
import { randomUUID } from "node:crypto";
import type { Page } from "playwright-core";
import {
  createPublicClient,
  defineChain,
  hexToBigInt,
  http,
  isAddressEqual,
  isHex,
  numberToHex,
  type Address,
  type Hex,
  type PrivateKeyAccount,
  type PublicClient,
  type TypedDataDefinition,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { prepareTransactionRequest } from "viem/actions";

/** EIP-6963 provider info, as announced. */
export interface WalletInfo {
  uuid: string;
  name: string;
  /** A data: URI (EIP-6963 requires one), here an SVG. */
  icon: `data:image/${string}`;
  rdns: string;
}

export const DEFAULT_WALLET_NAME = "Tollgate Test Wallet";
export const DEFAULT_WALLET_RDNS = "dev.tollgate.testwallet";
const DEFAULT_ICON =
  "data:image/svg+xml;base64," +
  Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f6feb"/><path d="M8 11h16v3h-6.5v10h-3V14H8z" fill="#fff"/></svg>',
  ).toString("base64");

/** EIP-1193 and EIP-1474 codes the wallet answers with. */
export const ProviderErrorCode = {
  userRejected: 4001,
  unauthorized: 4100,
  unsupportedMethod: 4200,
  disconnected: 4900,
  chainDisconnected: 4901,
  unrecognizedChain: 4902,
  invalidParams: -32602,
  internal: -32603,
} as const;

export interface ProviderRpcErrorShape {
  code: number;
  message: string;
  data?: unknown;
}

/** One request the page made, in order; `error` is set when the wallet answered with one. */
export interface WalletRequest {
  method: string;
  params: unknown;
  error?: ProviderRpcErrorShape;
}

export interface InjectWalletOptions {
  privateKey: Hex;
  /** The chain's HTTP JSON-RPC (for Hardhat: `startRpcServer(hre.network.provider)`). */
  rpcUrl: string;
  /** Defaults: name "Tollgate Test Wallet", rdns "dev.tollgate.testwallet", a random uuid, an SVG icon. */
  info?: Partial<WalletInfo>;
  /** The site starts connected (as after an earlier visit), so `eth_accounts` answers at once. Default false. */
  connected?: boolean;
  /** Set `window.ethereum` to this wallet. Default: only if no wallet injected earlier took it. */
  windowEthereum?: boolean;
}

export interface InjectedWallet {
  readonly info: WalletInfo;
  /** The current account's address. */
  readonly address: Address;
  /** The chain the wallet reports (`eth_chainId`); differs from `rpcChainId` after `setChain`. */
  readonly chainId: number;
  /** The chain behind `rpcUrl`, the only one the wallet can sign and send for. */
  readonly rpcChainId: number;
  readonly connected: boolean;
  /** Every request the page made (not the wallet's own bookkeeping), oldest first. */
  readonly requests: readonly WalletRequest[];
  /** The next request of `method` needing the user's approval (any such request if omitted) fails with 4001. */
  rejectNext(method?: string): void;
  /** The wallet reports `chainId` (and emits chainChanged), as a user switching networks in the wallet would. */
  setChain(chainId: number): Promise<void>;
  /** Another account becomes current (emits accountsChanged when the site is connected). */
  switchAccount(privateKey: Hex): Promise<void>;
  /** The wallet loses its node: emits `disconnect` (4900), and requests needing the chain fail with 4900. */
  disconnect(): Promise<void>;
  /** Back online: emits `connect` with the chain id. */
  reconnect(): Promise<void>;
}

/** Thrown inside the Node handler; the page rethrows it as a ProviderRpcError with the same fields. */
class ProviderRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** Methods a user approves in a real wallet: the only ones `rejectNext` applies to. */
const APPROVAL_METHODS = new Set([
  "eth_requestAccounts",
  "wallet_requestPermissions",
  "wallet_switchEthereumChain",
  "wallet_addEthereumChain",
  "personal_sign",
  "eth_signTypedData_v4",
  "eth_sendTransaction",
]);

type Envelope = { result: unknown } | { error: ProviderRpcErrorShape };
type BindingRequest = { method: string; params?: unknown; internal?: boolean };

export async function injectWallet(page: Page, options: InjectWalletOptions): Promise<InjectedWallet> {
  const info: WalletInfo = {
    uuid: options.info?.uuid ?? randomUUID(),
    name: options.info?.name ?? DEFAULT_WALLET_NAME,
    icon: options.info?.icon ?? (DEFAULT_ICON as WalletInfo["icon"]),
    rdns: options.info?.rdns ?? DEFAULT_WALLET_RDNS,
  };
  const rpcChainId = Number(await rpcRequest(options.rpcUrl, "eth_chainId", []));
  const chain = defineChain({
    id: rpcChainId,
    name: `chain ${rpcChainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [options.rpcUrl] } },
  });
  const publicClient = createPublicClient({ chain, transport: http(options.rpcUrl) }) as PublicClient;

  let account: PrivateKeyAccount = privateKeyToAccount(options.privateKey);
  let connected = options.connected ?? false;
  let online = true;
  let chainId = rpcChainId;
  const knownChains = new Set([rpcChainId]);
  const rejections: (string | undefined)[] = [];
  const requests: WalletRequest[] = [];
  // One transaction at a time, as a wallet's confirmation queue: two sends must not read the same nonce.
  let sendQueue: Promise<unknown> = Promise.resolve();
  const id = info.uuid.replace(/[^A-Za-z0-9]/g, "_");
  const binding = `__tollgateTestWallet_${id}`;

  async function emit(event: string, payload: unknown): Promise<void> {
    try {
      await page.evaluate(([walletId, name, value]) => (window as unknown as WalletRegistryWindow).__tollgateTestWallets?.[walletId]?.emit(name, value), [
        id,
        event,
        payload,
      ] as const);
    } catch {
      // The page is navigating or closed: the next document asks the wallet for its state afresh.
    }
  }

  function approve(method: string): void {
    const index = rejections.findIndex((wanted) => wanted === undefined || wanted === method);
    if (index === -1) return;
    rejections.splice(index, 1);
    throw new ProviderRpcError(ProviderErrorCode.userRejected, "User rejected the request.");
  }

  function requireAccount(from: unknown): void {
    if (!connected) {
      throw new ProviderRpcError(ProviderErrorCode.unauthorized, "The requested account and/or method has not been authorized by the user.");
    }
    if (typeof from !== "string" || !isHex(from) || from.length !== 42 || !isAddressEqual(from, account.address)) {
      throw new ProviderRpcError(ProviderErrorCode.unauthorized, `The requested account ${String(from)} has not been authorized by the user.`);
    }
  }

  /** Only the RPC's own chain can be served; any other reported chain has no node behind it. */
  function requireRpcChain(method: string): void {
    if (!online) throw new ProviderRpcError(ProviderErrorCode.disconnected, "The provider is disconnected from all chains.");
    if (chainId !== rpcChainId) {
      throw new ProviderRpcError(
        ProviderErrorCode.chainDisconnected,
        `${method}: the test wallet is set to chain ${chainId}, which has no RPC; switch to chain ${rpcChainId} first`,
      );
    }
  }

  async function switchTo(next: number): Promise<void> {
    if (next === chainId) return;
    chainId = next;
    await emit("chainChanged", numberToHex(next));
  }

  async function connect(): Promise<Address[]> {
    if (!connected) {
      connected = true;
      await emit("accountsChanged", [account.address]);
    }
    return [account.address];
  }

  const permissions = () => (connected ? [{ parentCapability: "eth_accounts", invoker: page.url(), caveats: [{ type: "restrictReturnedAccounts", value: [account.address] }] }] : []);

  async function handle(method: string, params: unknown): Promise<unknown> {
    const list = Array.isArray(params) ? params : [];
    if (APPROVAL_METHODS.has(method)) approve(method);
    switch (method) {
      case "eth_chainId":
        return numberToHex(chainId);
      case "net_version":
        return String(chainId);
      case "eth_accounts":
        return connected ? [account.address] : [];
      case "eth_requestAccounts":
        return connect();
      case "wallet_requestPermissions":
        await connect();
        return permissions();
      case "wallet_getPermissions":
        return permissions();
      case "wallet_revokePermissions":
        if (connected) {
          connected = false;
          await emit("accountsChanged", []);
        }
        return null;
      case "wallet_switchEthereumChain": {
        const wanted = parseChainId(list[0]);
        if (!knownChains.has(wanted)) {
          throw new ProviderRpcError(
            ProviderErrorCode.unrecognizedChain,
            `Unrecognized chain ID "${numberToHex(wanted)}". Try adding the chain using wallet_addEthereumChain first.`,
          );
        }
        await switchTo(wanted);
        return null;
      }
      case "wallet_addEthereumChain": {
        // Accepted, then switched to, as MetaMask does once the user approves the addition.
        const wanted = parseChainId(list[0]);
        knownChains.add(wanted);
        await switchTo(wanted);
        return null;
      }
      case "personal_sign": {
        const [data, from] = list;
        requireAccount(from);
        if (typeof data !== "string") throw new ProviderRpcError(ProviderErrorCode.invalidParams, "personal_sign: expected [message, address]");
        return account.signMessage({ message: isHex(data) ? { raw: data } : data });
      }
      case "eth_signTypedData_v4": {
        const [from, json] = list;
        requireAccount(from);
        return account.signTypedData(parseTypedData(json, chainId));
      }
      case "eth_sendTransaction": {
        requireAccount((list[0] as { from?: unknown } | undefined)?.from);
        requireRpcChain(method);
        const send = sendQueue.then(() => sendTransaction(list[0] as RpcTransaction));
        sendQueue = send.catch(() => undefined);
        return send;
      }
    }
    // Signing variants a modern wallet refuses (eth_sign) or that this one does not need, and wallet_*
    // extensions it does not implement: 4200, so the dapp takes its fallback path.
    if (method.startsWith("wallet_") || method.startsWith("eth_sign")) {
      throw new ProviderRpcError(ProviderErrorCode.unsupportedMethod, `The test wallet does not support ${method}`);
    }
    requireRpcChain(method);
    return rpcRequest(options.rpcUrl, method, list);
  }

  async function sendTransaction(tx: RpcTransaction): Promise<Hex> {
    const call = { from: account.address, to: tx.to ?? undefined, data: tx.data ?? tx.input, value: tx.value };
    // Estimated over raw JSON-RPC so that a revert reaches the dapp as the node's error, data included.
    const gas = tx.gas ?? ((await rpcRequest(options.rpcUrl, "eth_estimateGas", [call])) as Hex);
    const prepared = await prepareTransactionRequest(publicClient, {
      account,
      chain,
      to: call.to,
      data: call.data,
      value: call.value === undefined ? undefined : hexToBigInt(call.value),
      gas: hexToBigInt(gas),
      nonce: tx.nonce === undefined ? undefined : Number(hexToBigInt(tx.nonce)),
      ...(tx.gasPrice !== undefined
        ? { gasPrice: hexToBigInt(tx.gasPrice) }
        : {
            maxFeePerGas: tx.maxFeePerGas === undefined ? undefined : hexToBigInt(tx.maxFeePerGas),
            maxPriorityFeePerGas: tx.maxPriorityFeePerGas === undefined ? undefined : hexToBigInt(tx.maxPriorityFeePerGas),
          }),
    } as Parameters<typeof prepareTransactionRequest>[1]);
    const signed = await account.signTransaction(prepared as Parameters<PrivateKeyAccount["signTransaction"]>[0]);
    return (await rpcRequest(options.rpcUrl, "eth_sendRawTransaction", [signed])) as Hex;
  }

  await page.exposeFunction(binding, async (request: BindingRequest): Promise<Envelope> => {
    const entry: WalletRequest | undefined = request.internal ? undefined : { method: request.method, params: request.params };
    if (entry) requests.push(entry);
    try {
      return { result: await handle(request.method, request.params) };
    } catch (error) {
      const shape: ProviderRpcErrorShape =
        error instanceof ProviderRpcError
          ? { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) }
          : { code: ProviderErrorCode.internal, message: `The test wallet failed on ${request.method}: ${(error as Error)?.message ?? String(error)}` };
      if (entry) entry.error = shape;
      return { error: shape };
    }
  });
  await page.addInitScript(installProvider, { id, binding, info, windowEthereum: options.windowEthereum ?? null });

  return {
    info,
    get address() {
      return account.address;
    },
    get chainId() {
      return chainId;
    },
    rpcChainId,
    get connected() {
      return connected;
    },
    requests,
    rejectNext(method?: string) {
      rejections.push(method);
    },
    async setChain(next: number) {
      knownChains.add(next);
      await switchTo(next);
    },
    async switchAccount(privateKey: Hex) {
      account = privateKeyToAccount(privateKey);
      if (connected) await emit("accountsChanged", [account.address]);
    },
    async disconnect() {
      online = false;
      await emit("disconnect", { code: ProviderErrorCode.disconnected, message: "The provider is disconnected from all chains." });
    },
    async reconnect() {
      online = true;
      await emit("connect", { chainId: numberToHex(chainId) });
    },
  };
}

interface RpcTransaction {
  from?: Address;
  to?: Address | null;
  data?: Hex;
  input?: Hex;
  value?: Hex;
  gas?: Hex;
  nonce?: Hex;
  gasPrice?: Hex;
  maxFeePerGas?: Hex;
  maxPriorityFeePerGas?: Hex;
}

let rpcId = 0;

/** One JSON-RPC call; a node's error comes back as a ProviderRpcError with its code, message and data intact. */
async function rpcRequest(url: string, method: string, params: unknown[]): Promise<unknown> {
  let body: { result?: unknown; error?: ProviderRpcErrorShape };
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
    });
    body = (await response.json()) as typeof body;
  } catch (error) {
    throw new ProviderRpcError(ProviderErrorCode.internal, `The test wallet could not reach its RPC at ${url}: ${(error as Error).message}`);
  }
  if (body.error) throw new ProviderRpcError(body.error.code, body.error.message, body.error.data);
  return body.result;
}

function parseChainId(param: unknown): number {
  const value = (param as { chainId?: unknown } | undefined)?.chainId;
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]+$/.test(value)) {
    throw new ProviderRpcError(ProviderErrorCode.invalidParams, `Expected [{ chainId: "0x…" }], got ${JSON.stringify(param)}`);
  }
  return Number(BigInt(value));
}

/** eth_signTypedData_v4 takes the typed data as JSON; like MetaMask, a domain chain other than the wallet's is refused. */
function parseTypedData(json: unknown, chainId: number): TypedDataDefinition {
  let typed: { domain?: { chainId?: unknown }; types?: Record<string, unknown>; primaryType?: string; message?: unknown };
  try {
    typed = typeof json === "string" ? JSON.parse(json) : (json as typeof typed);
  } catch {
    throw new ProviderRpcError(ProviderErrorCode.invalidParams, "eth_signTypedData_v4: the typed data is not valid JSON");
  }
  if (!typed?.types || !typed.primaryType || typed.message === undefined) {
    throw new ProviderRpcError(ProviderErrorCode.invalidParams, "eth_signTypedData_v4: expected { types, primaryType, domain, message }");
  }
  const domainChain = typed.domain?.chainId;
  if (domainChain !== undefined && Number(BigInt(domainChain as string | number)) !== chainId) {
    throw new ProviderRpcError(
      ProviderErrorCode.invalidParams,
      `Provided chainId "${String(domainChain)}" must match the active chainId "${chainId}"`,
    );
  }
  // viem derives EIP712Domain from the domain itself; the JSON's copy is only a description of it.
  const { EIP712Domain: _domainType, ...types } = typed.types;
  return { domain: typed.domain, types, primaryType: typed.primaryType, message: typed.message } as TypedDataDefinition;
}

/** What the init script leaves on `window` for Node to emit events through. */
interface WalletRegistryWindow {
  __tollgateTestWallets?: Record<string, { emit(event: string, payload: unknown): void }>;
}

/**
 * Runs in the page, before its scripts (serialized by Playwright: self-contained, no imports).
 * Builds the EIP-1193 provider over the Node binding and announces it.
 */
function installProvider(config: { id: string; binding: string; info: WalletInfo; windowEthereum: boolean | null }): void {
  type Listener = (...args: unknown[]) => void;
  type Reply = { result: unknown } | { error: { code: number; message: string; data?: unknown } };
  const host = window as unknown as Record<string, unknown> & WalletRegistryWindow;
  const call = host[config.binding] as (request: { method: string; params?: unknown; internal?: boolean }) => Promise<Reply>;
  const listeners = new Map<string, Set<Listener>>();
  let online = true;

  class ProviderRpcError extends Error {
    code: number;
    data?: unknown;
    constructor(code: number, message: string, data?: unknown) {
      super(message);
      this.name = "ProviderRpcError";
      this.code = code;
      if (data !== undefined) this.data = data;
    }
  }

  function emit(event: string, payload: unknown): void {
    if (event === "connect") online = true;
    if (event === "disconnect") {
      online = false;
      const error = payload as { code: number; message: string };
      payload = new ProviderRpcError(error.code, error.message);
    }
    for (const listener of [...(listeners.get(event) ?? [])]) {
      try {
        listener(payload);
      } catch (error) {
        // A throwing listener must not stop the others; it still surfaces as the page's uncaught error.
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  async function send(method: string, params: unknown, internal: boolean): Promise<unknown> {
    const reply = await call({ method, params, internal });
    if ("error" in reply) throw new ProviderRpcError(reply.error.code, reply.error.message, reply.error.data);
    return reply.result;
  }

  const provider = {
    isTollgateTestWallet: true,
    request(args: { method: string; params?: unknown }): Promise<unknown> {
      if (!args || typeof args !== "object" || typeof args.method !== "string") {
        return Promise.reject(new ProviderRpcError(-32600, "request() expects { method: string, params?: unknown[] | object }"));
      }
      return send(args.method, args.params, false);
    },
    on(event: string, listener: Listener) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event)!.add(listener);
      return provider;
    },
    removeListener(event: string, listener: Listener) {
      listeners.get(event)?.delete(listener);
      return provider;
    },
    off(event: string, listener: Listener) {
      return provider.removeListener(event, listener);
    },
    isConnected() {
      return online;
    },
  };

  host.__tollgateTestWallets ??= {};
  host.__tollgateTestWallets[config.id] = { emit };

  const detail = Object.freeze({ info: Object.freeze({ ...config.info }), provider });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();

  if (config.windowEthereum ?? !("ethereum" in window)) {
    Object.defineProperty(window, "ethereum", { value: provider, configurable: true, writable: true, enumerable: true });
  }

  // EIP-1193: `connect` once the provider can serve requests (the wallet's own lookup, not logged as the page's).
  void send("eth_chainId", [], true).then(
    (chainId) => emit("connect", { chainId }),
    () => undefined,
  );
}
