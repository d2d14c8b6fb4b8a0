/**
 * `GET /v1/usage`: the key's buyer's usage records with their signed receipts and settlement status,
 * filterable by key, tag, model and time, as JSON (default) or CSV (`format=csv`), for cost attribution
 * and audit. A record is settled once the chain's next sequence for this gateway key has passed it.
 */
import type { Request, Response } from "express";
import { z } from "zod";
import type { StoredUsageRecord } from "../../store/usage-store";
import type { GatewayContext } from "../context";
import { invalidRequest } from "../errors";
import { receiptEnvelope } from "../metering/meter";

const MAX_LIMIT = 10_000;
const query = z.object({
  key_id: z.string().max(64).optional(),
  tag: z.string().max(64).optional(),
  model: z.string().max(64).optional(),
  from: z.coerce.number().int().nonnegative().optional(),
  to: z.coerce.number().int().nonnegative().optional(),
  after: z.string().regex(/^\d{1,20}$/, "a sequence number").optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(1000),
  format: z.enum(["json", "csv"]).default("json"),
});

const CSV_COLUMNS = [
  "sequence", "served_at", "model", "model_id", "key_id", "tags", "endpoint", "input_tokens", "cached_input_tokens", "output_tokens",
  "reasoning_tokens", "input_price", "cached_input_price", "output_price", "cost", "count_source", "streamed", "completed",
  "status", "settlement_tx", "content_hash", "receipt_hash", "signature", "request_id",
] as const;

function csvCell(value: string): string {
  // Quote everything that could break the row, and defuse spreadsheet formulas.
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function usage(ctx: GatewayContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const parsed = query.safeParse(req.query);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalidRequest(`Invalid query parameter '${issue.path.join(".")}': ${issue.message}.`, issue.path.join("."), "invalid_value");
    }
    const q = parsed.data;
    const key = req.apiKey!;
    const records = ctx.store.recordsOf(key.buyer, {
      keyId: q.key_id,
      tag: q.tag,
      modelName: q.model,
      from: q.from,
      to: q.to,
      afterSequence: q.after === undefined ? undefined : BigInt(q.after),
      limit: q.limit,
    });
    const chainNext = (await ctx.state.reader.signerStatus(ctx.meter.signerAddress)).nextSequence;
    const status = (record: StoredUsageRecord) => (record.settlement !== null || record.sequence < chainNext ? "settled" : "unsettled");
    let total = 0n;
    for (const record of records) total += record.cost;

    if (q.format === "csv") {
      const rows = records.map((r) =>
        [
          r.sequence.toString(), String(r.servedAt), r.modelName, String(r.modelId), r.keyId, r.tags.join(" "), r.endpoint, String(r.inputTokens),
          String(r.cachedInputTokens), String(r.outputTokens), String(r.reasoningTokens), r.inputPrice.toString(), r.cachedInputPrice.toString(),
          r.outputPrice.toString(), r.cost.toString(), r.countSource, String(r.streamed), String(r.completed), status(r), r.settlement?.txHash ?? "",
          r.contentHash, r.receiptHash, r.signature, r.requestId,
        ].map(csvCell).join(","),
      );
      res.setHeader("content-type", "text/csv; charset=utf-8");
      res.setHeader("content-disposition", 'attachment; filename="tollgate-usage.csv"');
      res.send([CSV_COLUMNS.join(","), ...rows].join("\n") + "\n");
      return;
    }
    res.json({
      object: "list",
      buyer: key.buyer,
      total_cost: total.toString(),
      total_cost_formatted: ctx.state.formatAmount(total),
      has_more: records.length === q.limit,
      data: records.map((r) => ({
        sequence: r.sequence.toString(),
        served_at: r.servedAt,
        model: r.modelName,
        key_id: r.keyId,
        tags: r.tags,
        endpoint: r.endpoint,
        input_tokens: r.inputTokens,
        cached_input_tokens: r.cachedInputTokens,
        output_tokens: r.outputTokens,
        reasoning_tokens: r.reasoningTokens,
        cost: r.cost.toString(),
        streamed: r.streamed,
        completed: r.completed,
        status: status(r),
        settlement: r.settlement,
        request_id: r.requestId,
        receipt: receiptEnvelope(r, ctx.receiptDomain),
      })),
    });
  };
}
