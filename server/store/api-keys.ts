/**
 * API keys and the nonces of wallet-signed key-management messages, kept in the usage store's
 * database so a key's running `spent` moves in the same transaction as the record that spent it.
 */
import type { Database, Statement, Transaction } from "better-sqlite3";
import { getAddress, type Address, type Hex } from "viem";
import { decodeAmount, encodeAmount } from "./migrations";

export interface ApiKeyRecord {
  /** Public id, shown in listings and usage records; the secret itself is never stored. */
  id: string;
  buyer: Address;
  keyHash: Hex;
  label: string;
  spendCap: bigint | null;
  /** Model names the key may call; null allows every model. */
  models: string[] | null;
  tags: string[];
  expiresAt: number | null;
  createdAt: number;
  revokedAt: number | null;
  /** Sum of the cost of every record made with this key. */
  spent: bigint;
}

export type NewApiKey = Omit<ApiKeyRecord, "revokedAt" | "spent">;

interface ApiKeyRow {
  id: string;
  buyer: string;
  key_hash: string;
  label: string;
  spend_cap: string | null;
  models: string | null;
  tags: string;
  expires_at: number | null;
  created_at: number;
  revoked_at: number | null;
  spent: string;
}

interface KeyOwnerRow {
  buyer: string;
  spent: string;
}

/** Hex compared as text must have one spelling, or "0xAB" and "0xab" would be two keys or two nonces. */
function canonicalHex(value: Hex): Hex {
  return value.toLowerCase() as Hex;
}

function stringArray(json: string): string[] {
  return JSON.parse(json) as string[];
}

function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    buyer: row.buyer as Address,
    keyHash: row.key_hash as Hex,
    label: row.label,
    spendCap: row.spend_cap === null ? null : decodeAmount(row.spend_cap),
    models: row.models === null ? null : stringArray(row.models),
    tags: stringArray(row.tags),
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    spent: decodeAmount(row.spent),
  };
}

export class UnknownApiKeyError extends Error {
  override name = "UnknownApiKeyError";
}

export class ApiKeyTable {
  private readonly insertStmt: Statement<[Record<string, unknown>]>;
  private readonly byHashStmt: Statement<[string], ApiKeyRow>;
  private readonly byBuyerStmt: Statement<[string], ApiKeyRow>;
  private readonly revokeStmt: Statement<[number, string, string]>;
  private readonly ownerStmt: Statement<[string], KeyOwnerRow>;
  private readonly setSpentStmt: Statement<[string, string]>;

  constructor(db: Database) {
    this.insertStmt = db.prepare(`
      INSERT INTO api_keys (id, buyer, key_hash, label, spend_cap, models, tags, expires_at, created_at)
      VALUES (@id, @buyer, @keyHash, @label, @spendCap, @models, @tags, @expiresAt, @createdAt)`);
    this.byHashStmt = db.prepare("SELECT * FROM api_keys WHERE key_hash = ?");
    // rowid after created_at: keys made in the same second list in the order they were made (ids are random).
    this.byBuyerStmt = db.prepare("SELECT * FROM api_keys WHERE buyer = ? ORDER BY created_at, rowid");
    this.revokeStmt = db.prepare(
      "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND buyer = ? AND revoked_at IS NULL",
    );
    this.ownerStmt = db.prepare("SELECT buyer, spent FROM api_keys WHERE id = ?");
    this.setSpentStmt = db.prepare("UPDATE api_keys SET spent = ? WHERE id = ?");
  }

  insert(key: NewApiKey): void {
    this.insertStmt.run({
      id: key.id,
      buyer: getAddress(key.buyer),
      keyHash: canonicalHex(key.keyHash),
      label: key.label,
      spendCap: key.spendCap === null ? null : encodeAmount(key.spendCap, "spendCap"),
      models: key.models === null ? null : JSON.stringify(key.models),
      tags: JSON.stringify(key.tags),
      expiresAt: key.expiresAt,
      createdAt: key.createdAt,
    });
  }

  findByHash(keyHash: Hex): ApiKeyRecord | undefined {
    const row = this.byHashStmt.get(canonicalHex(keyHash));
    return row && toApiKey(row);
  }

  listOf(buyer: Address): ApiKeyRecord[] {
    return this.byBuyerStmt.all(getAddress(buyer)).map(toApiKey);
  }

  revoke(buyer: Address, id: string, at: number): boolean {
    return this.revokeStmt.run(at, id, getAddress(buyer)).changes === 1;
  }

  /**
   * Adds `cost` to the key's running total and returns the key's owner. Text amounts cannot be
   * summed in SQL without passing through a float, so the sum is done here; the caller's
   * transaction makes the read-modify-write atomic.
   */
  addSpent(id: string, cost: bigint): Address {
    const row = this.ownerStmt.get(id);
    if (!row) throw new UnknownApiKeyError(`no API key with id ${id} in this store; usage must name a key it holds`);
    this.setSpentStmt.run(encodeAmount(decodeAmount(row.spent) + cost, `spent of key ${id}`), id);
    return row.buyer as Address;
  }
}

export class NonceTable {
  private readonly pruneStmt: Statement<[number]>;
  private readonly insertStmt: Statement<[string, string, number]>;
  private readonly consumeTx: Transaction<(buyer: string, nonce: string, expiresAt: number, now: number) => boolean>;

  constructor(db: Database) {
    this.pruneStmt = db.prepare("DELETE FROM used_nonces WHERE expires_at < ?");
    this.insertStmt = db.prepare(
      "INSERT INTO used_nonces (buyer, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    );
    this.consumeTx = db.transaction((buyer: string, nonce: string, expiresAt: number, now: number) => {
      this.pruneStmt.run(now);
      return this.insertStmt.run(buyer, nonce, expiresAt).changes === 1;
    });
  }

  /**
   * A pruned nonce could be accepted again, so this is replay protection only together with the
   * caller refusing messages past their expiry, which it must check before consuming.
   */
  consume(buyer: Address, nonce: Hex, expiresAt: number, now: number): boolean {
    return this.consumeTx.immediate(getAddress(buyer), canonicalHex(nonce), expiresAt, now);
  }
}
