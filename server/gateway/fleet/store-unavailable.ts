/** The 503 a paid call gets while this instance cannot reach the fleet's shared store, or has not re-published to it. */
import { GatewayError } from "../errors";

export const sharedStoreUnavailable = (why: string) =>
  new GatewayError(
    503,
    "server_error",
    `This gateway cannot check your spending against the rest of its fleet right now (${why}), so it serves no paid call. Nothing was charged; retry shortly.`,
    "shared_store_unavailable",
    null,
    { "retry-after": "2" },
  );

/** The 503 a key, budget or session change gets when the fleet cannot take it: made on one instance only, it would mislead. */
export const sharedStoreUnavailableForChange = (why: string) =>
  new GatewayError(
    503,
    "server_error",
    `This gateway cannot share this with the rest of its fleet right now (${why}), so it changed nothing. Retry shortly.`,
    "shared_store_unavailable",
    null,
    { "retry-after": "2" },
  );
