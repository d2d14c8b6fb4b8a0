/**
 * The fleet's half of a call's reservation: what every other instance of the provider holds against the buyer, its
 * key and its budgets, and what they served that the chain has not settled, checked and reserved in one Redis script
 * (lua-scripts.ts) after the local SpendLedger has checked this instance's own share.
 *
 * The shared store is never the source of truth for money: each instance publishes absolute values it owns (its
 * holdings, its spend per key and budget) and its unsettled records by sequence (adding one twice changes nothing),
 * so after any loss of the connection it re-publishes all of it from its own SQLite store and memory ("rejoin")
 * before it serves a paid call again. Until then, and whenever the store cannot answer within `timeoutMs`, a paid
 * call is refused with a 503 and nothing is charged.
 *
 * Leases: an instance's holdings count only while its lease runs (renewed by a heartbeat every third of it); a dead
 * instance's reservations vanish when it ends, its unsettled records stay until the chain shows them settled.
 */
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Address } from "viem";
import { FleetMetrics } from "./fleet-metrics";
import { BUYER_OTHERS_SCRIPT, HEARTBEAT_SCRIPT, PUBLISH_USAGE_SCRIPT, REJOIN_SCRIPT, RESERVE_SCRIPT, SET_HELD_SCRIPT } from "./lua-scripts";
import { sharedStoreUnavailable } from "./store-unavailable";
import { fleetKeys, lower } from "./store-layout";

export type FleetState = "connecting" | "rejoining" | "ready" | "unavailable" | "closed";

export interface FleetLedgerOptions {
  redisUrl: string;
  instanceId: string;
  signer: Address;
  leaseMs: number;
  timeoutMs: number;
  /** store-layout.ts `fleetKeyPrefix`. */
  prefix: string;
  /** How long a record the chain settled stays counted after a snapshot first showed it settled (see lua-scripts.ts). */
  settledGraceMs: number;
  logger: Logger;
  registry: Registry;
  /** This instance's records the chain has not settled, from its SQLite store, oldest first. */
  unsettledRecords: () => Iterable<{ buyer: Address; sequence: bigint; cost: bigint }>;
}

/** One call's share of the fleet's holdings, released with the local reservation. */
export interface FleetHold {
  readonly parts: readonly string[];
  readonly amount: bigint;
  released: boolean;
}

export interface FleetCheck {
  buyer: Address;
  amount: bigint;
  /** What the local check found the buyer can spend (this instance's unsettled usage and calls in flight deducted). */
  buyerLeft: bigint;
  key: { id: string; left: bigint | null };
  budgets: readonly { id: string; periodStart: number; left: bigint }[];
  /** Each fleet signer's next sequence in the buyer's snapshot (lower-case address → sequence). */
  signerNext: ReadonlyMap<string, bigint>;
  /** The version of the buyer's keys and budgets this instance adopted last ("0": none): fleet-definitions.ts. */
  definitions: string;
}

export type FleetReserveResult =
  | { hold: FleetHold }
  /** The buyer's keys or budgets changed on another instance since this one adopted them: nothing was reserved. */
  | { stale: string }
  /** `limit`: which check refused (`budget` with its index in `budgets`); `others`: what the rest of the fleet counts there. */
  | { refused: { limit: "buyer" | "key" | "budget"; budgetIndex?: number; others: bigint } };

const REPUBLISH_CHUNK = 1_000;

interface FleetCommands {
  tgReserve(...args: string[]): Promise<string[]>;
  tgPublishUsage(...args: string[]): Promise<number>;
  tgSetHeld(...args: string[]): Promise<number>;
  tgRejoin(...args: string[]): Promise<number>;
  tgHeartbeat(...args: string[]): Promise<[number, string[]]>;
  tgBuyerOthers(...args: string[]): Promise<[string, string]>;
}

