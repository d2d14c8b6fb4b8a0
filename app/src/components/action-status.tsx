/**
 * Where an action stands, announced to screen readers as it changes: waiting for the wallet, pending with
 * the transaction's link, confirmed with its block and gas, or what went wrong and what to do.
 */
import type { TransactionProgress } from "../../../client";
import { useApp } from "../app-state";
import { transactionUrl } from "../config";
import type { ActionState } from "../lib/use-transaction";
import { ErrorNotice } from "./error-notice";

function TransactionLink({ hash }: { hash: string }) {
  const { config } = useApp();
  return (
    <a href={transactionUrl(config, hash)} className="mono" title={hash} target={config.explorerUrl ? "_blank" : undefined} rel="noreferrer">
      {hash.slice(0, 10)}…{hash.slice(-6)}
    </a>
  );
}

function ProgressLine({ progress }: { progress: TransactionProgress }) {
  if (progress.stage === "signing") return <>Confirm “{progress.description}” in your wallet…</>;
  if (progress.stage === "pending") return <>“{progress.description}” sent, waiting for the chain: <TransactionLink hash={progress.hash} /></>;
  return (
    <>
      “{progress.description}” confirmed in block {progress.blockNumber.toString()} ({progress.gasUsed.toLocaleString()} gas): <TransactionLink hash={progress.hash} />
    </>
  );
}

export function ActionStatus({ state }: { state: ActionState }) {
  if (state.status === "idle") return <div role="status" aria-live="polite" className="action-status" />;
  return (
    <div role="status" aria-live="polite" className={`action-status ${state.status}`} data-status={state.status}>
      {state.done.map((progress) => (
        <p key={progress.stage === "signing" ? progress.description : progress.hash} className="progress confirmed">
          <span aria-hidden="true">✓ </span>
          <ProgressLine progress={progress} />
        </p>
      ))}
      {state.status === "working" && (
        <p className="progress">
          <span className="spinner" aria-hidden="true" />
          {state.progress && state.progress.stage !== "confirmed" ? <ProgressLine progress={state.progress} /> : <>{state.label}: confirm in your wallet if it asks…</>}
        </p>
      )}
      {state.status === "done" && <p className="progress done">{state.message ?? `${state.label}: done.`}</p>}
      {state.status === "failed" && <ErrorNotice error={state.error} />}
    </div>
  );
}
