/** A parameter of the page's hash query (#/?plan=3): the Market page's "Buy" links preselect a plan with it. */
import { useSyncExternalStore } from "react";

function subscribe(onChange: () => void): () => void {
  window.addEventListener("hashchange", onChange);
  return () => window.removeEventListener("hashchange", onChange);
}

export function useHashQuery(name: string): string | undefined {
  return useSyncExternalStore(subscribe, () => new URLSearchParams(window.location.hash.split("?")[1] ?? "").get(name) ?? undefined);
}
