/**
 * What a buyer defines, shared by the fleet: API keys and budgets. The instance that creates, revokes or deletes one
 * writes its definition to Redis first (so a change the fleet did not take changes nothing) and then to its own SQLite;
 * the others adopt it into their SQLite (records and budget spend reference keys and budgets locally):
 *
 * - a key nobody here knows is looked up by its hash when it is presented (`lookupKey`), so a key made on another
 *   instance works on the very first call;
 * - every change bumps the buyer's version (`dv:<buyer>`), which the reserve script compares with the version this
 *   instance adopted last: a revocation or a new budget binds the next paid call on every instance, in the same round
 *   trip as the money check; a stale instance adopts the buyer's definitions (`syncBuyer`) and checks again.
 *
 * The shared store holds definitions only as well as it holds anything: an instance never deletes a key or budget
 * because Redis no longer has it (after a Redis loss, the keys each instance knows keep working on it).
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Address, Hex } from "viem";
import { BudgetExistsError, type ApiKeyRecord, type Budget, type UsageStore } from "../../store/usage-store";
import { periodStart } from "../../store/budget-periods";
import type { ApiKeyCache } from "../middleware/authenticate";
import { PUT_BUDGET_SCRIPT, PUT_KEY_SCRIPT, SYNC_BUYER_SCRIPT } from "./definition-scripts";
import type { FleetLedger } from "./fleet-ledger";
import { sharedStoreUnavailableForChange } from "./store-unavailable";
import { lower } from "./store-layout";

/** A key as the fleet shares it: what the store keeps, without this instance's spend; amounts as decimal strings. */
interface KeyDefinition {
  id: string;
  buyer: Address;
  keyHash: Hex;
  label: string;
  spendCap: string | null;
  models: string[] | null;
  tags: string[];
  expiresAt: number | null;
  createdAt: number;
  revokedAt: number | null;
}

type BudgetDefinition = Omit<Budget, "limit"> & { limit: string };

interface DefinitionCommands {
  tgPutKey(...args: string[]): Promise<number>;
  tgPutBudget(...args: string[]): Promise<number>;
  tgSyncBuyer(...args: string[]): Promise<[string, string[], string[], string[]]>;
}

export class FleetDefinitions {
  private readonly redis: Redis & DefinitionCommands;
  /** Per buyer (lower case): the version of its keys and budgets adopted last. */
  private readonly adopted = new Map<string, string>();
  /** Per buyer: the adoption running now, which a second caller waits for instead of repeating. */
  private readonly syncing = new Map<string, Promise<Map<string, bigint>>>();

  constructor(private readonly deps: { fleet: FleetLedger; store: UsageStore; keys: ApiKeyCache; logger: Logger; now: () => number }) {
    this.redis = deps.fleet.connection as Redis & DefinitionCommands;
    this.redis.defineCommand("tgPutKey", { numberOfKeys: 0, lua: PUT_KEY_SCRIPT });
    this.redis.defineCommand("tgPutBudget", { numberOfKeys: 0, lua: PUT_BUDGET_SCRIPT });
    this.redis.defineCommand("tgSyncBuyer", { numberOfKeys: 0, lua: SYNC_BUYER_SCRIPT });
  }

  /** What the reserve script compares: "0" (nothing defined in the fleet) until this instance adopted the buyer's definitions. */
  adoptedVersion(buyer: Address): string {
    return this.adopted.get(lower(buyer)) ?? "0";
  }

  /** Whether this store has the key revoked (after `syncBuyer`, as the fleet has it). */
  keyRevoked(key: Pick<ApiKeyRecord, "keyHash">): boolean {
    return (this.deps.store.findApiKeyByHash(key.keyHash)?.revokedAt ?? null) !== null;
  }

  /** Publishes a key made or revoked here, before it is written locally; throws the 503 when the fleet cannot take it. */
  async putKey(key: Omit<ApiKeyRecord, "spent">): Promise<void> {
    // Field by field: this instance's `spent` is its own (the fleet's spend per key is in the ledger's hashes).
    const { id, buyer, label, models, tags, expiresAt, createdAt, revokedAt } = key;
    const definition: KeyDefinition = { id, buyer, keyHash: key.keyHash.toLowerCase() as Hex, label, spendCap: key.spendCap?.toString() ?? null, models, tags, expiresAt, createdAt, revokedAt };
    await this.write(() => this.redis.tgPutKey(this.deps.fleet.prefix, lower(key.buyer), definition.keyHash, JSON.stringify(definition)));
  }

