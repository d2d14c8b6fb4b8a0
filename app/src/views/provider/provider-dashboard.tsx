/** One provider's tools and record, from one read of the chain (see load-provider-dashboard.ts). */
import { useState } from "react";
import { useApp } from "../../app-state";
import { LoadError } from "../../components/load-error";
import { useLoad } from "../../lib/use-load";
import { BatchesCard } from "./batches-card";
import { EarningsCard } from "./earnings-card";
import { BondCard } from "./bond-card";
import { knownDeployBlock, loadProviderDashboard } from "./load-provider-dashboard";
import { ModelsCard } from "./models-card";
import { PlansCard } from "./plans-card";
import { ProfileCard } from "./profile-card";
import { SignersCard } from "./signers-card";
import { SubscriptionPlansCard } from "./subscription-plans-card";
import { UsageCard } from "./usage-card";

export function ProviderDashboardView({ providerId }: { providerId: number }) {
  const { client, config } = useApp();
  const [progress, setProgress] = useState<string>();
  const loaded = useLoad(() => loadProviderDashboard(client, providerId, { deployBlock: knownDeployBlock(config.tollgate, config.deployBlock), onProgress: setProgress }), [client, providerId]);
  if (loaded.error !== undefined && !loaded.data) return <LoadError error={loaded.error} what={`provider #${providerId}`} retry={loaded.reload} />;
  if (!loaded.data) {
    return (
      <div aria-busy="true">
        <p>Reading provider #{providerId} from the chain and checking its settled batches in this browser…</p>
        {progress && <p className="field-hint">{progress}</p>}
      </div>
    );
  }
  const dashboard = loaded.data;
  return (
    <div aria-busy={loaded.loading}>
      {loaded.error !== undefined && <LoadError error={loaded.error} what="the latest state" retry={loaded.reload} />}
      {dashboard.findings.length > 0 && (
        <div role="alert" className="notice error">
          <p className="notice-title">The chain audit found {dashboard.findings.length} problem{dashboard.findings.length === 1 ? "" : "s"} with this provider's settlements.</p>
          <ul>
            {dashboard.findings.slice(0, 10).map((finding) => (
              <li key={finding}>{finding}</li>
            ))}
          </ul>
        </div>
      )}
      <div className="grid">
        <ProfileCard dashboard={dashboard} />
        <EarningsCard dashboard={dashboard} />
        <BondCard dashboard={dashboard} />
      </div>
      <ModelsCard dashboard={dashboard} />
      <PlansCard dashboard={dashboard} />
      <SubscriptionPlansCard dashboard={dashboard} />
      <SignersCard dashboard={dashboard} />
      <UsageCard dashboard={dashboard} />
      <BatchesCard dashboard={dashboard} />
    </div>
  );
}
