/**
 * What the gateway knows about the buyer (usage, keys, unsettled spend) needs a read session: explain the one
 * signature it takes, and what it does not allow, before asking for it.
 */
import type { ReactNode } from "react";
import { useApp } from "../app-state";
import type { Session } from "../lib/use-session";
import { ErrorNotice } from "./error-notice";

export function SessionGate({ session, purpose, children }: { session: Session; purpose: string; children: (token: string) => ReactNode }) {
  const { canSign } = useApp();
  if (session.token) return <>{children(session.token)}</>;
  return (
    <div className="session-gate">
      <p>
        Sign in to the gateway to {purpose}. Your wallet signs one message (no transaction, no gas); it lets this tab read your usage, balance and keys for a
        few hours and cannot spend anything.
      </p>
      <button type="button" onClick={() => void session.open()} disabled={!canSign || session.opening}>
        {session.opening ? "Waiting for your wallet…" : "Sign in to the gateway"}
      </button>
      {session.error && <ErrorNotice error={session.error} />}
    </div>
  );
}
