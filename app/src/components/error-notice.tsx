/** A failure said plainly: what happened, the detail (a decoded custom error), and what to do. */
import type { ExplainedError } from "../lib/explain-error";

export function ErrorNotice({ error }: { error: ExplainedError }) {
  return (
    <div role="alert" className={error.rejected ? "notice warning" : "notice error"} data-revert={error.revert}>
      <p className="notice-title">{error.title}</p>
      {error.detail && <p className="notice-detail">{error.detail}</p>}
      {error.hint && <p className="notice-hint">{error.hint}</p>}
    </div>
  );
}
