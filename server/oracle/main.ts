/**
 * Runs the settlement oracle from `tollgate.config.json` (or `TOLLGATE_CONFIG`) and the environment:
 * TOLLGATE_ORACLE_KEY pays gas; TOLLGATE_GATEWAY_SIGNER_KEY (or each stream's `signerKeyEnv`) signs.
 * SIGINT/SIGTERM stop it after the current pass; a transaction in flight is finished by the next run.
 *
 *   TOLLGATE_ORACLE_KEY=0x… TOLLGATE_GATEWAY_SIGNER_KEY=0x… node -r ts-node/register/transpile-only server/oracle/main.ts
 */
import { exitOnStartFailure, stopOnSignals } from "../service-process";
import { createLogger } from "../logging/logger";
import { loadOracleConfig } from "./config";
import { createOracle } from "./oracle";

async function main(): Promise<void> {
  const config = loadOracleConfig();
  const logger = createLogger("tollgate-oracle", config.logLevel);
  const oracle = await createOracle({ config, logger, defaultMetrics: true });
  stopOnSignals(logger, () => oracle.close());
  // Health first: it is what an operator looks at while a previous run's transaction is being finished.
  const url = await oracle.listen();
  // One machine-readable line, so scripts and tests know where the oracle listens.
  process.stdout.write(JSON.stringify({ event: "listening", url, sender: oracle.sender.address, streams: oracle.streams.map((s) => s.signer) }) + "\n");
  await oracle.start();
}

main().catch((error: unknown) => exitOnStartFailure("oracle", error));
