/**
 * The exact request and response bytes of a call, kept only when the operator opts in (`store.retainContent`),
 * so the buyer can later recount the tokens and recompute the receipt's content hash. Content never leaves
 * this table except through the usage export, to the record's own buyer; it is never logged.
 */
import type Database from "better-sqlite3";

export interface RetainedContent {
  /** The request body exactly as the buyer sent it. */
  request: Uint8Array;
  /** The response exactly as it was sent (for a stream: its `data:` events, the receipt chunk excluded). */
  response: Uint8Array;
}

type ContentRow = { sequence: bigint; request: Buffer; response: Buffer };

export class UsageContentTable {
  private readonly insertStmt: Database.Statement<[bigint, Buffer, Buffer]>;
  private readonly readStmt: Database.Statement<[bigint], ContentRow>;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare("INSERT INTO usage_content (sequence, request, response) VALUES (?, ?, ?)");
    this.readStmt = db.prepare<[bigint], ContentRow>("SELECT sequence, request, response FROM usage_content WHERE sequence = ?").safeIntegers(true);
  }

  /** Inside the record's own append transaction: the bytes are kept exactly when the record is. */
  insert(sequence: bigint, content: RetainedContent): void {
    this.insertStmt.run(sequence, Buffer.from(content.request), Buffer.from(content.response));
  }

  contentOf(sequence: bigint): RetainedContent | undefined {
    const row = this.readStmt.get(sequence);
    return row && { request: new Uint8Array(row.request), response: new Uint8Array(row.response) };
  }
}
