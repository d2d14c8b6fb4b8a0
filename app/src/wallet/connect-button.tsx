/**
 * The header's wallet control: the wallets the browser offers (EIP-6963, several at once), or the connected
 * account with a way to disconnect. With no wallet installed it says how to get one.
 */
import { useState } from "react";
import { useApp } from "../app-state";
import { explainError } from "../lib/explain-error";
import { useWallets } from "./discovery";
import { useWallet } from "./wallet-state";

export function ConnectButton() {
  const wallets = useWallets();
  const { wallet, account, connect, disconnect, connecting, error } = useWallet();
  const { token, config } = useApp();
  const [open, setOpen] = useState(false);

  if (wallet && account) {
    return (
      <div className="wallet-connected">
        {wallet.info.icon && <img src={wallet.info.icon} alt="" width={20} height={20} />}
        <span className="mono" title={account} aria-label={`Connected with ${wallet.info.name} as ${account}`}>
          {account.slice(0, 6)}…{account.slice(-4)}
        </span>
        <button type="button" className="secondary" onClick={disconnect}>
          Disconnect
        </button>
      </div>
    );
  }
  return (
    <div className="wallet-connect">
      <button type="button" aria-expanded={open} aria-controls="wallet-list" onClick={() => setOpen((value) => !value)} disabled={connecting}>
        {connecting ? "Connecting…" : "Connect wallet"}
      </button>
      {open && (
        <div id="wallet-list" className="wallet-list" role="group" aria-label="Wallets in this browser">
          {wallets.length === 0 && <p>No browser wallet found. Install one (MetaMask, Rabby, Coinbase Wallet) and reload this page.</p>}
          {wallets.map((detail) => (
            <button
              type="button"
              key={detail.info.uuid}
              className="wallet-option"
              onClick={() => {
                setOpen(false);
                void connect(detail);
              }}
            >
              {detail.info.icon && <img src={detail.info.icon} alt="" width={24} height={24} />}
              {detail.info.name}
            </button>
          ))}
        </div>
      )}
      {error !== undefined && !connecting && <p className="field-error" role="alert">{explainError(error, token, config.rpcUrl).title}</p>}
    </div>
  );
}
