/**
 * Runs the gateway from `tollgate.config.json` (or `TOLLGATE_CONFIG`) and the environment.
 * SIGINT/SIGTERM shut it down gracefully: in-flight calls finish and their records are written first.
 *
 *   TOLLGATE_GATEWAY_SIGNER_KEY=0x… node -r ts-node/register/transpile-only server/gateway/main.ts
 */
import { ConfigError, loadGatewayConfig } from "../config";
import { createGateway } from "./gateway";
import { createLogger } from "./logger";

async function main(): Promise<void> {
  const config = loadGatewayConfig();
  const logger = createLogger(config.log.level);
  const gateway = await createGateway({ config, logger, defaultMetrics: true });
  const url = await gateway.listen();
  // One machine-readable line, so scripts and tests know where the gateway listens.
  process.stdout.write(JSON.stringify({ event: "listening", url, signer: gateway.ctx.meter.signerAddress }) + "\n");
  const shutdown = (signal: string) => {
    logger.info({ signal }, "shutting down");
    gateway.close().then(
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

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`tollgate gateway: ${error.message}\n`);
  } else {
    process.stderr.write(`tollgate gateway failed to start: ${(error as Error)?.message ?? error}\n`);
  }
  process.exit(1);
});
