/**
 * The usage store's schema, as an ordered list of migrations. `PRAGMA user_version` holds how many
 * have been applied; each runs in its own transaction together with the version bump, so a crash
 * mid-migration leaves the database at the previous version rather than half-migrated.
 *
 * Append new migrations; never edit a released one, since databases in the field already ran it.
 * The columns of `usage_records` are also declared in `usage-table.ts`, from which inserts and row reads
 * are derived; `test/store/usage-table.test.ts` fails if a migration and that declaration disagree.
 */
import type { Database } from "better-sqlite3";

export interface Migration {
  /** 1 for the first migration, then consecutive. */
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "usage records, API keys, signed-message nonces, store metadata",
    // STRICT tables make SQLite refuse a REAL where an INTEGER belongs, so a float can never slip
    // into a token count. Amounts are TEXT decimals: they are uint256 on-chain and exceed int64.
    sql: `
      CREATE TABLE store_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE api_keys (
        id         TEXT PRIMARY KEY,
        buyer      TEXT NOT NULL,
        key_hash   TEXT NOT NULL,
        label      TEXT NOT NULL,
        spend_cap  TEXT,
        models     TEXT,
        tags       TEXT NOT NULL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER,
        spent      TEXT NOT NULL DEFAULT '0'
      ) STRICT;
      CREATE UNIQUE INDEX api_keys_by_hash ON api_keys (key_hash);
      CREATE INDEX api_keys_by_buyer ON api_keys (buyer, created_at);

      -- sequence is the rowid: appends go to the end of the table's B-tree, and MAX(sequence)
      -- on open is a single seek.
      CREATE TABLE usage_records (
        sequence             INTEGER PRIMARY KEY,
        request_id           TEXT NOT NULL,
        buyer                TEXT NOT NULL,
        key_id               TEXT NOT NULL REFERENCES api_keys (id),
        tags                 TEXT NOT NULL,
        endpoint             TEXT NOT NULL CHECK (endpoint IN ('chat.completions', 'embeddings')),
        model_id             INTEGER NOT NULL,
        model_name           TEXT NOT NULL,
        price_epoch          INTEGER NOT NULL,
        input_tokens         INTEGER NOT NULL CHECK (input_tokens >= 0),
        cached_input_tokens  INTEGER NOT NULL CHECK (cached_input_tokens >= 0),
        output_tokens        INTEGER NOT NULL CHECK (output_tokens >= 0),
        reasoning_tokens     INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
        gateway_input_tokens  INTEGER NOT NULL CHECK (gateway_input_tokens >= 0),
        gateway_output_tokens INTEGER NOT NULL CHECK (gateway_output_tokens >= 0),
        count_source         TEXT NOT NULL CHECK (count_source IN ('upstream', 'gateway')),
        served_at            INTEGER NOT NULL,
        input_price          TEXT NOT NULL,
        cached_input_price   TEXT NOT NULL,
        output_price         TEXT NOT NULL,
        cost                 TEXT NOT NULL,
        content_hash         TEXT NOT NULL,
        content_salt         TEXT NOT NULL,
        request_hash         TEXT NOT NULL,
        response_hash        TEXT NOT NULL,
        streamed             INTEGER NOT NULL CHECK (streamed IN (0, 1)),
        completed            INTEGER NOT NULL CHECK (completed IN (0, 1)),
        receipt_hash         TEXT NOT NULL,
        signature            TEXT NOT NULL,
        settled_tx           TEXT,
        settled_batch        TEXT,
        settled_at           INTEGER,
        CHECK ((settled_tx IS NULL) = (settled_batch IS NULL) AND (settled_tx IS NULL) = (settled_at IS NULL))
      ) STRICT;
      -- One record per served call: a retried append of the same request fails instead of billing twice.
      CREATE UNIQUE INDEX usage_by_request ON usage_records (request_id);
      -- An index on buyer alone is ordered by (buyer, rowid), i.e. by sequence: pages of a buyer's
      -- records need no sort. The served_at index serves time-range filters.
      CREATE INDEX usage_by_buyer ON usage_records (buyer);
      CREATE INDEX usage_by_buyer_time ON usage_records (buyer, served_at);
      -- Partial: settled rows leave it, so the oracle's scan stays as small as the backlog.
      CREATE INDEX usage_unsettled ON usage_records (sequence) WHERE settled_tx IS NULL;

      CREATE TABLE used_nonces (
        buyer      TEXT NOT NULL,
        nonce      TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (buyer, nonce)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX used_nonces_by_expiry ON used_nonces (expires_at);
    `,
  },
  {
    version: 2,
    description: "opt-in retained call content; usage records by settling batch",
    // The exact bytes of a call, kept only when the operator turns `store.retainContent` on, so a buyer
    // can recount tokens and recompute the content hash later. A table of its own: most stores never
    // write it, and the record row stays the same size either way. The salt is already on the record.
    // The batch index serves the usage export's inclusion proofs: a batch's leaves are read by its id.
    sql: `
      CREATE TABLE usage_content (
        sequence INTEGER PRIMARY KEY REFERENCES usage_records (sequence),
        request  BLOB NOT NULL,
        response BLOB NOT NULL
      ) STRICT;
      CREATE INDEX usage_by_batch ON usage_records (settled_batch, sequence) WHERE settled_batch IS NOT NULL;
    `,
  },
  {
    version: 3,
    description: "wallet-signed read sessions",
    // Only the token's SHA-256 is kept, as for API keys: a copy of the database opens no session. Kept in the
    // store (not in memory) so a gateway restart does not sign every web app user out.
    sql: `
      CREATE TABLE read_sessions (
        token_hash TEXT PRIMARY KEY,
        buyer      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX read_sessions_by_expiry ON read_sessions (expires_at);
    `,
  },
  {
    version: 4,
    description: "call attribution (trace, step, end user, metadata, idempotency key, retries) and outcomes",
    // Attribution sits beside the record, one row per call that carries any, so calls without it write nothing
    // more. `buyer` is repeated from the record so a trace's calls are found by one index. An outcome is what a
    // trace (a workflow run) produced, posted by the buyer: one per type per trace.
    sql: `
      CREATE TABLE call_attribution (
        sequence        INTEGER PRIMARY KEY REFERENCES usage_records (sequence),
        buyer           TEXT NOT NULL,
        trace_id        TEXT,
        step            TEXT,
        end_user        TEXT,
        metadata        TEXT,
        idempotency_key TEXT,
        retry_of        INTEGER
      ) STRICT;
      CREATE INDEX attribution_by_trace ON call_attribution (buyer, trace_id) WHERE trace_id IS NOT NULL;
      CREATE INDEX attribution_by_idempotency_key ON call_attribution (buyer, idempotency_key) WHERE idempotency_key IS NOT NULL;

      CREATE TABLE outcomes (
        id          INTEGER PRIMARY KEY,
        buyer       TEXT NOT NULL,
        trace_id    TEXT NOT NULL,
        type        TEXT NOT NULL,
        success     INTEGER NOT NULL CHECK (success IN (0, 1)),
        value       TEXT,
        key_id      TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        UNIQUE (buyer, trace_id, type)
      ) STRICT;
      CREATE INDEX outcomes_by_buyer_time ON outcomes (buyer, recorded_at);
    `,
  },
  {
    version: 5,
    description: "budgets per tag or trace, their spend per period, and their threshold alerts (webhook outbox)",
    // Spend is a running counter per budget per period, moved in each record's own savepoint (see budgets.ts for
    // why not a sum over records). An alert row is written in that same savepoint when a record crosses a
    // threshold, and is the webhook's outbox: UNIQUE keeps one per threshold per period, restarts included.
    // next_attempt_at, delivered_at and failed_at are unix milliseconds: retries back off from a fraction of a second.
    sql: `
      CREATE TABLE budgets (
        id                    TEXT PRIMARY KEY,
        buyer                 TEXT NOT NULL,
        scope                 TEXT NOT NULL CHECK (scope IN ('tag', 'trace')),
        target                TEXT NOT NULL,
        period                TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
        limit_amount          TEXT NOT NULL,
        thresholds            TEXT NOT NULL,
        webhook_url           TEXT,
        webhook_secret        TEXT,
        degrade_threshold_bps INTEGER,
        degrade_model         TEXT,
        label                 TEXT NOT NULL,
        created_at            INTEGER NOT NULL,
        deleted_at            INTEGER
      ) STRICT;
      CREATE UNIQUE INDEX budgets_live ON budgets (buyer, scope, target, period) WHERE deleted_at IS NULL;
      CREATE INDEX budgets_by_buyer ON budgets (buyer, created_at);

      CREATE TABLE budget_spend (
        budget_id    TEXT NOT NULL REFERENCES budgets (id),
        period_start INTEGER NOT NULL,
        spent        TEXT NOT NULL,
        PRIMARY KEY (budget_id, period_start)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE budget_alerts (
        id              INTEGER PRIMARY KEY,
        budget_id       TEXT NOT NULL REFERENCES budgets (id),
        period_start    INTEGER NOT NULL,
        threshold_bps   INTEGER NOT NULL,
        spent           TEXT NOT NULL,
        crossed_at      INTEGER NOT NULL,
        sequence        INTEGER,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        delivered_at    INTEGER,
        failed_at       INTEGER,
        last_error      TEXT,
        UNIQUE (budget_id, period_start, threshold_bps)
      ) STRICT;
      CREATE INDEX budget_alerts_due ON budget_alerts (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
    `,
  },
  {
    version: 6,
    description: "routing decisions: the alias called, the rule that chose the tier, the dearest candidate's cost, fallbacks",
    // One row per routed call, beside its record; the dearest candidate's cost is a TEXT decimal like every amount.
    sql: `
      CREATE TABLE routing_decisions (
        sequence      INTEGER PRIMARY KEY REFERENCES usage_records (sequence),
        alias         TEXT NOT NULL,
        reason        TEXT NOT NULL,
        dearest_model TEXT NOT NULL,
        dearest_cost  TEXT NOT NULL,
        fallbacks     INTEGER NOT NULL CHECK (fallbacks >= 0)
      ) STRICT;
    `,
  },
];

