/**
 * Hash routes (#/keys, #/tx/0x…): the gateway serves one index.html at /app/, so the page's address needs no
 * server-side routing, and every view has a link that can be bookmarked and shared.
 */
import { useSyncExternalStore } from "react";

export interface Route {
  path: string;
  label: string;
  /** Shown in the navigation (the transaction page is reached by links only). */
  nav: boolean;
}

export const ROUTES: Route[] = [
  { path: "/", label: "Funds", nav: true },
  { path: "/market", label: "Market", nav: true },
  { path: "/keys", label: "API keys", nav: true },
  { path: "/usage", label: "Usage", nav: true },
  { path: "/provider", label: "Provider", nav: true },
  { path: "/tx", label: "Transaction", nav: false },
];

function currentHash(): string {
  return window.location.hash.replace(/^#/, "") || "/";
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener("hashchange", onChange);
  return () => window.removeEventListener("hashchange", onChange);
}

/** The route's path and what follows it: "/tx/0xabc" → { path: "/tx", rest: ["0xabc"] }. */
export function useRoute(): { path: string; rest: string[] } {
  const hash = useSyncExternalStore(subscribe, currentHash);
  const [pathname] = hash.split("?");
  const parts = pathname.split("/").filter(Boolean);
  return { path: `/${parts[0] ?? ""}`, rest: parts.slice(1) };
}
