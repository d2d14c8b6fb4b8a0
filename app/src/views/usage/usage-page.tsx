/**
 * Usage (#/usage): what the buyer's keys spent, per day and per call, with each settled call's receipt
 * verified against the chain in the browser. The gateway shows usage to a read session (one signature).
 */
import { Card } from "../../components/card";
import { RequireWallet } from "../../components/require-wallet";
import { SessionGate } from "../../components/session-gate";
import { useSession } from "../../lib/use-session";
import { UsageView } from "./usage-view";

export function UsagePage() {
  const session = useSession();
  return (
    <RequireWallet purpose="see your usage">
      {session.token ? (
        <UsageView token={session.token} session={session} />
      ) : (
        <Card title="Sign in to read your usage">
          <SessionGate session={session} purpose="read your usage">
            {() => null}
          </SessionGate>
        </Card>
      )}
    </RequireWallet>
  );
}
