/** A read that failed, explained, with a way to try again. */
import { useApp } from "../app-state";
import { explainError } from "../lib/explain-error";
import { ErrorNotice } from "./error-notice";

export function LoadError({ error, what, retry }: { error: unknown; what: string; retry?: () => void }) {
  const { token, config } = useApp();
  const explained = explainError(error, token, config.rpcUrl);
  return (
    <div className="load-error">
      <ErrorNotice error={{ ...explained, title: `Could not load ${what}. ${explained.title}` }} />
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}