export class FleetLedger {
  readonly metrics: FleetMetrics;
  private readonly redis: Redis & FleetCommands;
  private readonly holdings = new Map<string, bigint>();
  /** This process's spend per key and budget hash, as last published: re-published on rejoin. */
  private readonly spent = new Map<string, bigint>();
  private fleetSigners: Address[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private rejoinRunning = false;
  /** Records made while the store was not ready and not yet published (the SQLite pass of a rejoin may have missed them). */
  private unpublished: { buyer: Address; sequence: bigint; cost: bigint }[] = [];
  state: FleetState = "connecting";
  lastError: string | undefined;

  constructor(private readonly options: FleetLedgerOptions) {
    this.metrics = new FleetMetrics(options.registry);
    this.fleetSigners = [options.signer];
    this.redis = new Redis(options.redisUrl, {
      // Fail fast rather than queue: a paid call must know now whether the fleet counted it.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1_000),
      retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
      lazyConnect: true,
    }) as Redis & FleetCommands;
    this.redis.defineCommand("tgReserve", { numberOfKeys: 0, lua: RESERVE_SCRIPT });
    this.redis.defineCommand("tgPublishUsage", { numberOfKeys: 0, lua: PUBLISH_USAGE_SCRIPT });
    this.redis.defineCommand("tgSetHeld", { numberOfKeys: 0, lua: SET_HELD_SCRIPT });
    this.redis.defineCommand("tgRejoin", { numberOfKeys: 0, lua: REJOIN_SCRIPT });
    this.redis.defineCommand("tgHeartbeat", { numberOfKeys: 0, lua: HEARTBEAT_SCRIPT });
    this.redis.defineCommand("tgBuyerOthers", { numberOfKeys: 0, lua: BUYER_OTHERS_SCRIPT });
    this.redis.on("ready", () => void this.rejoin());
    this.redis.on("close", () => this.lost("the connection to the shared store closed"));
    this.redis.on("error", (error: Error) => {
      if (this.lastError !== error.message) options.logger.warn({ err: error.message }, "fleet store connection error; paid calls get 503 until it is back");
      this.lastError = error.message;
    });
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  get prefix(): string {
    return this.options.prefix;
  }

  /** The shared connection, for what else the fleet shares (fleet-definitions.ts): one socket per instance. */
  get connection(): Redis {
    return this.redis;
  }

  /** Connects (in the background: until the first rejoin, paid calls get 503) and starts the heartbeat. */
  start(): void {
    this.redis.connect().catch(() => undefined);
    // A failed beat has already marked the store lost (or the rejoin that awaits it retries): nothing to add here.
    this.heartbeat = setInterval(() => this.beat().catch(() => undefined), Math.max(250, Math.floor(this.options.leaseMs / 3)));
    this.heartbeat.unref();
  }

  /** Resolves once the instance serves paid calls through the store, or rejects after `timeoutMs`. */
  async whenReady(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.state !== "ready") {
      if (Date.now() > until) throw new Error(`the fleet store at ${this.options.redisUrl} is not ready (${this.state}: ${this.lastError ?? "no error"})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    this.state = "closed";
    clearInterval(this.heartbeat);
    clearTimeout(this.retry);
    this.metrics.ready.set(0);
    this.redis.disconnect();
  }

  /** The signers of every instance that joined the fleet (this one's first): each buyer snapshot reads their sequences. */
  signers(): readonly Address[] {
    return this.fleetSigners;
  }

  /**
   * The fleet check of a call the local ledger has reserved: refused when the others' holdings and unsettled usage
   * leave less than `amount`; throws the 503 `shared_store_unavailable` when the store cannot answer.
   */
  async reserve(check: FleetCheck): Promise<FleetReserveResult> {
    if (this.state !== "ready") throw sharedStoreUnavailable(this.state === "rejoining" ? "it is re-publishing its usage after a reconnect" : "the shared store is unreachable");
    const { prefix, instanceId } = this.options;
    const limits: [string, bigint | null][] = [
      [fleetKeys.buyer(prefix, check.buyer), check.buyerLeft],
      [fleetKeys.key(prefix, check.key.id), check.key.left],
      ...check.budgets.map((budget): [string, bigint] => [fleetKeys.budget(prefix, budget.id, budget.periodStart), budget.left]),
    ];
    const hold: FleetHold = { parts: limits.map(([part]) => part), amount: check.amount, released: false };
    this.add(hold.parts, check.amount);
    const args = [prefix, instanceId, lower(this.options.signer), check.amount.toString(), String(this.options.settledGraceMs), lower(check.buyer), String(this.options.leaseMs), String(limits.length)];
    for (const [part, left] of limits) args.push(part, left === null ? "" : left.toString(), this.holdings.get(part)!.toString());
    args.push(String(check.signerNext.size));
    for (const [signer, next] of check.signerNext) args.push(signer, next.toString());
    args.push(check.definitions);
    const started = performance.now();
    let answer: string[];
    try {
      answer = await this.redis.tgReserve(...args);
    } catch (error) {
      this.undo(hold);
      this.lost((error as Error).message);
      throw sharedStoreUnavailable("the shared store did not answer in time");
    }
    this.metrics.roundTrip.observe({ op: "reserve" }, (performance.now() - started) / 1000);
    if (answer[0] === "ok") return { hold };
    this.undo(hold);
    if (answer[0] === "stale") return { stale: answer[1] };
    if (answer[0] === "lease") {
      // The heartbeat could not renew in time: others stopped counting this instance's holdings, so re-publish first.
      this.lost("this instance's lease ran out");
      throw sharedStoreUnavailable("its lease in the fleet ran out; it is re-publishing");
    }
    const index = Number(answer[1]) - 1;
    const limit = index === 0 ? "buyer" : index === 1 ? "key" : "budget";
    this.metrics.refusals.inc({ reason: limit });
    return { refused: { limit, budgetIndex: limit === "budget" ? index - 2 : undefined, others: BigInt(answer[2]) } };
  }

  /**
   * Publishes a durable record, this instance's spend on its key and budgets (absolute values), and releases the
   * hold that covered the call, in one script; never throws (a failure makes the instance rejoin).
   */
  publishUsage(record: { buyer: Address; sequence: bigint; cost: bigint }, spent: readonly { part: string; spent: bigint }[], hold?: FleetHold): void {
    for (const { part, spent: value } of spent) this.spent.set(part, value);
    const released = hold && !hold.released ? this.take(hold) : [];
    if (this.state !== "ready") {
      this.unpublished.push(record);
      return;
    }
    const { prefix, instanceId, signer } = this.options;
    const args = [prefix, instanceId, lower(signer), lower(record.buyer), record.sequence.toString(), record.cost.toString(), String(spent.length)];
    for (const { part, spent: value } of spent) args.push(part, value.toString());
    args.push(String(released.length / 2), ...released);
    const started = performance.now();
    this.redis.tgPublishUsage(...args).then(
      () => this.metrics.roundTrip.observe({ op: "publish" }, (performance.now() - started) / 1000),
      (error: Error) => this.lost(error.message),
    );
  }

  /** Releases a call's hold (after its record was published: the others count one or both, never neither). */
  release(hold: FleetHold): void {
    if (hold.released) return;
    this.undo(hold);
  }

  /** The hash a key or budget's spend is published under. */
  keyPart(keyId: string): string {
    return fleetKeys.key(this.options.prefix, keyId);
  }

  budgetPart(budgetId: string, periodStart: number): string {
    return fleetKeys.budget(this.options.prefix, budgetId, periodStart);
  }

  /**
   * For GET /v1/balance: what the other instances hold against the buyer and served that the snapshot (its signers'
   * sequences) does not show settled; undefined when the store cannot answer now.
   */
  async othersOf(buyer: Address, signerNext: ReadonlyMap<string, bigint>): Promise<{ held: bigint; unsettled: bigint } | undefined> {
    if (this.state !== "ready") return undefined;
    const args = [this.options.prefix, this.options.instanceId, lower(this.options.signer), String(this.options.settledGraceMs), lower(buyer), String(signerNext.size)];
    for (const [signer, next] of signerNext) args.push(signer, next.toString());
    try {
      const [held, unsettled] = await this.redis.tgBuyerOthers(...args);
      return { held: BigInt(held), unsettled: BigInt(unsettled) };
    } catch {
      return undefined;
    }
  }

  /** Publishes this instance's spend on a key or budget period (a budget adopted mid-period brings what it counted). */
  publishSpent(part: string, spent: bigint): void {
    this.spent.set(part, spent);
    if (this.state !== "ready") return; // rejoin publishes `spent`
    this.redis.hset(part, `s:${this.options.instanceId}`, spent.toString()).catch((error: Error) => this.lost(error.message));
  }

  /** For /health: the store's state as this instance sees it. */
  status(): { state: FleetState; instance: string; signers: number; error?: string } {
    return { state: this.state, instance: this.options.instanceId, signers: this.fleetSigners.length, ...(this.state === "ready" ? {} : { error: this.lastError }) };
  }

  private add(parts: readonly string[], amount: bigint): void {
    for (const part of parts) this.holdings.set(part, (this.holdings.get(part) ?? 0n) + amount);
  }

  /** Takes a hold out of this instance's holdings; returns (hash key, holding left) pairs to publish. */
  private take(hold: FleetHold): string[] {
    hold.released = true;
    this.add(hold.parts, -hold.amount);
    const pairs: string[] = [];
    for (const part of hold.parts) {
      const left = this.holdings.get(part)!;
      if (left === 0n) this.holdings.delete(part);
      pairs.push(part, left.toString());
    }
    return pairs;
  }

  private undo(hold: FleetHold): void {
    const pairs = this.take(hold);
    if (this.state !== "ready") return; // rejoin publishes the holdings as they are then
    this.redis.tgSetHeld(this.options.prefix, this.options.instanceId, String(pairs.length / 2), ...pairs).catch((error: Error) => this.lost(error.message));
  }

  private lost(why: string): void {
    if (this.state === "closed") return;
    this.lastError = why;
    if (this.state === "ready") this.options.logger.warn({ why }, "fleet store lost: paid calls get 503 until this instance has re-published to it");
    if (this.state !== "rejoining") this.state = "unavailable";
    this.metrics.ready.set(0);
    // A live connection (a timeout, a lost lease): rejoin on it shortly; a closed one rejoins on its "ready" event.
    if (this.redis.status === "ready" && !this.retry) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        void this.rejoin();
      }, 200);
      this.retry.unref();
    }
  }

  /** Re-publishes everything this instance owns, then takes its lease and serves again. */
  private async rejoin(): Promise<void> {
    if (this.rejoinRunning || this.state === "closed") return;
    this.rejoinRunning = true;
    this.state = "rejoining";
    // Everything recorded until now is in the store, which the pass below reads.
    this.unpublished = [];
    const started = performance.now();
    const { prefix, instanceId, signer } = this.options;
    try {
      let pipeline = this.redis.pipeline() as ReturnType<Redis["pipeline"]> & FleetCommands;
      let queued = 0;
      let published = 0;
      const flush = async () => {
        const results = (await pipeline.exec()) ?? [];
        const failed = results.find(([error]) => error);
        if (failed) throw failed[0];
        pipeline = this.redis.pipeline() as typeof pipeline;
        queued = 0;
      };
      for (const record of this.options.unsettledRecords()) {
        void pipeline.tgPublishUsage(prefix, instanceId, lower(signer), lower(record.buyer), record.sequence.toString(), record.cost.toString(), "0", "0");
        published++;
        if (++queued === REPUBLISH_CHUNK) await flush();
      }
      for (const [part, value] of this.spent) {
        pipeline.hset(part, `s:${instanceId}`, value.toString());
        if (++queued === REPUBLISH_CHUNK) await flush();
      }
      // Records that became durable while the pass above ran (it reads the store in pages, between round trips).
      for (const record of this.unpublished.splice(0)) {
        void pipeline.tgPublishUsage(prefix, instanceId, lower(signer), lower(record.buyer), record.sequence.toString(), record.cost.toString(), "0", "0");
        queued++;
      }
      if (queued > 0) await flush();
      const held = [...this.holdings].flatMap(([part, amount]) => [part, amount.toString()]);
      await this.redis.tgRejoin(prefix, instanceId, lower(signer), String(this.options.leaseMs), String(this.holdings.size), ...held);
      await this.beat();
      this.state = "ready";
      this.lastError = undefined;
      this.metrics.ready.set(1);
      this.metrics.rejoins.inc();
      for (const record of this.unpublished.splice(0)) this.publishUsage(record, []);
      this.options.logger.info({ instance: instanceId, records: published, holdings: this.holdings.size, ms: Math.round(performance.now() - started) }, "joined the fleet store: serving paid calls");
    } catch (error) {
      this.state = "unavailable";
      this.lastError = (error as Error).message;
      this.options.logger.warn({ err: this.lastError }, "re-publishing to the fleet store failed; retrying");
      if (this.redis.status === "ready") {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          void this.rejoin();
        }, 1_000);
        this.retry.unref();
      }
    } finally {
      this.rejoinRunning = false;
    }
  }

  private async beat(): Promise<void> {
    if (this.state === "closed" || this.redis.status !== "ready") return;
    const started = performance.now();
    try {
      const [alive, signers] = await this.redis.tgHeartbeat(this.options.prefix, this.options.instanceId, String(this.options.leaseMs));
      this.metrics.roundTrip.observe({ op: "heartbeat" }, (performance.now() - started) / 1000);
      const mine = lower(this.options.signer);
      this.fleetSigners = [this.options.signer, ...new Set(signers.filter((other) => other !== mine))] as Address[];
      if (!alive && this.state === "ready") this.lost("this instance's lease ran out");
    } catch (error) {
      if (this.state === "ready") this.lost((error as Error).message);
      else throw error;
    }
  }
}
