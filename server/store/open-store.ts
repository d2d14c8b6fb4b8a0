/**
 * Opening a usage store: the SQLite settings its crash safety rests on, the schema, and the checks that
 * the file is the right one for this signer and this deployment and agrees with the chain's sequence,
 * all before a single record is served from it.
 */
import Database from "better-sqlite3";
import { getAddress, type Address } from "viem";
import { migrate } from "./migrations";
import { checkSequence } from "./usage-table";

export type Durability = "process-crash" | "power-loss";

export interface UsageStoreOptions {
  path: string;
  signer: Address;
  /** The chain's next sequence for this signer. */
  firstSequence: bigint;
  durability?: Durability;
  /**
   * The chain and Tollgate contract this store's records settle on. Recorded on first open and checked
   * on every later one, so a store is never replayed against a reset dev chain or another deployment.
   */
  chain?: { chainId: number; contract: Address };
  /**
   * False: this connection never checkpoints the WAL itself (SQLite's default folds the WAL back into the
   * database inside whichever COMMIT crosses 1,000 pages, fsync included, on the caller's thread). The
   * gateway turns it off and runs `WalCheckpointer` on a worker thread instead, so no answer waits on it.
   */
  autoCheckpoint?: boolean;
}

/** The chain has settled sequences of this signer that this database never wrote. */
export class StoreBehindChainError extends Error {
  override name = "StoreBehindChainError";
}

/** The chain expects a sequence below everything this database holds: those records exist nowhere. */
export class StoreChainMismatchError extends Error {
  override name = "StoreChainMismatchError";
}

/** The database belongs to another chain or another Tollgate deployment. */
export class StoreDeploymentMismatchError extends Error {
  override name = "StoreDeploymentMismatchError";
}

/** The database holds records signed by another gateway key. */
export class StoreSignerMismatchError extends Error {
  override name = "StoreSignerMismatchError";
}

const BUSY_TIMEOUT_MS = 5_000;

/** Past this, a WAL that was checkpointed is truncated back when it restarts, so a burst does not leave a huge file. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

function configure(db: Database.Database, path: string, durability: Durability, autoCheckpoint: boolean): void {
  const mode = db.pragma("journal_mode = WAL", { simple: true });
  if (mode !== "wal" && path !== ":memory:") {
    throw new Error(`the usage store at ${path} could not switch to WAL (got ${String(mode)}); its crash safety depends on it`);
  }
  // In WAL mode NORMAL only skips the fsync at commit: a killed process loses nothing (the OS still
  // has the pages), a power cut may lose the last commits. FULL fsyncs every commit.
  db.pragma(`synchronous = ${durability === "power-loss" ? "FULL" : "NORMAL"}`);
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma("foreign_keys = ON");
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  if (!autoCheckpoint) db.pragma("wal_autocheckpoint = 0");
}

/** Two queries, not one: SQLite answers a lone MIN or MAX of the rowid with one seek, but both together with a full scan. */
function sequenceBounds(db: Database.Database): { first: bigint | null; last: bigint | null } {
  const bound = (fn: "MIN" | "MAX") =>
    db.prepare<[], { value: bigint | null }>(`SELECT ${fn}(sequence) AS value FROM usage_records`).safeIntegers(true).get()
      ?.value ?? null;
  return { first: bound("MIN"), last: bound("MAX") };
}

function storeMeta(db: Database.Database, key: string): string | undefined {
  return db.prepare<[string], { value: string }>("SELECT value FROM store_meta WHERE key = ?").get(key)?.value;
}

function checkSigner(db: Database.Database, path: string, signer: Address, hasRecords: boolean): void {
  const owner = storeMeta(db, "signer") as Address | undefined;
  if (hasRecords && owner !== undefined && owner !== signer) {
    throw new StoreSignerMismatchError(
      `the usage store at ${path} holds records of gateway signer ${owner}, not ${signer}. ` +
        `Each signer key has its own sequence and needs its own store: point this gateway at the store of ` +
        `${signer}, or at a new path for a new key. Never reuse this file for another key.`,
    );
  }
}

function checkDeployment(db: Database.Database, path: string, chain: { chainId: number; contract: Address }): void {
  const expected = `${chain.chainId}:${getAddress(chain.contract)}`;
  const recorded = storeMeta(db, "deployment");
  if (recorded !== undefined && recorded !== expected) {
    throw new StoreDeploymentMismatchError(
      `the usage store at ${path} belongs to deployment ${recorded} (chain id:contract), not ${expected}. ` +
        `Its records can only settle there. If the chain was reset (a fresh dev chain), move this file away and ` +
        `start with a new store; otherwise point the gateway at the chain and deployment file it was made for.`,
    );
  }
  if (recorded === undefined) db.prepare("INSERT INTO store_meta (key, value) VALUES ('deployment', ?)").run(expected);
}

function resolveNextSequence(path: string, signer: Address, firstSequence: bigint, bounds: { first: bigint | null; last: bigint | null }): bigint {
  if (bounds.first === null || bounds.last === null) return firstSequence;
  const next = bounds.last + 1n;
  if (next < firstSequence) {
    throw new StoreBehindChainError(
      `the usage store at ${path} ends at sequence ${bounds.last} of signer ${signer}, but the chain has already ` +
        `settled up to ${firstSequence - 1n}: either this is the wrong database for this key (restore the right one), ` +
        `or the key was used by another gateway instance, which must not happen. Do not start serving with this ` +
        `store; give this gateway the store that wrote those sequences, or a fresh signer key with a new store.`,
    );
  }
  if (bounds.first > firstSequence) {
    throw new StoreChainMismatchError(
      `the chain expects signer ${signer}'s next batch to start at ${firstSequence}, but the usage store at ${path} ` +
        `starts at ${bounds.first}: sequences ${firstSequence}..${bounds.first - 1n} exist nowhere, so nothing could ` +
        `ever settle. Check the gateway points at the right chain and contract for this store.`,
    );
  }
  return next;
}

/**
 * Opens (creating if need be) and migrates the database, runs every check, and records this signer as the
 * store's owner. Returns the database and the next sequence to assign; closes the file on any refusal.
 */
export function openStore(options: UsageStoreOptions): { db: Database.Database; signer: Address; next: bigint } {
  const signer = getAddress(options.signer);
  checkSequence(options.firstSequence, "firstSequence");
  const db = new Database(options.path, { timeout: BUSY_TIMEOUT_MS });
  try {
    configure(db, options.path, options.durability ?? "process-crash", options.autoCheckpoint ?? true);
    migrate(db);
    const bounds = sequenceBounds(db);
    checkSigner(db, options.path, signer, bounds.last !== null);
    if (options.chain) checkDeployment(db, options.path, options.chain);
    const next = resolveNextSequence(options.path, signer, options.firstSequence, bounds);
    db.prepare("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('signer', ?)").run(signer);
    return { db, signer, next };
  } catch (error) {
    db.close();
    throw error;
  }
}
