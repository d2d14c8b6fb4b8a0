/** The frame of every page: deployment, wallet, network warning, navigation, and the page the hash names. */
import { useEffect, useRef } from "react";
import { useApp } from "./app-state";
import { ShortHex } from "./components/short-hex";
import { ROUTES, useRoute } from "./routes";
import { FundsPage } from "./views/funds/funds-page";
import { KeysPage } from "./views/keys/keys-page";
import { MarketPage } from "./views/market/market-page";
import { ProviderPage } from "./views/provider/provider-page";
import { TransactionPage } from "./views/transaction/transaction-page";
import { UsagePage } from "./views/usage/usage-page";
import { ConnectButton } from "./wallet/connect-button";
import { NetworkBanner } from "./wallet/network-banner";

function Page({ path, rest }: { path: string; rest: string[] }) {
  switch (path) {
    case "/":
      return <FundsPage />;
    case "/market":
      return <MarketPage />;
    case "/keys":
      return <KeysPage />;
    case "/usage":
      return <UsagePage />;
    case "/provider":
      return <ProviderPage />;
    case "/tx":
      return <TransactionPage hash={rest[0]} />;
    default:
      return <p className="empty">There is no page at #{path}. Pick one from the navigation.</p>;
  }
}

export function Shell() {
  const { config } = useApp();
  const { path, rest } = useRoute();
  const current = ROUTES.find((route) => route.path === path);
  const heading = useRef<HTMLHeadingElement>(null);
  // A new page moves focus to its heading, as a page load would, so screen readers announce it.
  const first = useRef(true);
  useEffect(() => {
    document.title = `${current?.label ?? "Not found"} · Tollgate`;
    if (first.current) first.current = false;
    else heading.current?.focus();
  }, [path, current]);
  return (
    <>
      <a className="skip-link" href="#main" onClick={(event) => (event.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header className="top">
        <div className="brand">
          <span className="logo" aria-hidden="true">
            T
          </span>
          <span>Tollgate</span>
        </div>
        <p className="deployment">
          {config.chainName} (chain {config.chainId}) · Tollgate <ShortHex value={config.tollgate} />
        </p>
        <ConnectButton />
      </header>
      <nav aria-label="Main">
        <ul>
          {ROUTES.filter((route) => route.nav).map((route) => (
            <li key={route.path}>
              <a href={`#${route.path}`} aria-current={route.path === path ? "page" : undefined}>
                {route.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <NetworkBanner />
      <main id="main" tabIndex={-1}>
        <h1 ref={heading} tabIndex={-1}>
          {current?.label ?? "Not found"}
        </h1>
        <Page path={path} rest={rest} />
      </main>
    </>
  );
}
