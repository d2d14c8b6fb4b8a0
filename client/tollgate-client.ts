/**
 * What every action runs on: a viem public client to read and wait, a viem wallet client to sign (a local
 * account, a decrypted keystore or a browser wallet over EIP-1193: the action cannot tell them apart), and
 * the addresses of one Tollgate deployment. Browser-safe: no Node built-ins, never a private key.
 */
import type { Account, Address, Chain, PublicClient, Transport, WalletClient } from "viem";
import { tollgateAbi } from "../server/chain/abis";

/** The contracts of one deployment, as the deployment file names them. */
export interface TollgateContracts {
  chainId: number;
  tollgate: Address;
  /** The ERC-1155 credits token Tollgate deployed. */
  credits: Address;
  /** The ERC-20 the vault holds. */
  paymentToken: Address;
}

/** A transaction's way from the wallet to the chain, for progress lines and the web app's status. */
export type TransactionProgress =
  | { stage: "signing"; description: string }
  | { stage: "pending"; description: string; hash: `0x${string}` }
  | { stage: "confirmed"; description: string; hash: `0x${string}`; blockNumber: bigint; gasUsed: bigint };

export interface TollgateClient {
  public: PublicClient;
  /** Needed by the actions that sign; read-only actions work without. */
  wallet?: WalletClient<Transport, Chain | undefined, Account>;
  contracts: TollgateContracts;
  /** Called at each stage of every transaction an action sends. */
  onTransaction?: (progress: TransactionProgress) => void;
  /** How often to poll for a receipt (default: the public client's polling interval). */
  pollingInterval?: number;
  /** The metered gateway, for the actions that talk to it (API keys, balance, usage). */
  gateway?: GatewayEndpoint;
}

/**
 * What the gateway actions use: the wallet (for the signed key requests), the gateway, and the chain id and
 * Tollgate address its messages are bound to. No chain reads, so a caller without an RPC (a CLI managing its
 * API keys) builds one from a deployment file; a full `TollgateClient` is one too.
 */
export type TollgateGatewayClient = Pick<TollgateClient, "wallet" | "gateway"> & { contracts: Pick<TollgateContracts, "chainId" | "tollgate"> };

export interface GatewayEndpoint {
  /** Base URL, e.g. http://127.0.0.1:8787 (no /v1). */
  url: string;
  /** Per request (default 20 s). */
  timeoutMs?: number;
}

export interface CreateTollgateClientParameters {
  publicClient: PublicClient;
  walletClient?: WalletClient<Transport, Chain | undefined, Account>;
  /** A deployment file's contents (or anything with its addresses). */
  deployment: { chainId: number; tollgate: Address; credits?: Address; paymentToken?: Address };
  onTransaction?: TollgateClient["onTransaction"];
  pollingInterval?: number;
  gateway?: GatewayEndpoint;
}

/**
 * Binds the clients to a deployment. Addresses the deployment file leaves out (older files) are read from
 * Tollgate itself, so no caller hard-codes one.
 */
export async function createTollgateClient(parameters: CreateTollgateClientParameters): Promise<TollgateClient> {
  const { publicClient, deployment } = parameters;
  const [credits, paymentToken] = await Promise.all([
    deployment.credits ?? publicClient.readContract({ address: deployment.tollgate, abi: tollgateAbi, functionName: "credits" }),
    deployment.paymentToken ?? publicClient.readContract({ address: deployment.tollgate, abi: tollgateAbi, functionName: "paymentToken" }),
  ]);
  return {
    public: publicClient,
    wallet: parameters.walletClient,
    contracts: { chainId: deployment.chainId, tollgate: deployment.tollgate, credits, paymentToken },
    onTransaction: parameters.onTransaction,
    pollingInterval: parameters.pollingInterval,
    gateway: parameters.gateway,
  };
}

/** The same deployment with another wallet (and optionally another progress listener). */
export function withWallet(
  client: TollgateClient,
  wallet: WalletClient<Transport, Chain | undefined, Account>,
  onTransaction: TollgateClient["onTransaction"] = client.onTransaction,
): TollgateClient {
  return { ...client, wallet, onTransaction };
}
