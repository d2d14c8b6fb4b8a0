/** Pages about "my" money need an account: say so instead of showing an empty page. */
import type { ReactNode } from "react";
import { useApp } from "../app-state";

export function RequireWallet({ children, purpose }: { children: ReactNode; purpose: string }) {
  const { account, wrongNetwork } = useApp();
  if (!account) return <p className="empty">Connect a wallet to {purpose}.</p>;
  if (wrongNetwork) return <p className="empty">Switch your wallet to this deployment's network to {purpose}.</p>;
  return <>{children}</>;
}