  /** Publishes a budget made here, or its deletion (`deletedAt` set). */
  async putBudget(budget: Budget): Promise<void> {
    const { id, buyer, scope, target, period, thresholdsBps, webhookUrl, webhookSecret, degrade, label, createdAt, deletedAt } = budget;
    const definition: BudgetDefinition = { id, buyer, scope, target, period, limit: budget.limit.toString(), thresholdsBps, webhookUrl, webhookSecret, degrade, label, createdAt, deletedAt };
    await this.write(() => this.redis.tgPutBudget(this.deps.fleet.prefix, lower(budget.buyer), budget.id, JSON.stringify(definition)));
  }

  /** A presented key this instance does not hold: adopted from the fleet if another instance made it. */
  async lookupKey(keyHash: Hex): Promise<ApiKeyRecord | undefined> {
    const json = await this.write(() => this.redis.get(`${this.deps.fleet.prefix}kd:${keyHash.toLowerCase()}`));
    if (json === null) return undefined;
    this.adoptKey(JSON.parse(json) as KeyDefinition);
    return this.deps.store.findApiKeyByHash(keyHash);
  }

  /**
   * Adopts every key and budget of the buyer the fleet holds (new ones, revocations, deletions); resolves with what the
   * other instances spent with each of its keys (key id → amount), for listings.
   */
  syncBuyer(buyer: Address): Promise<Map<string, bigint>> {
    const id = lower(buyer);
    let running = this.syncing.get(id);
    if (!running) {
      running = this.adoptAll(id).finally(() => this.syncing.delete(id));
      this.syncing.set(id, running);
    }
    return running;
  }

  private async adoptAll(buyer: string): Promise<Map<string, bigint>> {
    const [version, keys, spent, budgets] = await this.write(() => this.redis.tgSyncBuyer(this.deps.fleet.prefix, buyer, this.deps.fleet.instanceId));
    const elsewhere = new Map<string, bigint>();
    keys.forEach((json, index) => {
      const definition = JSON.parse(json) as KeyDefinition;
      this.adoptKey(definition);
      elsewhere.set(definition.id, BigInt(spent[index]));
    });
    for (const json of budgets) this.adoptBudget(JSON.parse(json) as BudgetDefinition);
    this.adopted.set(buyer, version);
    return elsewhere;
  }

  private adoptKey(definition: KeyDefinition): void {
    const { store, keys } = this.deps;
    const local = store.findApiKeyByHash(definition.keyHash);
    if (!local) {
      store.insertApiKey({ ...definition, spendCap: definition.spendCap === null ? null : BigInt(definition.spendCap) });
      this.deps.logger.info({ buyer: definition.buyer, keyId: definition.id }, "api key adopted from the fleet");
    }
    if (definition.revokedAt !== null && (!local || local.revokedAt === null)) {
      store.revokeApiKey(definition.buyer, definition.id, definition.revokedAt);
      keys.revoked(definition.id, definition.revokedAt);
    }
  }

  private adoptBudget(definition: BudgetDefinition): void {
    const { store, fleet } = this.deps;
    const local = store.budgetById(definition.id);
    if (definition.deletedAt !== null) {
      if (local && local.deletedAt === null) store.deleteBudget(definition.buyer, definition.id, definition.deletedAt);
      return;
    }
    if (local) return;
    const now = this.deps.now();
    try {
      const spend = store.createBudget({ ...definition, limit: BigInt(definition.limit) }, now);
      // What this instance served on the budget's tag or trace this period counts fleet-wide from now on.
      fleet.publishSpent(fleet.budgetPart(definition.id, periodStart(definition.period, now)), spend.spent);
    } catch (error) {
      if (!(error instanceof BudgetExistsError)) throw error;
      // Two instances made the same budget at once: each keeps its own here; both are enforced where they live.
      this.deps.logger.warn({ budgetId: definition.id, existing: error.existingId }, "a fleet budget duplicates a local one on the same scope, target and period; not adopted");
    }
  }

  /** A Redis round trip the caller cannot do without: its failure is the 503 `shared_store_unavailable`. */
  private async write<T>(op: () => Promise<T>): Promise<T> {
    if (this.redis.status !== "ready") throw sharedStoreUnavailableForChange("the shared store is unreachable");
    try {
      return await op();
    } catch (error) {
      this.deps.logger.warn({ err: (error as Error).message }, "fleet store call for keys, budgets or sessions failed");
      throw sharedStoreUnavailableForChange("the shared store did not answer in time");
    }
  }
}
