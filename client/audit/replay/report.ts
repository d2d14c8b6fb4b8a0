/**
 * The audit's report: usage and money per buyer, provider, model and UTC day, summed from the rebuilt
 * records and draws. Draws are per buyer and batch on-chain, not per record; to split them over models and
 * days, each buyer's draw in a batch is attributed to its records in sequence order: credits to the records
 * the plan covers first, then balance, the rest shortfall. Per buyer and per provider the sums are exact
 * whatever the attribution. Browser-safe.
 */
import type { Address } from "viem";
import type { DecodedRecord } from "../../../server/chain/usage-batch";

export interface UsageTotals {
  records: number;
  inputTokens: bigint;
  cachedInputTokens: bigint;
  outputTokens: bigint;
  cost: bigint;
  fromBalance: bigint;
  coveredByCredits: bigint;
  /** Drawn from subscriptions' included usage (paid for by their period prices, not by this usage). */
  coveredBySubscription: bigint;
  shortfall: bigint;
}

export interface UsageReport {
  totals: UsageTotals;
  buyers: ({ buyer: Address } & UsageTotals)[];
  providers: ({ providerId: number } & UsageTotals)[];
  models: ({ modelId: number; providerId: number; name: string } & UsageTotals)[];
  /** `day` is the UTC date of `servedAt`, YYYY-MM-DD. */
  days: ({ day: string } & UsageTotals)[];
}

export function emptyTotals(): UsageTotals {
  return { records: 0, inputTokens: 0n, cachedInputTokens: 0n, outputTokens: 0n, cost: 0n, fromBalance: 0n, coveredByCredits: 0n, coveredBySubscription: 0n, shortfall: 0n };
}

/** One record's share of its buyer's draw, as attributed above. */
export interface RecordShare {
  buyer: Address;
  providerId: number;
  modelId: number;
  servedAt: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  cost: bigint;
  fromBalance: bigint;
  coveredByCredits: bigint;
  coveredBySubscription: bigint;
  shortfall: bigint;
}

const SECONDS_PER_DAY = 86_400;

function add(totals: UsageTotals, share: RecordShare, input: bigint, cached: bigint, output: bigint): void {
  totals.records += 1;
  totals.inputTokens += input;
  totals.cachedInputTokens += cached;
  totals.outputTokens += output;
  totals.cost += share.cost;
  totals.fromBalance += share.fromBalance;
  totals.coveredByCredits += share.coveredByCredits;
  totals.coveredBySubscription += share.coveredBySubscription;
  totals.shortfall += share.shortfall;
}

export class ReportBuilder {
  private readonly totals = emptyTotals();
  private readonly buyers = new Map<Address, UsageTotals>();
  private readonly providers = new Map<number, UsageTotals>();
  private readonly models = new Map<number, UsageTotals>();
  private readonly days = new Map<number, UsageTotals>();

  add(share: RecordShare): void {
    const input = BigInt(share.inputTokens);
    const cached = BigInt(share.cachedInputTokens);
    const output = BigInt(share.outputTokens);
    add(this.totals, share, input, cached, output);
    add(this.bucket(this.buyers, share.buyer), share, input, cached, output);
    add(this.bucket(this.providers, share.providerId), share, input, cached, output);
    add(this.bucket(this.models, share.modelId), share, input, cached, output);
    add(this.bucket(this.days, Math.floor(share.servedAt / SECONDS_PER_DAY)), share, input, cached, output);
  }

  build(modelInfo: (modelId: number) => { providerId: number; name: string }): UsageReport {
    return {
      totals: this.totals,
      buyers: [...this.buyers].map(([buyer, totals]) => ({ buyer, ...totals })),
      providers: [...this.providers].sort(([a], [b]) => a - b).map(([providerId, totals]) => ({ providerId, ...totals })),
      models: [...this.models].sort(([a], [b]) => a - b).map(([modelId, totals]) => ({ modelId, ...modelInfo(modelId), ...totals })),
      days: [...this.days]
        .sort(([a], [b]) => a - b)
        .map(([day, totals]) => ({ day: new Date(day * SECONDS_PER_DAY * 1000).toISOString().slice(0, 10), ...totals })),
    };
  }

  private bucket<K>(map: Map<K, UsageTotals>, key: K): UsageTotals {
    let found = map.get(key);
    if (!found) {
      found = emptyTotals();
      map.set(key, found);
    }
    return found;
  }
}

/**
 * Splits one buyer's draw in one batch over its records, as the header says: credits to the records the plan
 * covers first, then the balance, in sequence order; what is left of each record is its shortfall. A record's
 * subscription share is exact (settlement draws included usage record by record): what it drew from included
 * value is covered, what a REFUSE plan refused is shortfall, and only the rest takes part in the split.
 */
export function attributeDraw(
  report: ReportBuilder,
  providerId: number,
  records: readonly DecodedRecord[],
  priced: readonly { cost: bigint; eligible: boolean; included?: bigint; refused?: bigint }[],
  coveredByCredits: bigint,
  fromBalance: bigint,
): void {
  let credits = coveredByCredits;
  let balance = fromBalance;
  const rest = priced.map(({ cost, included = 0n, refused = 0n }) => cost - included - refused);
  const fromCredits = priced.map(({ eligible }, i) => {
    if (!eligible || credits === 0n) return 0n;
    const share = rest[i] < credits ? rest[i] : credits;
    credits -= share;
    return share;
  });
  records.forEach((record, i) => {
    const left = rest[i] - fromCredits[i];
    const paid = left < balance ? left : balance;
    balance -= paid;
    report.add({
      buyer: record.buyer,
      providerId,
      modelId: record.modelId,
      servedAt: record.servedAt,
      inputTokens: record.inputTokens,
      cachedInputTokens: record.cachedInputTokens,
      outputTokens: record.outputTokens,
      cost: priced[i].cost,
      fromBalance: paid,
      coveredByCredits: fromCredits[i],
      coveredBySubscription: priced[i].included ?? 0n,
      shortfall: left - paid + (priced[i].refused ?? 0n),
    });
  });
}
