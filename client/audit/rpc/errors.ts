/** The one error the chain-history loader throws: what failed, where (the block range or the transaction), and what to try. */
import { TollgateClientError } from "../../errors";

export class ChainHistoryLoadError extends TollgateClientError {
  override name = "ChainHistoryLoadError";
  constructor(shortMessage: string, options: { hint?: string; details?: string; cause?: unknown } = {}) {
    super(shortMessage, options);
  }
}

/**
 * The provider's own words for a failure, on one line. viem keeps them in `details` (its `shortMessage` is
 * generic: "Invalid parameters were provided to the RPC method."), on the deepest error of the cause chain.
 */
export function firstLine(error: unknown): string {
  let details: string | undefined;
  let current = error as { details?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 10; depth++) {
    if (typeof current.details === "string" && current.details) details = current.details;
    current = current.cause as typeof current;
  }
  const text = details ?? (error instanceof Error ? ((error as { shortMessage?: string }).shortMessage ?? error.message) : String(error));
  return text.split("\n")[0];
}
