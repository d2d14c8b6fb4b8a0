/**
 * A chain this process does not run, reached by JSON-RPC URL with one funded key: Anvil, `hardhat node`, a
 * testnet. The marketplace runs on it as on the in-process network (scripts/lib/local-marketplace.ts): the
 * same client actions, gateway and oracle, with Tollgate deployed by `scripts/deploy.ts` on the `rpc` network.
 *
 * Gas money for the demo's fresh accounts: a development node sets their balance; a real chain gets a transfer
 * from the deployer key, so that key must hold enough for it (GAS_MONEY_REAL_CHAIN per account).
 */
import path from "node:path";
import { createPublicClient, createWalletClient, defineChain, http, isHex, parseEther, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deployByRpc } from "./deploy-process";
import type { TollgateDeployment, TollgateDeployParameters } from "./deploy-tollgate";
import { devChainOf } from "./dev-chain";
import { displayPath, MarketplaceSetupError, type MarketplaceChain, type RecordedTransaction } from "./local-marketplace";

/** What each fresh account of the demo gets on a development node: far more than it spends. */
const GAS_MONEY_DEV_NODE = 10n ** 20n;
/** What each fresh account of the demo gets on a real chain, sent by the deployer: a few dozen transactions' worth on an L2. */
export const GAS_MONEY_REAL_CHAIN = parseEther("0.005");

export interface ExternalChainOptions {
  rpcUrl: string;
  /** The deployer's 0x-prefixed 32-byte key: owner and treasury of the deployment, and the source of gas money on a real chain. */
  deployerKey: Hex;
}

export interface ExternalChain extends MarketplaceChain {
  deployerKey: Hex;
}

/** Connects to the chain at `rpcUrl` and checks it answers; says what to fix if it does not. */
export async function connectExternalChain(options: ExternalChainOptions): Promise<ExternalChain> {
  let url: URL;
  try {
    url = new URL(options.rpcUrl);
  } catch {
    throw new MarketplaceSetupError(`--rpc-url must be an http(s) URL of a JSON-RPC endpoint, got "${options.rpcUrl}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new MarketplaceSetupError(`--rpc-url must be an http(s) URL, got "${options.rpcUrl}"`);
  if (!isHex(options.deployerKey) || options.deployerKey.length !== 66) {
    throw new MarketplaceSetupError("--deployer-key must be the deployer's 32-byte private key as 0x-prefixed hex (64 hex digits)");
  }
  const probe = createPublicClient({ transport: http(options.rpcUrl, { retryCount: 0 }) });
  let chainId: number;
  try {
    chainId = await probe.getChainId();
  } catch (error) {
    throw new MarketplaceSetupError(`no JSON-RPC node answers at ${options.rpcUrl} (${(error as Error).message.split("\n")[0]}): start it, or check the URL`);
  }
  const dev = await devChainOf((args) => probe.request(args as never)).catch(() => undefined);
  const pollingInterval = dev ? 50 : 1_000;
  const chain = defineChain({
    id: chainId,
    name: dev ? `${dev.node} node at ${options.rpcUrl}` : `chain ${chainId} at ${options.rpcUrl}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [options.rpcUrl] } },
  });
  const transport = http(options.rpcUrl);
  const client = createPublicClient({ chain, transport, pollingInterval }) as PublicClient;
  const deployer = privateKeyToAccount(options.deployerKey);
  const transactions: RecordedTransaction[] = [];
  const mined = async (hash: Hex, label: string) => {
    const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval });
    if (receipt.status !== "success") throw new Error(`${label}: transaction ${hash} reverted`);
    transactions.push({ label, hash });
    return receipt;
  };
  const funder = createWalletClient({ account: deployer, chain, transport, pollingInterval });
  return {
    chain,
    client,
    rpcUrl: options.rpcUrl,
    transport,
    pollingInterval,
    description: dev ? `${dev.node === "anvil" ? "Anvil" : "a Hardhat node"} at ${options.rpcUrl}` : `the chain at ${options.rpcUrl}`,
    operator: deployer.address,
    deployerKey: options.deployerKey,
    transactions,
    devChain: dev,
    fundGas: async (address: Address) => {
      if (dev) return dev.setBalance(address, GAS_MONEY_DEV_NODE);
      await mined(await funder.sendTransaction({ to: address, value: GAS_MONEY_REAL_CHAIN }), `deployer: gas money for ${address}`);
    },
    mined,
  };
}

/**
 * Tollgate deployed on the external chain as an operator deploys it: `scripts/deploy.ts --network rpc` with the
 * deployer key, Ignition's journal under ignition/deployments/<deploymentId>, reset so every run is a fresh
 * marketplace as on the in-process network. The deployment file is written where the CLI looks.
 */
export async function deployExternal(
  external: ExternalChain,
  deploymentFile: string,
  parameters: TollgateDeployParameters = {},
  options: { deploymentId?: string } = {},
): Promise<{ deployment: TollgateDeployment; lines: string[] }> {
  const deploymentId = options.deploymentId ?? `marketplace-demo-chain-${external.chain.id}`;
  const { deployment, output } = await deployByRpc({
    rpcUrl: external.rpcUrl,
    deployerKey: external.deployerKey,
    deploymentFile,
    parameters: { treasury: external.operator, owner: external.operator, ...parameters },
    deploymentId,
    reset: true,
    // A development node mines each transaction at once and nothing else: waiting for more blocks would wait forever.
    confirmations: external.devChain ? 1 : undefined,
  });
  const lines = output.split("\n").filter((line) => line.trim() !== "");
  lines.push(`Ignition journal: ${displayPath(path.join("ignition", "deployments", deploymentId))}`);
  return { deployment, lines };
}
