/**
 * The gateway read session: one wallet signature (`openSession`) gives a read-only bearer token for the
 * buyer's usage, balance and keys, so the pages do not ask the wallet to sign on every load. It lives in this
 * tab's sessionStorage, per deployment and account: closing the tab or switching accounts ends it here, and
 * it never pays for a call (that takes an API key).
 */
import { useCallback, useEffect, useState } from "react";
import { closeSession, GatewayRequestError, openSession } from "../../../client";
import { useApp } from "../app-state";
import { explainError, type ExplainedError } from "./explain-error";

interface StoredSession {
  token: string;
  expiresAt: number;
}

const listeners = new Set<() => void>();
const announce = () => listeners.forEach((listener) => listener());

function storageKey(chainId: number, tollgate: string, account: string): string {
  return `tollgate:session:${chainId}:${tollgate.toLowerCase()}:${account.toLowerCase()}`;
}

function readStored(key: string | undefined): StoredSession | undefined {
  if (!key) return undefined;
  try {
    const stored = JSON.parse(sessionStorage.getItem(key) ?? "null") as StoredSession | null;
    // A minute of margin: a token about to expire would fail mid-page.
    if (stored && stored.expiresAt > Date.now() / 1000 + 60) return stored;
  } catch {
    // a damaged entry is as good as none
  }
  return undefined;
}

export interface Session {
  token?: string;
  opening: boolean;
  error?: ExplainedError;
  /** Asks the wallet for the signature; resolves with the token, or undefined when refused (error says why). */
  open(): Promise<string | undefined>;
  /** Ends the session at the gateway and here. */
  close(): Promise<void>;
  /** The gateway no longer accepts the token (expired, ended elsewhere): forget it so the page offers to sign in again. */
  forget(): void;
  /** True when `error` from a read means the session is no longer valid. */
  isExpired(error: unknown): boolean;
}

export function useSession(): Session {
  const { client, account, canSign, config, token } = useApp();
  const key = account ? storageKey(config.chainId, config.tollgate, account) : undefined;
  const [stored, setStored] = useState(() => readStored(key));
  const [opening, setOpening] = useState(false);
  const [error, setError] = useState<ExplainedError>();

  useEffect(() => {
    const sync = () => setStored(readStored(key));
    sync();
    listeners.add(sync);
    return () => void listeners.delete(sync);
  }, [key]);

  const open = useCallback(async () => {
    if (!key || !canSign) return undefined;
    setOpening(true);
    setError(undefined);
    try {
      const opened = await openSession(client);
      sessionStorage.setItem(key, JSON.stringify({ token: opened.token, expiresAt: opened.expiresAt }));
      announce();
      return opened.token;
    } catch (cause) {
      setError(explainError(cause, token, config.rpcUrl));
      return undefined;
    } finally {
      setOpening(false);
    }
  }, [key, canSign, client, token, config.rpcUrl]);

  const forget = useCallback(() => {
    if (key) sessionStorage.removeItem(key);
    announce();
  }, [key]);

  const close = useCallback(async () => {
    const current = readStored(key);
    forget();
    if (current) await closeSession(client, { session: current.token }).catch(() => undefined);
  }, [key, client, forget]);

  const isExpired = useCallback((cause: unknown) => cause instanceof GatewayRequestError && cause.status === 401, []);

  return { token: stored?.token, opening, error, open, close, forget, isExpired };
}
