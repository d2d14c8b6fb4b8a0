/**
 * What the buyer can spend, and why: tokens still in the wallet (not spendable until deposited), the vault
 * balance, the usage value of its credits, the pending withdrawal (still chargeable for usage already
 * served until it unlocks), and any dispute award waiting to be claimed.
 */
import type { GetBuyerPositionReturnType, GetDisputeAwardReturnType } from "../../../../client";
import { useApp } from "../../app-state";
import { Card } from "../../components/card";
import { formatAmount } from "../../lib/amounts";
import { formatRelative, formatTime } from "../../lib/time";
import { creditValue } from "./credit-value";

export function SpendableSummary({ position, award, now }: { position: GetBuyerPositionReturnType; award?: GetDisputeAwardReturnType; now: bigint }) {
  const { token } = useApp();
  const credits = position.credits.reduce((sum, holding) => sum + creditValue(holding, now), 0n);
  const plansWithCredits = position.credits.filter((holding) => creditValue(holding, now) > 0n).length;
  return (
    <Card title="What you can spend">
      <dl className="facts">
        <dt>Vault balance</dt>
        <dd>
          <span className="stat">
            {formatAmount(position.balance, token)}
          </span>
          <br />
          <span className="small">Pays for usage at any provider, after credits.</span>
        </dd>
        <dt>Credits</dt>
        <dd>
          {formatAmount(credits, token)} of usage{" "}
          <span className="small">
            ({plansWithCredits === 0 ? "no credits held" : `in ${plansWithCredits} plan${plansWithCredits === 1 ? "" : "s"}, spent first on the models they cover`})
          </span>
        </dd>
        <dt>In your wallet</dt>
        <dd>
          {formatAmount(position.wallet, token)} <span className="small">(not spendable until deposited)</span>
        </dd>
        <dt>Pending withdrawal</dt>
        <dd>
          {position.pendingWithdrawal === 0n ? (
            "none"
          ) : (
            <>
              {formatAmount(position.pendingWithdrawal, token)}:{" "}
              {position.withdrawableAt <= now ? <strong>ready now</strong> : <>unlocks {formatTime(position.withdrawableAt)} ({formatRelative(position.withdrawableAt, now)})</>}
            </>
          )}
        </dd>
        {award && award.amount > 0n && (
          <>
            <dt>Dispute award</dt>
            <dd>
              {formatAmount(award.amount, token)}{" "}
              <span className="small">
                {award.claimableAt <= now ? "claimable now" : `claimable ${formatTime(award.claimableAt)} (${formatRelative(award.claimableAt, now)})`}
              </span>
            </dd>
          </>
        )}
      </dl>
    </Card>
  );
}
