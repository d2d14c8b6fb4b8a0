/** Everything a route needs, built once by `createGateway`. Routes know nothing of how it was built. */
import type { Address, PublicClient } from "viem";
import type { Logger } from "pino";
import type { UsageStore } from "../store/usage-store";
import type { UpstreamAdapter } from "../upstream/types";
import type { ApiKeyCache } from "./middleware/authenticate";
import type { MarketplaceState, ModelOnSale } from "./marketplace-state";
import type { ReceiptEnvelope } from "../chain/receipt-envelope";
import type { Meter } from "./metering/meter";
import type { CompiledRouting } from "./routing/routing-config";
import type { SpendLedger } from "./metering/spend-ledger";
import type { Tokenizer } from "./metering/tokenizer";
import type { GatewayMetrics } from "./metrics";
import type { FleetLedger } from "./fleet/fleet-ledger";
import type { FleetDefinitions } from "./fleet/fleet-definitions";
import type { FleetSessions } from "./fleet/fleet-sessions";

export interface GatewayContext {
  chainId: number;
  tollgate: Address;
  client: PublicClient;
  state: MarketplaceState;
  ledger: SpendLedger;
  store: UsageStore;
  meter: Meter;
  tokenizer: Tokenizer;
  keys: ApiKeyCache;
  metrics: GatewayMetrics;
  logger: Logger;
  receiptDomain: ReceiptEnvelope["domain"];
  signatureMaxAgeSeconds: number;
  /** How long a read session opened with `POST /v1/sessions` lasts. */
  sessionLifetimeSeconds: number;
  upstreamFor(model: ModelOnSale): UpstreamAdapter;
  /** Whether buyers' budget webhooks may name loopback and private addresses (`budgets.webhookAllowPrivateNetworks`). */
  webhookAllowPrivateNetworks: boolean;
  /** The provider's tiers and aliases (`auto`, …); undefined or empty when it routes nothing. */
  routing?: CompiledRouting;
  /** Fleet mode (`config.fleet`): the shared store of the provider's instances; absent for a single instance. */
  fleet?: FleetLedger;
  /** Fleet mode: keys and budgets made on any instance, adopted here (fleet/fleet-definitions.ts). */
  fleetDefinitions?: FleetDefinitions;
  /** Fleet mode: read sessions and signed messages' nonces, shared (fleet/fleet-sessions.ts). */
  fleetSessions?: FleetSessions;
}
