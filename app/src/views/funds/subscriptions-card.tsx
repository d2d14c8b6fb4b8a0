/**
 * The buyer's subscriptions, one per provider it ever subscribed to: the plan, its period, the included usage
 * used and left in the current period as settled on-chain (usage not yet settled is not counted), when it renews
 * or ends, and Cancel (covered to the period's end, no refund) or Renew when a renewal is due.
 */
import { useCallback } from "react";
import type { Address } from "viem";
import { cancelSubscription, getSubscription, renewSubscription, type SubscriptionInfo } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { LoadError } from "../../components/load-error";
import { formatAmount } from "../../lib/amounts";
import type { Catalog } from "../../lib/catalog";
import { NO_ROLLOVER, overageText } from "../../lib/subscription-texts";
import { formatPeriod, formatRelative, formatTime } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import { useLoad } from "../../lib/use-load";

function Subscription({ sub, account, now }: { sub: SubscriptionInfo; account: Address; now: bigint }) {
  const { token } = useApp();
  const action = useAction();
  const period = sub.currentPeriod;
  const when = (at: number) => `${formatTime(at)} (${formatRelative(at, now)})`;
  const state = {
    active: <>Renews {when(sub.paidUntil)} from your vault balance ({formatAmount(sub.plan.price, token)}).</>,
    cancelled: <>Cancelled: covered until {when(sub.paidUntil)}, then it ends. Nothing is refunded.</>,
    "renewal-due": <>Paid until {formatTime(sub.paidUntil)}: the renewal is due. Renewing pays each period that has started from your vault balance, or ends the subscription if the balance is short.</>,
    ended: <>Ended; it was paid until {formatTime(sub.paidUntil)}. Usage is billed without it.</>,
  }[sub.status];
  const cancel = () =>
    void action.run(`Cancel the subscription to provider ${sub.providerId}`, (client) => cancelSubscription(client, { providerId: sub.providerId }), (result) => `Cancelled: covered until ${formatTime(result.endsAt)}, then it ends.`);
  const renew = () =>
    void action.run(`Renew the subscription to provider ${sub.providerId}`, (client) => renewSubscription(client, { buyer: account, providerId: sub.providerId }), (result) =>
      result.ended ? `The subscription ended (${result.ended === "unpaid" ? "the balance could not pay the next period" : "it was cancelled"}).` : `Renewed ${result.periodsPaid} period(s) for ${formatAmount(result.paid, token)}.`,
    );
  return (
    <section aria-label={`Subscription to provider ${sub.providerId}`} className="subscription">
      <h3>
        Provider {sub.providerId}, plan #{sub.planId} <span className={`badge ${sub.status === "active" ? "ok" : sub.status === "ended" ? "bad" : "warn"}`}>{sub.status === "renewal-due" ? "renewal due" : sub.status}</span>
      </h3>
      <dl className="facts">
        <dt>Period</dt>
        <dd>
          {formatPeriod(sub.plan.periodSeconds)} for {formatAmount(sub.plan.price, token)}, including {formatAmount(sub.plan.includedValue, token)} of usage
        </dd>
        {period && (
          <>
            <dt>This period</dt>
            <dd>
              {formatTime(period.start)} to {formatTime(period.end)}
            </dd>
            <dt>Included usage used</dt>
            <dd data-testid="included-used">
              {formatAmount(period.includedUsed, token)} of {formatAmount(sub.plan.includedValue, token)} settled on-chain; <strong>{formatAmount(period.includedRemaining, token)} left</strong>
            </dd>
          </>
        )}
        <dt>Overage</dt>
        <dd>{overageText(sub.plan.overage)}</dd>
        <dt>{sub.status === "cancelled" || sub.status === "ended" ? "Ends" : "Renews"}</dt>
        <dd>{state}</dd>
      </dl>
      <div className="row">
        {(sub.status === "active" || sub.status === "renewal-due") && (
          <button type="button" onClick={cancel} disabled={action.busy}>
            Cancel subscription
          </button>
        )}
        {sub.status === "renewal-due" && (
          <button type="button" onClick={renew} disabled={action.busy}>
            Renew now
          </button>
        )}
      </div>
      <ActionStatus state={action.state} />
    </section>
  );
}

export function SubscriptionsCard({ account, catalog, now }: { account: Address; catalog?: Catalog; now: bigint }) {
  const { client } = useApp();
  const providerIds = catalog?.providers.map((provider) => provider.providerId).join(",");
  const subs = useLoad(
    useCallback(async () => {
      const ids = providerIds ? providerIds.split(",").map(Number) : [];
      const read = await Promise.all(ids.map((providerId) => getSubscription(client, { buyer: account, providerId })));
      return read.map((entry) => entry.subscription).filter((sub): sub is SubscriptionInfo => sub !== null);
    }, [client, account, providerIds]),
    [client, account, providerIds],
  );
  return (
    <Card title="Subscriptions">
      {subs.error !== undefined && <LoadError error={subs.error} what="your subscriptions" retry={subs.reload} />}
      {!subs.data ? (
        <p aria-busy="true">Reading your subscriptions…</p>
      ) : subs.data.length === 0 ? (
        <p className="empty">
          No subscription. The <a href="#/market">Market</a> lists the providers' subscription plans.
        </p>
      ) : (
        subs.data.map((sub) => <Subscription key={sub.subscriptionId.toString()} sub={sub} account={account} now={now} />)
      )}
      <p className="small">{NO_ROLLOVER}</p>
    </Card>
  );
}
