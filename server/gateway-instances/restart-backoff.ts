/**
 * How long the launcher waits before restarting an instance that died: doubling from `initialMs` up to `maxMs`
 * while it keeps dying soon after start (a crash loop must not spin a core or flood the logs), and back to
 * `initialMs` once an instance has stayed up for `stableMs`.
 */
export interface RestartBackoffOptions {
  initialMs: number;
  maxMs: number;
  stableMs: number;
}

export const DEFAULT_RESTART_BACKOFF: RestartBackoffOptions = { initialMs: 500, maxMs: 30_000, stableMs: 30_000 };

export class RestartBackoff {
  private failures = 0;

  constructor(private readonly options: RestartBackoffOptions = DEFAULT_RESTART_BACKOFF) {}

  /** The wait before the next start, given how long the instance that just died was up. */
  next(uptimeMs: number): number {
    if (uptimeMs >= this.options.stableMs) this.failures = 0;
    const wait = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return wait;
  }
}
