/** Earnings accrued from settled usage, where they go, and the button that sends them there. */
import { withdrawEarnings } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { ShortHex } from "../../components/short-hex";
import { formatAmount } from "../../lib/amounts";
import { useAction } from "../../lib/use-transaction";
import type { ProviderDashboard } from "./load-provider-dashboard";

export function EarningsCard({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const action = useAction();
  return (
    <Card title="Earnings">
      <p className="stat" aria-label={`Earnings to withdraw: ${formatAmount(dashboard.earnings, token)}`}>
        {formatAmount(dashboard.earnings, token)}
      </p>
      <p className="field-hint">
        Accrued from settled usage, after the protocol fee. Withdrawing sends them to the payout address <ShortHex value={dashboard.payout} />.
      </p>
      <button
        type="button"
        disabled={action.busy || dashboard.earnings === 0n}
        onClick={() =>
          void action.run("Withdraw earnings", (client) => withdrawEarnings(client, { providerId: dashboard.providerId }), (result) => `Sent ${formatAmount(result.amount, token)} to ${result.payout}.`)
        }
      >
        Withdraw earnings
      </button>
      <ActionStatus state={action.state} />
    </Card>
  );
}
