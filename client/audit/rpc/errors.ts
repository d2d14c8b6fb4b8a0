/** The one error the chain-history loader throws: what failed, where (the block range or the transaction), and what to try. */
import { TollgateClientError } from "../../errors";

export class ChainHistoryLoadError extends TollgateClientError {
  override name = "ChainHistoryLoadError";
  constructor(shortMessage: string, options: { hint?: string; details?: string; cause?: unknown } = {}) {
    super(shortMessage, options);
  }
}

/** The first line of an error's message, for messages that quote a provider's answer. */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? ((error as { shortMessage?: string }).shortMessage ?? error.message) : String(error);
  return text.split("\n")[0];
}
