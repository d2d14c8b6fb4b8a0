/**
 * What every page runs on: the deployment (from the gateway's config.json), a Tollgate client that reads
 * over the deployment's public RPC and signs with the connected browser wallet (the same client the CLI
 * builds with a local key: the actions cannot tell them apart), the token, and a refresh counter that every
 * confirmed transaction bumps so the numbers on the page follow the chain.
 */
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { createPublicClient, createWalletClient, custom, http, type Address, type PublicClient } from "viem";
import type { TollgateClient } from "../../client";
import { chainOf, type AppConfig } from "./config";
import type { TokenInfo } from "./lib/amounts";
import { useWallet } from "./wallet/wallet-state";

export interface AppState {
  config: AppConfig;
  token: TokenInfo;
  publicClient: PublicClient;
  /** Reads always work; `client.wallet` is set only when a wallet is connected on the deployment's chain. */
  client: TollgateClient;
  account?: Address;
  /** A wallet is connected and on the deployment's chain: transactions and signatures can go. */
  canSign: boolean;
  /** A wallet is connected but on another chain. */
  wrongNetwork: boolean;
  /** Bumped after each confirmed transaction; loaders depend on it to read again. */
  refreshTick: number;
  refresh(): void;
}

const AppContext = createContext<AppState | undefined>(undefined);

export function useApp(): AppState {
  const state = useContext(AppContext);
  if (!state) throw new Error("useApp outside <AppStateProvider>");
  return state;
}

export function AppStateProvider({ config, children }: { config: AppConfig; children: ReactNode }) {
  const { wallet, account, chainId } = useWallet();
  const [refreshTick, setRefreshTick] = useState(0);
  const refresh = useCallback(() => setRefreshTick((tick) => tick + 1), []);
  const chain = useMemo(() => chainOf(config), [config]);
  const publicClient = useMemo(
    () => createPublicClient({ chain, transport: http(config.rpcUrl, { retryCount: 1 }), pollingInterval: 500 }) as PublicClient,
    [chain, config.rpcUrl],
  );
  const canSign = Boolean(wallet && account && chainId === config.chainId);
  const client = useMemo<TollgateClient>(() => {
    const walletClient = canSign && wallet && account ? createWalletClient({ account, chain, transport: custom(wallet.provider) }) : undefined;
    return {
      public: publicClient,
      wallet: walletClient,
      contracts: { chainId: config.chainId, tollgate: config.tollgate, credits: config.credits, paymentToken: config.paymentToken },
      pollingInterval: 500,
      // The gateway serves the app, so its API is this page's own origin.
      gateway: { url: window.location.origin },
    };
  }, [canSign, wallet, account, chain, publicClient, config]);
  const value = useMemo<AppState>(
    () => ({
      config,
      token: config.token,
      publicClient,
      client,
      account,
      canSign,
      wrongNetwork: Boolean(wallet && account && chainId !== undefined && chainId !== config.chainId),
      refreshTick,
      refresh,
    }),
    [config, publicClient, client, account, canSign, wallet, chainId, refreshTick, refresh],
  );
  return <AppContext.Provider value={value}>{children}</AppContext.Provider>;
}
