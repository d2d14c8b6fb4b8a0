/**
 * JSON logs (pino) for every Tollgate process; each names itself in `service` so one log stream
 * can carry the gateway and the oracle. Requests are logged by id, route, status and timing only:
 * never API keys, signatures, prompts or completions. `redact` is a second line of defence should
 * a header slip in.
 */
import pino, { type Logger } from "pino";

/** The processes that log; the name lands in every line's `service` field. */
export type ServiceName = "tollgate-gateway" | "tollgate-oracle";

export function createLogger(service: ServiceName, level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service },
      redact: { paths: ["req.headers.authorization", "headers.authorization", "authorization", "key", "apiKey"], censor: "[redacted]" },
    },
    destination,
  );
}
