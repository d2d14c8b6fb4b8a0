/**
 * The id each request goes by. A client may offer its own in `x-request-id` (to find the call in its logs and in
 * `/v1/usage`), but an id is also the key of a usage record, which is recorded once. So an offered id is taken
 * only when it is sane and no record or request in flight has it; otherwise the request gets a new id, and the
 * `x-request-id` of the answer says which. A client that resends its id (a retry library copying headers, say)
 * is served under a fresh id rather than answered 500 after the upstream already did the work.
 */
import { randomUUID } from "node:crypto";

const CLIENT_ID = /^[\w.:-]{1,128}$/;

/** An id the client offered in `x-request-id`, when it is sane; else undefined (a new one is made). */
export function offeredRequestId(offered: string | string[] | undefined): string | undefined {
  return typeof offered === "string" && CLIENT_ID.test(offered) ? offered : undefined;
}

export class RequestIds {
  /** Offered ids of requests not yet answered: their records may not be written yet. */
  private readonly inFlight = new Set<string>();

  /** `recorded(id)`: whether a usage record already has this request id. */
  constructor(private readonly recorded: (id: string) => boolean) {}

  /** The request's id; call `release` with it once the request has ended (answered or abandoned). */
  take(offered: string | string[] | undefined): string {
    const id = offeredRequestId(offered);
    if (id === undefined || this.inFlight.has(id) || this.recorded(id)) return randomUUID();
    this.inFlight.add(id);
    return id;
  }

  release(id: string): void {
    this.inFlight.delete(id);
  }
}
