/**
 * Wallet-signed read sessions (`POST /v1/sessions`): a bearer token that reads a buyer's usage, balance and
 * keys but never spends. Stored as the token's SHA-256 only, like API keys, in the usage store's database so
 * sessions outlive a gateway restart.
 */
import type { Database, Statement } from "better-sqlite3";
import { getAddress, type Address, type Hex } from "viem";

export interface ReadSession {
  tokenHash: Hex;
  buyer: Address;
  createdAt: number;
  expiresAt: number;
}

interface ReadSessionRow {
  token_hash: string;
  buyer: string;
  created_at: number;
  expires_at: number;
}

export class ReadSessionTable {
  private readonly insertStmt: Statement<[string, string, number, number]>;
  private readonly pruneStmt: Statement<[number]>;
  private readonly byHashStmt: Statement<[string, number], ReadSessionRow>;
  private readonly deleteStmt: Statement<[string]>;

  constructor(private readonly db: Database) {
    this.insertStmt = db.prepare("INSERT INTO read_sessions (token_hash, buyer, created_at, expires_at) VALUES (?, ?, ?, ?)");
    this.pruneStmt = db.prepare("DELETE FROM read_sessions WHERE expires_at <= ?");
    this.byHashStmt = db.prepare("SELECT * FROM read_sessions WHERE token_hash = ? AND expires_at > ?");
    this.deleteStmt = db.prepare("DELETE FROM read_sessions WHERE token_hash = ?");
  }

  /** Expired sessions are pruned on each insert, so the table stays as small as the live sessions. */
  insert(session: ReadSession, now: number): void {
    this.db.transaction(() => {
      this.pruneStmt.run(now);
      this.insertStmt.run(session.tokenHash.toLowerCase(), getAddress(session.buyer), session.createdAt, session.expiresAt);
    }).immediate();
  }

  /** The live session with this token hash at `now`, or undefined (unknown, ended or expired alike). */
  find(tokenHash: Hex, now: number): ReadSession | undefined {
    const row = this.byHashStmt.get(tokenHash.toLowerCase(), now);
    return row && { tokenHash: row.token_hash as Hex, buyer: row.buyer as Address, createdAt: row.created_at, expiresAt: row.expires_at };
  }

  /** False when there was no such session. */
  end(tokenHash: Hex): boolean {
    return this.deleteStmt.run(tokenHash.toLowerCase()).changes === 1;
  }
}
