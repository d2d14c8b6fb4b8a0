/**
 * The market, readable without a wallet: per provider, its payout and metadata, the models on sale with the
 * prices in force now and every scheduled change, its credit plans with a link to buy them, and its subscription
 * plans with Subscribe.
 */
import { Card } from "../../components/card";
import { LoadError } from "../../components/load-error";
import { ShortHex } from "../../components/short-hex";
import { useCatalog } from "../../lib/catalog";
import { formatTime } from "../../lib/time";
import { CreditPlans } from "./credit-plans";
import { ModelPrices } from "./model-prices";
import { SubscriptionPlans } from "./subscription-plans";

export function MarketPage() {
  const catalog = useCatalog();
  if (catalog.error !== undefined && !catalog.data) return <LoadError error={catalog.error} what="the market" retry={catalog.reload} />;
  if (!catalog.data) return <p aria-busy="true">Reading the market from the chain…</p>;
  const { providers, chainTime } = catalog.data;
  return (
    <>
      <p className="small">
        Prices are per million tokens, as of the chain's clock ({formatTime(chainTime)}). A price change takes effect only after the notice period, and every call is charged
        the price in force when it was served.
      </p>
      {providers.length === 0 && <p className="empty">No provider is registered on this deployment yet.</p>}
      {providers.map((provider) => (
        <Card key={provider.providerId} title={`Provider ${provider.providerId}`}>
          <dl className="facts">
            <dt>Metadata</dt>
            <dd className="break">
              {/^https?:\/\//.test(provider.metadataURI) ? (
                <a href={provider.metadataURI} target="_blank" rel="noreferrer">
                  {provider.metadataURI}
                </a>
              ) : (
                provider.metadataURI || "none"
              )}
            </dd>
            <dt>Paid to</dt>
            <dd>
              <ShortHex value={provider.payout} />
            </dd>
            <dt>Owner</dt>
            <dd>
              <ShortHex value={provider.owner} />
            </dd>
          </dl>
          <h3>Models</h3>
          <ModelPrices providerId={provider.providerId} models={provider.models} now={chainTime} />
          <h3>Credit plans</h3>
          <CreditPlans providerId={provider.providerId} plans={provider.plans} now={chainTime} />
          <h3>Subscription plans</h3>
          <SubscriptionPlans providerId={provider.providerId} models={provider.models} />
        </Card>
      ))}
    </>
  );
}
