/**
 * JSON logs (pino). Requests are logged by id, route, status and timing only: never API keys,
 * signatures, prompts or completions. `redact` is a second line of defence should a header slip in.
 */
import pino, { type Logger } from "pino";

export function createLogger(level: string, destination?: pino.DestinationStream, service = "tollgate-gateway"): Logger {
  return pino(
    {
      level,
      base: { service },
      redact: { paths: ["req.headers.authorization", "headers.authorization", "authorization", "key", "apiKey"], censor: "[redacted]" },
    },
    destination,
  );
}
