/**
 * A wallet on another chain would sign for the wrong deployment: say so and offer the switch (adding the
 * chain to the wallet first when it does not know it, EIP-3085).
 */
import { useState } from "react";
import { numberToHex } from "viem";
import { useApp } from "../app-state";
import { ErrorNotice } from "../components/error-notice";
import { explainError, type ExplainedError } from "../lib/explain-error";
import { useWallet } from "./wallet-state";

export function NetworkBanner() {
  const { wrongNetwork, config, token } = useApp();
  const { wallet, chainId } = useWallet();
  const [error, setError] = useState<ExplainedError>();
  const [switching, setSwitching] = useState(false);
  if (!wrongNetwork || !wallet) return null;

  const switchNetwork = async () => {
    setSwitching(true);
    setError(undefined);
    const target = numberToHex(config.chainId);
    try {
      try {
        await wallet.provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: target }] });
      } catch (cause) {
        if ((cause as { code?: number }).code !== 4902) throw cause;
        await wallet.provider.request({
          method: "wallet_addEthereumChain",
          params: [{ chainId: target, chainName: config.chainName, rpcUrls: [config.rpcUrl], nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, blockExplorerUrls: config.explorerUrl ? [config.explorerUrl] : undefined }],
        });
      }
    } catch (cause) {
      setError(explainError(cause, token, config.rpcUrl));
    } finally {
      setSwitching(false);
    }
  };

  return (
    <div className="network-banner" role="alert">
      <p>
        Your wallet is on chain {chainId}, but this Tollgate deployment is on <strong>{config.chainName}</strong> (chain {config.chainId}). Nothing can be signed until
        you switch.
      </p>
      <button type="button" onClick={switchNetwork} disabled={switching}>
        {switching ? "Switching…" : `Switch to ${config.chainName}`}
      </button>
      {error && <ErrorNotice error={error} />}
    </div>
  );
}
