/**
 * What the gateway and oracle processes share as OS processes: a graceful stop on SIGINT/SIGTERM, and a
 * start-up failure printed as one clear line with exit code 1 (a configuration problem lists each setting).
 */
import type { Logger } from "pino";
import { ConfigError } from "./config";

/** Calls `close` on the first SIGINT or SIGTERM, then exits 0 (1 if closing failed). A second signal kills at once. */
export function stopOnSignals(logger: Logger, close: () => Promise<void>): void {
  const shutdown = (signal: string) => {
    logger.info({ signal }, "shutting down");
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));
}

export function exitOnStartFailure(service: string, error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`tollgate ${service}: ${error.message}\n`);
  } else {
    process.stderr.write(`tollgate ${service} failed to start: ${(error as Error)?.message ?? error}\n`);
  }
  process.exit(1);
}
