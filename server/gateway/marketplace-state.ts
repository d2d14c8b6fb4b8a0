/**
 * The chain state the gateway serves from, cached: the models on sale with their price epochs, the
 * provider's credit plans, the gateway key's authorization, and short-lived buyer snapshots.
 *
 * Prices can only change after the on-chain notice period, so a refresh every few seconds is exact.
 * Buyer snapshots live `accountCacheMs`; concurrent calls of one buyer share one read.
 */
import { formatUnits, type Address, type PublicClient } from "viem";
import type { Logger } from "pino";
import { tollgateAbi, testUsdAbi } from "../chain/abis";
import { MarketplaceReader, type BuyerSnapshot, type CreditPlanTerms, type ModelTerms, type SignerStatus } from "../chain/marketplace-reader";
import type { ModelConfig } from "../config";
import type { SpendLedger } from "./metering/spend-ledger";

export interface ModelOnSale {
  config: ModelConfig;
  terms: ModelTerms;
}

export interface PaymentToken {
  address: Address;
  symbol: string;
  decimals: number;
}

export interface MarketplaceStateOptions {
  client: PublicClient;
  tollgate: Address;
  providerId: number;
  signer: Address;
  models: readonly ModelConfig[];
  accountCacheMs: number;
  registryRefreshMs: number;
  ledger: SpendLedger;
  logger: Logger;
  /** Fleet mode: the signers whose next sequence every buyer snapshot reads at its block (fleet/fleet-ledger.ts). */
  fleetSigners?: () => readonly Address[];
}

/** Start-up found the chain disagreeing with the configuration; the message says what to fix. */
export class MarketplaceSetupError extends Error {
  override name = "MarketplaceSetupError";
}

export class MarketplaceState {
  readonly reader: MarketplaceReader;
  private modelsByName = new Map<string, ModelOnSale>();
  private plans: CreditPlanTerms[] = [];
  private signer: SignerStatus = { providerId: 0, authorized: false, nextSequence: 0n };
  private snapshots = new Map<Address, BuyerSnapshot>();
  private inflight = new Map<Address, Promise<BuyerSnapshot>>();
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Seconds the chain's clock runs ahead of ours (a dev chain that was fast-forwarded); never negative. */
  private clockOffset = 0;
  token: PaymentToken = { address: "0x0000000000000000000000000000000000000000", symbol: "", decimals: 0 };

  constructor(private readonly options: MarketplaceStateOptions) {
    this.reader = new MarketplaceReader(options.client, options.tollgate);
  }

