/**
 * The connected wallet: which one, which account, which chain. Connecting asks the wallet for accounts
 * (eth_requestAccounts); a page reload reconnects silently (eth_accounts, no prompt) to the wallet chosen last.
 * Account and chain changes made in the wallet are followed as they happen.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { getAddress, type Address, type EIP1193Provider } from "viem";
import { findWallet, useWallets, type WalletDetail } from "./discovery";

const LAST_WALLET = "tollgate:last-wallet";

export interface WalletState {
  wallet?: WalletDetail;
  account?: Address;
  /** The chain the wallet is on (not necessarily the deployment's). */
  chainId?: number;
  connecting: boolean;
  /** The last connection attempt's failure, for the header to show. */
  error?: unknown;
  connect(wallet: WalletDetail): Promise<void>;
  disconnect(): void;
}

const WalletContext = createContext<WalletState | undefined>(undefined);

export function useWallet(): WalletState {
  const state = useContext(WalletContext);
  if (!state) throw new Error("useWallet outside <WalletProvider>");
  return state;
}

async function readChainId(provider: EIP1193Provider): Promise<number> {
  return Number(await provider.request({ method: "eth_chainId" }));
}

export function WalletProvider({ children }: { children: ReactNode }) {
  const wallets = useWallets();
  const [wallet, setWallet] = useState<WalletDetail>();
  const [account, setAccount] = useState<Address>();
  const [chainId, setChainId] = useState<number>();
  const [connecting, setConnecting] = useState(false);
  const [error, setError] = useState<unknown>();

  const adopt = useCallback(async (detail: WalletDetail, accounts: readonly string[]) => {
    if (accounts.length === 0) return false;
    setWallet(detail);
    setAccount(getAddress(accounts[0]));
    setChainId(await readChainId(detail.provider));
    localStorage.setItem(LAST_WALLET, detail.info.rdns);
    return true;
  }, []);

  const connect = useCallback(
    async (detail: WalletDetail) => {
      setConnecting(true);
      setError(undefined);
      try {
        const accounts = await detail.provider.request({ method: "eth_requestAccounts" });
        if (!(await adopt(detail, accounts))) throw new Error(`${detail.info.name} returned no account. Unlock it and try again.`);
      } catch (cause) {
        setError(cause);
      } finally {
        setConnecting(false);
      }
    },
    [adopt],
  );

  const disconnect = useCallback(() => {
    localStorage.removeItem(LAST_WALLET);
    setWallet(undefined);
    setAccount(undefined);
    setChainId(undefined);
  }, []);

  // Silent reconnect to the wallet used last, once it has announced itself.
  useEffect(() => {
    if (wallet) return;
    const rdns = localStorage.getItem(LAST_WALLET);
    const last = rdns ? findWallet(rdns) : undefined;
    if (!last) return;
    last.provider
      .request({ method: "eth_accounts" })
      .then((accounts) => adopt(last, accounts))
      .catch(() => undefined);
  }, [wallets, wallet, adopt]);

  // Follow what the user changes in the wallet.
  useEffect(() => {
    if (!wallet) return;
    const provider = wallet.provider;
    const onAccounts = (accounts: string[]) => (accounts.length === 0 ? disconnect() : setAccount(getAddress(accounts[0])));
    const onChain = (id: string) => setChainId(Number(id));
    const onDisconnect = () => disconnect();
    provider.on("accountsChanged", onAccounts);
    provider.on("chainChanged", onChain);
    provider.on("disconnect", onDisconnect);
    return () => {
      provider.removeListener("accountsChanged", onAccounts);
      provider.removeListener("chainChanged", onChain);
      provider.removeListener("disconnect", onDisconnect);
    };
  }, [wallet, disconnect]);

  const value = useMemo<WalletState>(() => ({ wallet, account, chainId, connecting, error, connect, disconnect }), [wallet, account, chainId, connecting, error, connect, disconnect]);
  return <WalletContext.Provider value={value}>{children}</WalletContext.Provider>;
}
