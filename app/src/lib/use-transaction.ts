/**
 * Runs one user action (one or more transactions, or a signature) through the connected wallet and follows
 * it: waiting for the wallet, pending on the chain (with the hash), confirmed (block, gas), or failed with
 * the reason explained. Actions that send several transactions (approve, then deposit) report each one.
 */
import { useCallback, useRef, useState } from "react";
import { withWallet, type TollgateClient, type TransactionProgress } from "../../../client";
import { useApp } from "../app-state";
import { explainError, type ExplainedError } from "./explain-error";

export type ActionState =
  | { status: "idle" }
  | { status: "working"; label: string; progress?: TransactionProgress; done: TransactionProgress[] }
  | { status: "done"; label: string; done: TransactionProgress[]; message?: string }
  | { status: "failed"; label: string; done: TransactionProgress[]; error: ExplainedError };

export interface Action {
  state: ActionState;
  busy: boolean;
  /** Runs `work` with a client that signs through the wallet; resolves with its result, or undefined when it failed (the state says why). */
  run<T>(label: string, work: (client: TollgateClient) => Promise<T>, describe?: (result: T) => string | undefined): Promise<T | undefined>;
  reset(): void;
}

export function useAction(): Action {
  const { client, token, config, refresh } = useApp();
  const [state, setState] = useState<ActionState>({ status: "idle" });
  const running = useRef(false);
  const run = useCallback(
    async <T,>(label: string, work: (client: TollgateClient) => Promise<T>, describe?: (result: T) => string | undefined) => {
      if (running.current) return undefined;
      running.current = true;
      const done: TransactionProgress[] = [];
      setState({ status: "working", label, done });
      try {
        if (!client.wallet) throw new Error("Connect a wallet on the deployment's network first.");
        const signing = withWallet(client, client.wallet, (progress) => {
          if (progress.stage === "confirmed") done.push(progress);
          setState({ status: "working", label, progress, done: [...done] });
        });
        const result = await work(signing);
        setState({ status: "done", label, done: [...done], message: describe?.(result) });
        if (done.length > 0) refresh();
        return result;
      } catch (error) {
        setState({ status: "failed", label, done: [...done], error: explainError(error, token, config.rpcUrl) });
        // A first transaction (an approval) may have confirmed before the second failed.
        if (done.length > 0) refresh();
        return undefined;
      } finally {
        running.current = false;
      }
    },
    [client, token, config.rpcUrl, refresh],
  );
  const reset = useCallback(() => setState({ status: "idle" }), []);
  return { state, busy: state.status === "working", run, reset };
}