  /** Reads everything once and checks it against the configuration; throws `MarketplaceSetupError`. */
  async start(): Promise<void> {
    const { client, tollgate } = this.options;
    const code = await client.getCode({ address: tollgate });
    if (!code || code === "0x") {
      throw new MarketplaceSetupError(`no contract at ${tollgate} on this chain: check chain.rpcUrl and the deployment file`);
    }
    await this.refresh();
    if (this.signer.providerId !== 0 && this.signer.providerId !== this.options.providerId) {
      throw new MarketplaceSetupError(
        `the gateway key ${this.options.signer} belongs to provider ${this.signer.providerId}, not providerId ${this.options.providerId} in the config`,
      );
    }
    for (const model of this.modelsByName.values()) {
      if (model.terms.providerId !== this.options.providerId) {
        throw new MarketplaceSetupError(
          `model "${model.config.name}" is on-chain model ${model.terms.modelId} of provider ${model.terms.providerId}, not of provider ${this.options.providerId}`,
        );
      }
    }
    const tokenAddress = await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "paymentToken" });
    const [symbol, decimals] = await Promise.all([
      client.readContract({ address: tokenAddress, abi: testUsdAbi, functionName: "symbol" }).catch(() => "TOKEN"),
      client.readContract({ address: tokenAddress, abi: testUsdAbi, functionName: "decimals" }).catch(() => 18),
    ]);
    this.token = { address: tokenAddress, symbol, decimals: Number(decimals) };
    this.refreshTimer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.options.logger.warn({ err: error }, "refreshing chain state failed; serving the last known state"));
    }, this.options.registryRefreshMs);
    this.refreshTimer.unref();
  }

  stop(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
  }

  /** Re-reads prices, pauses, plans and the signer; models that fail to read keep their last state. */
  async refresh(): Promise<void> {
    const { reader } = this;
    const [block, signer, plans, terms] = await Promise.all([
      this.options.client.getBlock({ blockTag: "latest" }),
      reader.signerStatus(this.options.signer),
      reader.creditPlans(this.options.providerId),
      Promise.all(
        this.options.models.map(async (config) => {
          try {
            return await reader.modelTerms(config.modelId);
          } catch (error) {
            throw new MarketplaceSetupError(
              `model "${config.name}": cannot read on-chain model ${config.modelId} (${(error as Error).message.split("\n")[0]}); list it first or fix modelId`,
            );
          }
        }),
      ),
    ]);
    const models = new Map<string, ModelOnSale>();
    this.options.models.forEach((config, index) => models.set(config.name, { config, terms: terms[index] }));
    this.modelsByName = models;
    this.clockOffset = Math.max(0, Number(block.timestamp) - Math.floor(Date.now() / 1000));
    this.plans = plans;
    this.signer = signer;
  }

  /**
   * Unix seconds for `servedAt`: wall-clock time, or the chain's if it runs ahead, so a record is never
   * priced before an epoch the chain already considers in force, nor dated after the block that settles it.
   */
  now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffset;
  }

  model(name: string): ModelOnSale | undefined {
    return this.modelsByName.get(name);
  }

  models(): ModelOnSale[] {
    return [...this.modelsByName.values()];
  }

  creditPlans(): readonly CreditPlanTerms[] {
    return this.plans;
  }

  signerStatus(): SignerStatus {
    return this.signer;
  }

  /** True while the gateway key may report usage for the configured provider. */
  canSettle(): boolean {
    return this.signer.authorized && this.signer.providerId === this.options.providerId;
  }

  /**
   * A buyer's snapshot. Fresh (younger than `accountCacheMs`): served as is. Stale but younger than three
   * times that: served while one background read refreshes it, so a busy buyer's calls never wait on the
   * chain. Older, or never read: the call waits for the read. Concurrent callers share one read.
   * Serving slightly stale numbers is safe: a withdrawal only leaves after its delay, which is far longer,
   * and settlement records any shortfall rather than overdrawing.
   */
  async snapshot(buyer: Address): Promise<BuyerSnapshot> {
    const cached = this.snapshots.get(buyer);
    const age = cached ? Date.now() - cached.readAt : Infinity;
    if (cached && age < this.options.accountCacheMs) return cached;
    if (cached && age < this.options.accountCacheMs * 3) {
      this.read(buyer).catch((error: unknown) => this.options.logger.warn({ err: error, buyer }, "refreshing a buyer's balance failed; using the last one"));
      return cached;
    }
    return this.read(buyer);
  }

  private read(buyer: Address): Promise<BuyerSnapshot> {
    let pending = this.inflight.get(buyer);
    if (!pending) {
      pending = this.reader
        .buyerSnapshot(buyer, this.options.providerId, this.plans, this.options.signer, this.options.fleetSigners?.())
        .then((snapshot) => {
          this.snapshots.set(buyer, snapshot);
          this.options.ledger.observeSnapshot(snapshot);
          return snapshot;
        })
        .finally(() => this.inflight.delete(buyer));
      this.inflight.set(buyer, pending);
    }
    return pending;
  }

  /** Drops a cached snapshot, e.g. after the buyer was refused for lack of funds (it may have just deposited). */
  forget(buyer: Address): void {
    this.snapshots.delete(buyer);
  }

  formatAmount(amount: bigint): string {
    return formatUnits(amount, this.token.decimals);
  }
}
