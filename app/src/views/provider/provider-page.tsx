/**
 * Provider: the connected wallet's provider(s). None: a form to register one. Several: a selector. Then the
 * provider's tools (profile, earnings and bond, models and prices, credit plans, gateway signers) and what it
 * served (usage per model and day, settled batches with their gas and any shortfall), all read from the chain.
 */
import { useEffect, useState } from "react";
import { getProviderByOwner } from "../../../../client";
import { useApp } from "../../app-state";
import { LoadError } from "../../components/load-error";
import { RequireWallet } from "../../components/require-wallet";
import { SelectField } from "../../components/field";
import { useLoad } from "../../lib/use-load";
import { knownDeployBlock } from "./load-provider-dashboard";
import { ProviderDashboardView } from "./provider-dashboard";
import { RegisterProviderForm } from "./register-provider-form";

export function ProviderPage() {
  return (
    <RequireWallet purpose="register or manage a provider">
      <OwnedProviders />
    </RequireWallet>
  );
}

function OwnedProviders() {
  const { client, account, config } = useApp();
  const owned = useLoad(
    account ? async () => (await getProviderByOwner(client, { owner: account, fromBlock: knownDeployBlock(config.tollgate, config.deployBlock) }))?.providerIds ?? [] : undefined,
    [client, account],
  );
  const [chosen, setChosen] = useState<number>();
  const ids = owned.data ?? [];
  // A new account, or a provider just registered: follow what the chain says this wallet owns.
  useEffect(() => {
    if (ids.length > 0 && (chosen === undefined || !ids.includes(chosen))) setChosen(ids[ids.length - 1]);
  }, [ids, chosen]);

  if (owned.error !== undefined) return <LoadError error={owned.error} what="your providers" retry={owned.reload} />;
  if (!owned.data) return <p aria-busy="true">Looking for providers this wallet owns…</p>;
  if (ids.length === 0 || chosen === undefined) {
    return (
      <>
        <p>This wallet owns no provider. Register one to list models, sell credit plans and get paid for the usage your gateway serves.</p>
        <RegisterProviderForm />
      </>
    );
  }
  return (
    <>
      {ids.length > 1 && (
        <SelectField
          label="Provider"
          value={String(chosen)}
          onChange={(value) => setChosen(Number(value))}
          options={ids.map((id) => ({ value: String(id), label: `Provider #${id}` }))}
          hint={`This wallet owns ${ids.length} providers.`}
        />
      )}
      <ProviderDashboardView key={chosen} providerId={chosen} />
      <details className="card">
        <summary>Register another provider</summary>
        <RegisterProviderForm />
      </details>
    </>
  );
}
