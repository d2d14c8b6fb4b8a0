/**
 * Every JSON-RPC request the loader makes goes through here: counted (per method, retries included, since a
 * provider bills each one), retried with backoff when the provider fails for a moment, and given back raw
 * when it refuses a range, for the log scan to narrow.
 */
import type { PublicClient } from "viem";
import { ChainHistoryLoadError, firstLine } from "./errors";
import { classifyRpcError } from "./provider-errors";
import { backoffDelay, DEFAULT_RETRY_POLICY, sleep as realSleep, type RetryPolicy } from "./retry";

export interface RpcCallerOptions {
  retry?: Partial<RetryPolicy>;
  /** Replaced in tests, so backoff costs no wall time. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Told of each retry: what failed and how long until the next attempt. */
  onRetry?: (info: { what: string; attempt: number; delayMs: number; error: unknown }) => void;
}

export class RpcCaller {
  requests = 0;
  retries = 0;
  readonly byMethod: Record<string, number> = {};
  readonly policy: RetryPolicy;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    readonly client: PublicClient,
    private readonly options: RpcCallerOptions = {},
  ) {
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.sleep = options.sleep ?? realSleep;
    this.random = options.random ?? Math.random;
  }

  /** One request, counted, with no retry of any kind (viem's own retries are turned off so the count is true). */
  async once<T>(method: string, params: unknown[]): Promise<T> {
    this.requests++;
    this.byMethod[method] = (this.byMethod[method] ?? 0) + 1;
    const request = this.client.request as (args: { method: string; params: unknown[] }, options: { retryCount: number; dedupe: boolean }) => Promise<T>;
    return request({ method, params }, { retryCount: 0, dedupe: false });
  }

  /**
   * A request retried while the provider fails transiently. A range refusal is thrown as it came (the caller
   * narrows the range); anything else, or a transient failure that outlasts the retries, becomes a
   * ChainHistoryLoadError naming `what`.
   */
  async call<T>(method: string, params: unknown[], what: string, options: { timeoutMeansTooLarge?: boolean } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<T>(method, params);
      } catch (error) {
        const { kind } = classifyRpcError(error);
        if (kind === "range") throw error;
        if (options.timeoutMeansTooLarge && isTimeout(error)) throw new RangeTimeoutError(what, error);
        if (kind === "fatal") {
          throw new ChainHistoryLoadError(`${what} failed: ${firstLine(error)}`, {
            cause: error,
            hint: "the node refused the request; check that the RPC URL serves this chain and that it supports the method (an archive node for old blocks)",
          });
        }
        if (attempt >= this.policy.retries) {
          throw new ChainHistoryLoadError(`${what} still failed after ${attempt + 1} attempts: ${firstLine(error)}`, {
            cause: error,
            hint: "the provider is rate-limiting or failing; wait and run again (a checkpoint resumes the scan), or use another RPC URL",
          });
        }
        const delayMs = backoffDelay(attempt, this.policy, this.random);
        this.retries++;
        this.options.onRetry?.({ what, attempt: attempt + 1, delayMs, error });
        await this.sleep(delayMs);
      }
    }
  }
}

/** A log query that timed out: the scan treats it as a range too large for the provider and narrows it. */
export class RangeTimeoutError extends Error {
  override name = "RangeTimeoutError";
  constructor(what: string, cause: unknown) {
    super(`${what} timed out (block range too large for the provider?)`, { cause });
  }
}

function isTimeout(error: unknown): boolean {
  for (let current = error as { name?: unknown; status?: unknown; cause?: unknown } | undefined, depth = 0; current && depth < 10; depth++) {
    if (current.name === "TimeoutError" || current.status === 504 || current.status === 408) return true;
    current = current.cause as typeof current;
  }
  return false;
}

/** Runs `task` over `items` with at most `limit` in flight, keeping the order of results. */
export async function mapWithLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
