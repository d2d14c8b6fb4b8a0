/**
 * The chain state the gateway serves from, cached: the models on sale with their price epochs, the
 * provider's credit plans, the gateway key's authorization, and short-lived buyer snapshots.
 *
 * Prices can only change after the on-chain notice period, so a refresh every few seconds is exact.
 * Buyer snapshots live `accountCacheMs`; concurrent calls of one buyer share one read. A buyer that called in
 * the last `keepWarmMs` has its snapshot re-read in the background before it goes stale, so its next call does
 * not wait for the chain even after a pause (an agent whose model calls take 10 s each would otherwise wait for
 * an RPC round trip on every call).
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
  /** After a buyer's last call, how long its snapshot is kept fresh in the background (0: never). */
  keepWarmMs?: number;
  /** Most buyers kept warm at once; the least recently seen are let go first. */
  maxWarmBuyers?: number;
  /** Milliseconds since the epoch; tests pass their own clock. */
  clock?: () => number;
  ledger: SpendLedger;
  logger: Logger;
  /** Fleet mode: the signers whose next sequence every buyer snapshot reads at its block (fleet/fleet-ledger.ts). */
  fleetSigners?: () => readonly Address[];
}

/** Background reads a keep-warm sweep starts at most at once: the rest wait for the next sweep. */
const WARM_READS_PER_SWEEP = 8;

/** Start-up found the chain disagreeing with the configuration; the message says what to fix. */
export class MarketplaceSetupError extends Error {
  override name = "MarketplaceSetupError";
}

export class MarketplaceState {
  readonly reader: MarketplaceReader;
  private modelsByName = new Map<string, ModelOnSale>();
  private plans: CreditPlanTerms[] = [];
  private signer: SignerStatus = { providerId: 0, authorized: false, nextSequence: 0n };
  /** Each buyer's last snapshot and when its read began (by `clock`): its age counts from the block it read. */
  private snapshots = new Map<Address, { snapshot: BuyerSnapshot; at: number }>();
  private inflight = new Map<Address, Promise<BuyerSnapshot>>();
  /** Buyers kept warm, least recently seen first (a Map iterates in insertion order), with when each was last seen. */
  private warm = new Map<Address, number>();
  private readonly clock: () => number;
  private refreshTimer: NodeJS.Timeout | undefined;
  private warmTimer: NodeJS.Timeout | undefined;
  /** Seconds the chain's clock runs ahead of ours (a dev chain that was fast-forwarded); never negative. */
  private clockOffset = 0;
  token: PaymentToken = { address: "0x0000000000000000000000000000000000000000", symbol: "", decimals: 0 };

  constructor(private readonly options: MarketplaceStateOptions) {
    this.reader = new MarketplaceReader(options.client, options.tollgate);
    this.clock = options.clock ?? Date.now;
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
    if ((this.options.keepWarmMs ?? 0) > 0 && this.options.accountCacheMs > 0) {
      this.warmTimer = setInterval(() => this.keepWarm(), Math.max(100, Math.floor(this.options.accountCacheMs / 4)));
      this.warmTimer.unref();
    }
  }

  stop(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.warmTimer) clearInterval(this.warmTimer);
  }

  /**
   * One keep-warm sweep: re-reads, in the background, the snapshot of every buyer seen in the last `keepWarmMs`
   * whose snapshot is past half its life, so it is fresh again before it would make a call wait. Buyers not
   * seen for longer are let go. Returns the reads it started (tests await them).
   */
  keepWarm(): Promise<BuyerSnapshot>[] {
    const now = this.clock();
    const keepWarmMs = this.options.keepWarmMs ?? 0;
    const started: Promise<BuyerSnapshot>[] = [];
    for (const [buyer, seenAt] of this.warm) {
      if (now - seenAt > keepWarmMs) {
        this.warm.delete(buyer);
        continue;
      }
      const cached = this.snapshots.get(buyer);
      if (this.inflight.has(buyer) || (cached && now - cached.at < this.options.accountCacheMs / 2)) continue;
      if (started.length === WARM_READS_PER_SWEEP) break;
      const read = this.read(buyer);
      read.catch((error: unknown) => this.options.logger.warn({ err: error, buyer }, "keeping a buyer's balance warm failed; its next call reads it"));
      started.push(read);
    }
    return started;
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
    const now = this.clock();
    if ((this.options.keepWarmMs ?? 0) > 0) this.seen(buyer, now);
    const cached = this.snapshots.get(buyer);
    const age = cached ? now - cached.at : Infinity;
    if (cached && age < this.options.accountCacheMs) return cached.snapshot;
    if (cached && age < this.options.accountCacheMs * 3) {
      this.read(buyer).catch((error: unknown) => this.options.logger.warn({ err: error, buyer }, "refreshing a buyer's balance failed; using the last one"));
      return cached.snapshot;
    }
    return this.read(buyer);
  }

  /** Marks the buyer as just seen: most recent last, and never more than `maxWarmBuyers` kept. */
  private seen(buyer: Address, now: number): void {
    this.warm.delete(buyer);
    this.warm.set(buyer, now);
    const max = this.options.maxWarmBuyers ?? 10_000;
    if (this.warm.size > max) this.warm.delete(this.warm.keys().next().value!);
  }

  private read(buyer: Address): Promise<BuyerSnapshot> {
    let pending = this.inflight.get(buyer);
    if (!pending) {
      const at = this.clock();
      pending = this.reader
        .buyerSnapshot(buyer, this.options.providerId, this.plans, this.options.signer, this.options.fleetSigners?.())
        .then((snapshot) => {
          this.snapshots.set(buyer, { snapshot, at });
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