export class SchemaTooNewError extends Error {
  override name = "SchemaTooNewError";
}

function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration #${i} has version ${m.version}, expected ${i + 1}`);
  });
}

/** Applies every migration the database has not run yet; returns the resulting schema version. */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number {
  checkOrder(migrations);
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > migrations.length) {
    throw new SchemaTooNewError(
      `the usage store at ${db.name} has schema version ${current}, but this gateway knows only up to ` +
        `${migrations.length}: it was written by a newer gateway. Upgrade this gateway; do not downgrade the database.`,
    );
  }
  for (const m of migrations.slice(current)) {
    // user_version lives in the database header, which SQLite writes inside the same transaction.
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return migrations.length;
}

const MAX_UINT256 = 2n ** 256n - 1n;

/**
 * The schema's encoding of money: a decimal TEXT column. SQLite integers stop at int64 and its
 * REALs round, while these amounts are uint256 on-chain; a range check here keeps a value the
 * contract could never accept from being stored as if it were billable.
 */
export function encodeAmount(value: bigint, field: string): string {
  if (typeof value !== "bigint" || value < 0n || value > MAX_UINT256) {
    throw new RangeError(`${field} must be a uint256 bigint, got ${String(value)}`);
  }
  return value.toString();
}

export function decodeAmount(text: string): bigint {
  return BigInt(text);
}
