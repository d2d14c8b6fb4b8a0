/**
 * Runs the gateway from `tollgate.config.json` (or `TOLLGATE_CONFIG`) and the environment.
 * SIGINT/SIGTERM shut it down gracefully: in-flight calls finish and their records are written first.
 *
 *   TOLLGATE_GATEWAY_SIGNER_KEY=0x… node -r ts-node/register/transpile-only server/gateway/main.ts
 */
import { loadGatewayConfig } from "../config";
import { createGateway } from "./gateway";
import { exitOnStartFailure, stopOnSignals } from "../service-process";
import { createLogger } from "../logging/logger";

async function main(): Promise<void> {
  const config = loadGatewayConfig();
  const base = createLogger("tollgate-gateway", config.log.level);
  // One of several instances (fleet mode): every line says which.
  const logger = config.fleet?.instanceId ? base.child({ instance: config.fleet.instanceId }) : base;
  const failpoints = (process.env.TOLLGATE_FAILPOINTS ?? "").split(",").map((name) => name.trim()).filter(Boolean);
  const gateway = await createGateway({ config, logger, defaultMetrics: true, failpoints });
  const url = await gateway.listen();
  // One machine-readable line, so scripts and tests know where the gateway listens.
  process.stdout.write(JSON.stringify({ event: "listening", url, signer: gateway.ctx.meter.signerAddress }) + "\n");
  stopOnSignals(logger, () => gateway.close());
}

main().catch((error: unknown) => exitOnStartFailure("gateway", error));
