/**
 * Data a page reads (chain, gateway): loading, the value, or the error, read again when its inputs change
 * or a transaction confirms. A read that finishes after a newer one started is dropped, so the page never
 * shows an older answer over a newer one.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { useApp } from "../app-state";

export interface Loaded<T> {
  data?: T;
  error?: unknown;
  loading: boolean;
  reload(): void;
}

export function useLoad<T>(read: (() => Promise<T>) | undefined, deps: readonly unknown[]): Loaded<T> {
  const { refreshTick } = useApp();
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: Boolean(read) });
  const [manual, setManual] = useState(0);
  const generation = useRef(0);
  useEffect(() => {
    if (!read) {
      setState({ loading: false });
      return;
    }
    const mine = ++generation.current;
    setState((previous) => ({ data: previous.data, loading: true }));
    read().then(
      (data) => mine === generation.current && setState({ data, loading: false }),
      (error: unknown) => mine === generation.current && setState({ error, loading: false }),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, refreshTick, manual, Boolean(read)]);
  const reload = useCallback(() => setManual((n) => n + 1), []);
  return { ...state, reload };
}
