/**
 * TEMPORARY: a read session at the gateway for this page, until the lead's shared `useSession()`
 * (app/src/lib/use-session.ts) lands on main; then import that instead. Same shape, so only the import changes:
 * one wallet signature opens a `tgs_` token that reads GET /v1/balance.
 */
import { useCallback, useEffect, useState } from "react";
import { openSession } from "../../../../client";
import { useApp } from "../../app-state";

export interface GatewaySession {
  token?: string;
  open(): Promise<string | undefined>;
  close(): void;
  opening: boolean;
  error?: unknown;
}

export function useGatewaySession(): GatewaySession {
  const { client, account } = useApp();
  const [token, setToken] = useState<string>();
  const [opening, setOpening] = useState(false);
  const [error, setError] = useState<unknown>();
  // A session reads one buyer's data: another account needs its own.
  useEffect(() => setToken(undefined), [account]);
  const open = useCallback(async () => {
    setOpening(true);
    setError(undefined);
    try {
      const opened = await openSession(client);
      setToken(opened.token);
      return opened.token;
    } catch (cause) {
      setError(cause);
      return undefined;
    } finally {
      setOpening(false);
    }
  }, [client]);
  const close = useCallback(() => setToken(undefined), []);
  return { token, open, close, opening, error };
}
