/**
 * Funds: what the connected buyer can spend and why (chain and gateway), and every money action: deposit,
 * buy and transfer credits, spending limits, withdrawals, subscriptions (cancel, renew). Each figure is re-read after a transaction confirms.
 */
import type { Address } from "viem";
import { useApp } from "../../app-state";
import { LoadError } from "../../components/load-error";
import { RequireWallet } from "../../components/require-wallet";
import { BuyCreditsForm } from "./buy-credits-form";
import { CreditsHeld } from "./credits-held";
import { DepositForm } from "./deposit-form";
import { GatewayFigures } from "./gateway-figures";
import { SpendableSummary } from "./spendable-summary";
import { SpendingLimits } from "./spending-limits";
import { SubscriptionsCard } from "./subscriptions-card";
import { TransferCreditsForm } from "./transfer-credits-form";
import { useChainClock } from "./use-chain-clock";
import { useFunds } from "./use-funds";
import { WithdrawalCard } from "./withdrawal-card";

function Funds({ account }: { account: Address }) {
  const { position, catalog, capabilities, award } = useFunds(account);
  const now = useChainClock(position.data?.chainTime);
  if (position.error !== undefined && !position.data) return <LoadError error={position.error} what="your funds" retry={position.reload} />;
  if (!position.data || now === undefined) return <p aria-busy="true">Reading your funds from the chain…</p>;
  const data = position.data;
  return (
    <>
      {catalog.error !== undefined && <LoadError error={catalog.error} what="the market's plans and models" retry={catalog.reload} />}
      {capabilities.error !== undefined && <LoadError error={capabilities.error} what="what the token supports" retry={capabilities.reload} />}
      <div className="grid">
        <SpendableSummary position={data} award={award.data} now={now} />
        <GatewayFigures />
      </div>
      <CreditsHeld credits={data.credits} catalog={catalog.data} now={now} />
      <SubscriptionsCard account={account} catalog={catalog.data} now={now} />
      <div className="grid">
        <DepositForm wallet={data.wallet} capabilities={capabilities.data} />
        <BuyCreditsForm catalog={catalog.data} wallet={data.wallet} balance={data.balance} now={now} />
        <WithdrawalCard position={data} now={now} />
        <TransferCreditsForm credits={data.credits} account={account} />
      </div>
      <SpendingLimits limits={data.spendingLimits} catalog={catalog.data} now={now} />
    </>
  );
}

export function FundsPage() {
  const { account } = useApp();
  return <RequireWallet purpose="see what you can spend and move your funds">{account && <Funds key={account} account={account} />}</RequireWallet>;
}
