/** Loads the deployment the gateway describes, then renders the app; a gateway that cannot be reached is said so. */
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { AppStateProvider } from "./app-state";
import { loadConfig } from "./config";
import { Shell } from "./shell";
import { WalletProvider } from "./wallet/wallet-state";
import "./styles.css";

const root = createRoot(document.getElementById("root")!);

loadConfig().then(
  (config) =>
    root.render(
      <StrictMode>
        <WalletProvider>
          <AppStateProvider config={config}>
            <Shell />
          </AppStateProvider>
        </WalletProvider>
      </StrictMode>,
    ),
  (error: Error) =>
    root.render(
      <main id="main" className="startup-error">
        <h1>Tollgate</h1>
        <div role="alert" className="notice error">
          <p className="notice-title">The app cannot start.</p>
          <p>{error.message}</p>
        </div>
      </main>,
    ),
);
