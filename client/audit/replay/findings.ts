/**
 * What the chain auditor reports when the chain's data disagrees with itself or with the contracts' state:
 * one finding per disagreement, with a stable code a program can match on, a sentence a person can read,
 * where it happened, and the expected and found values. Browser-safe: types and plain functions only.
 */
import type { Address, Hash } from "viem";

/** Stable codes: renaming one is a breaking change for every tool that reads `--json`. */
export const FINDING_CODES = [
  // Reading the batch behind a BatchSettled
  "batch_data_unavailable",
  "batch_data_malformed",
  // The batch itself
  "commitment_mismatch",
  "bad_batch_signature",
  "signer_not_authorized",
  "sequence_gap",
  "sequence_overlap",
  "record_count_mismatch",
  "unknown_model",
  "model_not_of_provider",
  "unknown_price_epoch",
  "wrong_price_epoch",
  "served_in_future",
  "plan_not_of_provider",
  // What settlement did with it
  "draw_mismatch",
  "shortfall_mismatch",
  "shortfall_event_mismatch",
  "credits_burned_mismatch",
  "included_usage_mismatch",
  "fee_mismatch",
  "totals_mismatch",
  // Events that contradict the ledger rebuilt from the events before them
  "event_mismatch",
  "unmatched_token_transfer",
  "log_undecodable",
  // The ledger against the contracts' state at the audit block
  "balance_mismatch",
  "pending_mismatch",
  "withdrawable_at_mismatch",
  "credits_mismatch",
  "credit_change_mismatch",
  "spending_window_mismatch",
  "subscription_mismatch",
  "earnings_mismatch",
  "protocol_fees_mismatch",
  "bond_mismatch",
  "award_mismatch",
  "next_sequence_mismatch",
  "not_conserved",
] as const;

export type FindingCode = (typeof FINDING_CODES)[number];

/** Where a finding is: as much of it as applies. */
export interface FindingLocation {
  tx?: Hash;
  block?: bigint;
  logIndex?: number;
  signer?: Address;
  /** The batch's first sequence. */
  batch?: bigint;
  sequence?: bigint;
  buyer?: Address;
  providerId?: number;
  modelId?: number;
  planId?: bigint;
}

/** Amounts, sequences and counts are bigint; addresses and hashes are strings. */
export type FindingValue = bigint | number | string | boolean;

export interface Finding {
  code: FindingCode;
  message: string;
  where: FindingLocation;
  expected?: FindingValue;
  found?: FindingValue;
}

/** Collects findings; the replay and the checks push here, never throw, so one audit names every problem. */
export class FindingList {
  readonly items: Finding[] = [];

  add(code: FindingCode, message: string, where: FindingLocation, values: { expected?: FindingValue; found?: FindingValue } = {}): void {
    this.items.push({ code, message, where, ...values });
  }

  /** Adds a mismatch finding only when the two differ. Returns whether they agreed. */
  compare<T extends FindingValue>(code: FindingCode, what: string, where: FindingLocation, expected: T, found: T): boolean {
    if (expected === found) return true;
    this.add(code, `${what}: expected ${String(expected)}, found ${String(found)}`, where, { expected, found });
    return false;
  }
}
