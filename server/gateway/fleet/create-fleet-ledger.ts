/** Builds the FleetLedger from `config.fleet`: names, the settled-usage grace, and the store it re-publishes from. */
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Address } from "viem";
import type { GatewayConfig } from "../../config";
import type { UsageStore } from "../../store/usage-store";
import { FleetLedger } from "./fleet-ledger";
import { fleetKeyPrefix } from "./store-layout";

const REPUBLISH_PAGE = 10_000;
/** Beyond the account cache's life: a snapshot read slowly (RPC retries) is still in use a little after it. */
const SNAPSHOT_READ_MARGIN_MS = 60_000;

export function createFleetLedger(options: {
  config: GatewayConfig;
  fleet: NonNullable<GatewayConfig["fleet"]>;
  signer: Address;
  store: UsageStore;
  logger: Logger;
  registry: Registry;
  /** The signer's next sequence on-chain as last read: records before it are settled and not re-published. */
  chainNextSequence: () => bigint;
}): FleetLedger {
  const { config, fleet, store } = options;
  const { chainId, tollgate } = config.chain.deployment;
  return new FleetLedger({
    redisUrl: fleet.redisUrl,
    instanceId: fleet.instanceId ?? options.signer,
    signer: options.signer,
    leaseMs: fleet.leaseMs,
    timeoutMs: fleet.timeoutMs,
    prefix: fleet.keyPrefix ?? fleetKeyPrefix(chainId, tollgate, config.providerId),
    // A snapshot serves for up to three account-cache periods (marketplace-state.ts).
    settledGraceMs: 3 * config.chain.accountCacheMs + SNAPSHOT_READ_MARGIN_MS,
    logger: options.logger,
    registry: options.registry,
    *unsettledRecords() {
      const first = options.chainNextSequence();
      for (let from = first; ; ) {
        const page = store.unsettledRecords(from, REPUBLISH_PAGE);
        for (const record of page) if (record.sequence >= first) yield record;
        if (page.length < REPUBLISH_PAGE) return;
        from = page[page.length - 1].sequence + 1n;
      }
    },
  });
}
