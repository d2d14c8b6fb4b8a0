/**
 * Usage served per model and UTC day, summed from the records the chain audit rebuilt (each batch's records,
 * priced at their epoch): the provider page's chart. The audit's own report sums by model and by day apart;
 * a chart of one against the other needs both keys at once. Pure and browser-safe.
 *
 * For a provider's page: `usageByModelAndDay(await auditDeployment(client.public, deployment, { provider: id }), { providerId: id })`.
 */
import type { AuditedBatch } from "./replay/audited-batch";
import type { Ledger } from "./replay/ledger";

export interface ModelDayUsage {
  /** UTC date of the records' serving time, YYYY-MM-DD. */
  day: string;
  modelId: number;
  providerId: number;
  name: string;
  records: number;
  inputTokens: bigint;
  cachedInputTokens: bigint;
  outputTokens: bigint;
  /** Token base units, at the price epoch each record was served in. */
  cost: bigint;
}

const SECONDS_PER_DAY = 86_400;

function utcDay(seconds: number): string {
  return new Date(Math.floor(seconds / SECONDS_PER_DAY) * SECONDS_PER_DAY * 1000).toISOString().slice(0, 10);
}

/** Rows ordered by day, then model id; only days and models with usage appear. `providerId` keeps one provider's. */
export function usageByModelAndDay(audit: { batches: readonly AuditedBatch[]; ledger: Pick<Ledger, "models"> }, filter: { providerId?: number } = {}): ModelDayUsage[] {
  const rows = new Map<string, ModelDayUsage>();
  for (const batch of audit.batches) {
    if (filter.providerId !== undefined && batch.providerId !== filter.providerId) continue;
    for (const record of batch.records) {
      const day = utcDay(record.servedAt);
      const key = `${day}:${record.modelId}`;
      let row = rows.get(key);
      if (!row) {
        const model = audit.ledger.models.get(record.modelId);
        row = { day, modelId: record.modelId, providerId: batch.providerId, name: model?.name ?? `model ${record.modelId}`, records: 0, inputTokens: 0n, cachedInputTokens: 0n, outputTokens: 0n, cost: 0n };
        rows.set(key, row);
      }
      row.records += 1;
      row.inputTokens += BigInt(record.inputTokens);
      row.cachedInputTokens += BigInt(record.cachedInputTokens);
      row.outputTokens += BigInt(record.outputTokens);
      row.cost += record.cost;
    }
  }
  return [...rows.values()].sort((a, b) => (a.day === b.day ? a.modelId - b.modelId : a.day < b.day ? -1 : 1));
}
