/** The frame of every page: deployment, wallet, network warning, navigation, and the page the hash names. */
import { lazy, Suspense, useEffect, useRef } from "react";
import { useApp } from "./app-state";
import { ShortHex } from "./components/short-hex";
import { ROUTES, useRoute } from "./routes";
import { ConnectButton } from "./wallet/connect-button";
import { NetworkBanner } from "./wallet/network-banner";

// Each page is its own chunk, loaded when first visited: the usage and provider pages carry the chain audit
// (log scanning, replay, Merkle proofs), which the funds page a buyer opens first does not need.
const FundsPage = lazy(() => import("./views/funds/funds-page").then((module) => ({ default: module.FundsPage })));
const MarketPage = lazy(() => import("./views/market/market-page").then((module) => ({ default: module.MarketPage })));
const KeysPage = lazy(() => import("./views/keys/keys-page").then((module) => ({ default: module.KeysPage })));
const UsagePage = lazy(() => import("./views/usage/usage-page").then((module) => ({ default: module.UsagePage })));
const ProviderPage = lazy(() => import("./views/provider/provider-page").then((module) => ({ default: module.ProviderPage })));
const TransactionPage = lazy(() => import("./views/transaction/transaction-page").then((module) => ({ default: module.TransactionPage })));

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
        <Suspense fallback={<p aria-busy="true">Loading the page…</p>}>
          <Page path={path} rest={rest} />
        </Suspense>
      </main>
    </>
  );
}
