/**
 * Browser wallets as EIP-6963 announces them: every installed wallet (MetaMask, Rabby, Coinbase Wallet...)
 * answers for itself, so several can sit side by side without fighting over `window.ethereum`. A wallet too
 * old to announce is still offered through `window.ethereum`.
 */
import { useSyncExternalStore } from "react";
import { createStore, type EIP6963ProviderDetail } from "mipd";
import type { EIP1193Provider } from "viem";

export type WalletDetail = Pick<EIP6963ProviderDetail, "info"> & { provider: EIP1193Provider };

const store = createStore();
let snapshot: readonly WalletDetail[] = [];

function legacyWallet(): WalletDetail | undefined {
  const injected = (window as unknown as { ethereum?: EIP1193Provider & { isMetaMask?: boolean } }).ethereum;
  if (!injected) return undefined;
  return { info: { uuid: "window.ethereum", name: injected.isMetaMask ? "MetaMask (legacy)" : "Browser wallet", icon: "" as `data:image/${string}`, rdns: "window.ethereum" }, provider: injected };
}

function refresh(): void {
  const announced = store.getProviders() as unknown as readonly WalletDetail[];
  const legacy = legacyWallet();
  // Announcing wallets usually inject window.ethereum too: offer it only when nothing announced.
  snapshot = announced.length > 0 || !legacy ? announced : [legacy];
}
refresh();

function subscribe(onChange: () => void): () => void {
  return store.subscribe(() => {
    refresh();
    onChange();
  });
}

/** Every wallet the browser offers, updated as late ones announce. */
export function useWallets(): readonly WalletDetail[] {
  return useSyncExternalStore(subscribe, () => snapshot);
}

export function findWallet(rdns: string): WalletDetail | undefined {
  return snapshot.find((wallet) => wallet.info.rdns === rdns);
}
