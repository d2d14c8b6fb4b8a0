/**
 * Which model a routed call (`model: "auto"` or another alias) was sent to and why, and what the dearest model
 * of its policy would have cost for the same token counts at that model's price in force when it was served:
 * the figure routing's savings are measured against. One row beside each routed record, written in the
 * record's own savepoint, so a call that was not routed writes nothing more than before. Never on-chain: the
 * signed receipt carries only the model that served.
 */
import type Database from "better-sqlite3";
import type { Address } from "viem";
import { decodeAmount, encodeAmount } from "./migrations";

export interface RoutingDecision {
  /** The alias the buyer called. */
  alias: string;
  /** The rule that set the least tier: "default", "prompt_tokens>=N", "tools", "reasoning_effort=high", "hint". */
  reason: string;
  /** The candidate of the policy that would have cost most for this call's counts. */
  dearestModel: string;
  /** What that model would have charged, in payment-token base units. */
  dearestCost: bigint;
  /** Candidates that failed upstream before this one served (none of them charged). */
  fallbacks: number;
}

/** Routed calls of a buyer over a period: what they cost, what the dearest candidates would have, and the difference. */
export interface RoutingSavings {
  routedCalls: bigint;
  cost: bigint;
  dearestCost: bigint;
  saved: bigint;
}

/** The columns a usage query adds (LEFT JOIN, `route_` prefixed) so each routed record carries its decision. */
export const ROUTING_SELECT =
  "rd.alias AS route_alias, rd.reason AS route_reason, rd.dearest_model AS route_dearest_model, rd.dearest_cost AS route_dearest_cost, rd.fallbacks AS route_fallbacks";
export const ROUTING_JOIN = "LEFT JOIN routing_decisions rd ON rd.sequence = usage_records.sequence";

/** A joined row's routing decision, or undefined when the call named its model itself. */
export function routingOfRow(row: Record<string, unknown>): RoutingDecision | undefined {
  if (row.route_alias === null || row.route_alias === undefined) return undefined;
  return {
    alias: row.route_alias as string,
    reason: row.route_reason as string,
    dearestModel: row.route_dearest_model as string,
    dearestCost: decodeAmount(row.route_dearest_cost as string),
    fallbacks: Number(row.route_fallbacks),
  };
}

type SavingsRow = { cost: string; dearest_cost: string };

export class RoutingDecisionTable {
  private readonly insertStmt: Database.Statement<[Record<string, unknown>]>;
  private readonly savingsStmt: Database.Statement<[Record<string, unknown>], SavingsRow>;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(
      "INSERT INTO routing_decisions (sequence, alias, reason, dearest_model, dearest_cost, fallbacks) VALUES (@sequence, @alias, @reason, @dearestModel, @dearestCost, @fallbacks)",
    );
    // Amounts are TEXT (uint256): summed here as bigints, never by SQLite, whose SUM would turn them into floats.
    this.savingsStmt = db.prepare<[Record<string, unknown>], SavingsRow>(`
      SELECT r.cost AS cost, d.dearest_cost AS dearest_cost FROM routing_decisions d JOIN usage_records r ON r.sequence = d.sequence
      WHERE r.buyer = @buyer AND r.served_at >= @from AND r.served_at < @to`);
  }

  /** Throws, naming the field, for a decision that cannot be stored: called before the record's receipt is signed. */
  check(decision: RoutingDecision): void {
    if (!Number.isSafeInteger(decision.fallbacks) || decision.fallbacks < 0) throw new RangeError(`fallbacks must be a non-negative integer, got ${decision.fallbacks}`);
    encodeAmount(decision.dearestCost, "dearestCost");
  }

  /** Inside the record's own savepoint, after its row. */
  insert(sequence: bigint, decision: RoutingDecision): RoutingDecision {
    this.check(decision);
    this.insertStmt.run({
      sequence,
      alias: decision.alias,
      reason: decision.reason,
      dearestModel: decision.dearestModel,
      dearestCost: encodeAmount(decision.dearestCost, "dearestCost"),
      fallbacks: decision.fallbacks,
    });
    return { ...decision };
  }

  /** Over records served in [from, to) (unix seconds; open ends when omitted). */
  savings(buyer: Address, from = 0, to = Number.MAX_SAFE_INTEGER): RoutingSavings {
    let routedCalls = 0n;
    let cost = 0n;
    let dearestCost = 0n;
    for (const row of this.savingsStmt.iterate({ buyer, from, to })) {
      routedCalls++;
      cost += decodeAmount(row.cost);
      dearestCost += decodeAmount(row.dearest_cost);
    }
    return { routedCalls, cost, dearestCost, saved: dearestCost - cost };
  }
}
