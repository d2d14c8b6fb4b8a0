/**
 * `GET /v1/usage`: the key's (or read session's) buyer's usage records with their signed receipts and settlement status,
 * filterable by key, tag, model and time, as JSON (default) or CSV (`format=csv`), for cost attribution
 * and audit. A record is settled once the chain's next sequence for this gateway key has passed it.
 *
 * For a record the oracle has marked settled, the export carries what the buyer needs to prove it was
 * settled as receipted (`tollgate audit receipts`): the batch's first sequence, its content root and the
 * Merkle proof of the record's receipt hash, built here from the batch's leaves in this store. With
 * `include_content=true` (JSON only) it also carries the call's retained bytes, when the operator keeps them.
 */
import type { Request, Response } from "express";
import type { Hex } from "viem";
import { z } from "zod";
import { merkleProofs, merkleRoot } from "../../chain/merkle";
import type { StoredUsageRecord, UsageStore } from "../../store/usage-store";
import type { GatewayContext } from "../context";
import { invalidRequest } from "../errors";
import { csvCell } from "../http/csv";
import { receiptEnvelope } from "../metering/meter";
import { readerOf } from "../middleware/authenticate";

const MAX_LIMIT = 10_000;
const query = z.object({
  key_id: z.string().max(64).optional(),
  tag: z.string().max(64).optional(),
  model: z.string().max(64).optional(),
  trace_id: z.string().max(128).optional(),
  from: z.coerce.number().int().nonnegative().optional(),
  to: z.coerce.number().int().nonnegative().optional(),
  after: z.string().regex(/^\d{1,20}$/, "a sequence number").optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(1000),
  format: z.enum(["json", "csv"]).default("json"),
  include_content: z.enum(["true", "false"]).default("false"),
});

const CSV_COLUMNS = [
  "sequence", "served_at", "model", "model_id", "key_id", "tags", "endpoint", "input_tokens", "cached_input_tokens", "output_tokens",
  "reasoning_tokens", "input_price", "cached_input_price", "output_price", "cost", "count_source", "streamed", "completed",
  "status", "settlement_tx", "content_hash", "receipt_hash", "signature", "request_id",
  // Appended (readers index columns by name, older ones by position): with these a row alone rebuilds its
  // receipt, its content commitment and its inclusion proof.
  "buyer", "signer", "content_salt", "request_hash", "response_hash", "settlement_batch", "batch_first_sequence", "content_root", "merkle_proof",
  // Attribution (issue 13): empty for a call that carried none; metadata is its JSON.
  "trace_id", "step", "user", "metadata", "idempotency_key", "retry_of",
] as const;

/** Where a settled record sits in its batch: what `verifyReceiptSettled` and an off-chain check need. */
interface InclusionProof {
  firstSequence: bigint;
  contentRoot: Hex;
  proof: Hex[];
}

/**
 * Inclusion proofs for the records of one export, each batch's tree built once. Undefined for a record not
 * (yet) marked settled, or one whose batch this store holds only in part (it was not built from this store).
 */
function inclusionProofs(store: UsageStore) {
  const batches = new Map<string, Map<bigint, InclusionProof> | undefined>();
  return (record: StoredUsageRecord): InclusionProof | undefined => {
    const batchId = record.settlement?.batchId;
    if (batchId === undefined) return undefined;
    if (!batches.has(batchId)) {
      const leaves = store.settledBatchLeaves(batchId);
      let proofs: Map<bigint, InclusionProof> | undefined;
      if (leaves) {
        const contentRoot = merkleRoot(leaves.receiptHashes);
        proofs = new Map(
          merkleProofs(leaves.receiptHashes).map((proof, i) => [leaves.firstSequence + BigInt(i), { firstSequence: leaves.firstSequence, contentRoot, proof }]),
        );
      }
      batches.set(batchId, proofs);
    }
    return batches.get(batchId)?.get(record.sequence);
  };
}

/** Base64 of the retained bytes: JSON cannot carry bytes, and these must arrive exactly as exchanged. */
function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

export function usage(ctx: GatewayContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const parsed = query.safeParse(req.query);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalidRequest(`Invalid query parameter '${issue.path.join(".")}': ${issue.message}.`, issue.path.join("."), "invalid_value");
    }
    const q = parsed.data;
    if (q.include_content === "true" && q.format === "csv") {
      throw invalidRequest("include_content=true is available in the JSON export only: request format=json.", "include_content", "invalid_value");
    }
    // All the buyer's keys, whether asked with one of them or with a read session.
    const buyer = readerOf(req);
    const records = ctx.store.recordsOf(buyer, {
      keyId: q.key_id,
      tag: q.tag,
      modelName: q.model,
      traceId: q.trace_id,
      from: q.from,
      to: q.to,
      afterSequence: q.after === undefined ? undefined : BigInt(q.after),
      limit: q.limit,
    });
    const chainNext = (await ctx.state.reader.signerStatus(ctx.meter.signerAddress)).nextSequence;
    const status = (record: StoredUsageRecord) => (record.settlement !== null || record.sequence < chainNext ? "settled" : "unsettled");
    let total = 0n;
    for (const record of records) total += record.cost;
    const proofOf = inclusionProofs(ctx.store);

    if (q.format === "csv") {
      const rows = records.map((r) =>
        [
          r.sequence.toString(), String(r.servedAt), r.modelName, String(r.modelId), r.keyId, r.tags.join(" "), r.endpoint, String(r.inputTokens),
          String(r.cachedInputTokens), String(r.outputTokens), String(r.reasoningTokens), r.inputPrice.toString(), r.cachedInputPrice.toString(),
          r.outputPrice.toString(), r.cost.toString(), r.countSource, String(r.streamed), String(r.completed), status(r), r.settlement?.txHash ?? "",
          r.contentHash, r.receiptHash, r.signature, r.requestId,
          r.buyer, r.signer, r.contentSalt, r.requestHash, r.responseHash, r.settlement?.batchId ?? "",
          ...((proof) => [proof?.firstSequence.toString() ?? "", proof?.contentRoot ?? "", proof?.proof.join(" ") ?? ""])(proofOf(r)),
          ...((a) => [a?.traceId ?? "", a?.step ?? "", a?.user ?? "", a?.metadata ? JSON.stringify(a.metadata) : "", a?.idempotencyKey ?? "", a?.retryOf?.toString() ?? ""])(r.attribution),
        ].map(csvCell).join(","),
      );
      res.setHeader("content-type", "text/csv; charset=utf-8");
      res.setHeader("content-disposition", 'attachment; filename="tollgate-usage.csv"');
      res.send([CSV_COLUMNS.join(","), ...rows].join("\n") + "\n");
      return;
    }
    res.json({
      object: "list",
      buyer,
      total_cost: total.toString(),
      total_cost_formatted: ctx.state.formatAmount(total),
      has_more: records.length === q.limit,
      // The filters this export was made with, so an auditor knows which on-chain records it should cover.
      filters: {
        key_id: q.key_id ?? null,
        tag: q.tag ?? null,
        model: q.model ?? null,
        trace_id: q.trace_id ?? null,
        from: q.from ?? null,
        to: q.to ?? null,
        after: q.after ?? null,
        limit: q.limit,
      },
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
        settlement: r.settlement && settlementOf(r.settlement, proofOf(r)),
        request_id: r.requestId,
        ...attributionFields(r),
        routing: routingFields(r),
        receipt: receiptEnvelope(r, ctx.receiptDomain),
        ...(q.include_content === "true" ? { retained_content: retainedContent(ctx, r) } : {}),
      })),
    });
  };
}

/** How a routed call chose its model and what the dearest candidate would have cost; null for a call that named its model. */
function routingFields(record: StoredUsageRecord) {
  const d = record.routing;
  if (!d) return null;
  return { alias: d.alias, reason: d.reason, fallbacks: d.fallbacks, dearest_model: d.dearestModel, dearest_cost: d.dearestCost.toString(), saved: (d.dearestCost - record.cost).toString() };
}

/** A record's attribution in the export: null fields for a call that carried none, so every row has the same shape. */
function attributionFields(record: StoredUsageRecord) {
  const a = record.attribution;
  return {
    trace_id: a?.traceId ?? null,
    step: a?.step ?? null,
    user: a?.user ?? null,
    metadata: a?.metadata ?? null,
    idempotency_key: a?.idempotencyKey ?? null,
    retry_of: a?.retryOf?.toString() ?? null,
  };
}

function settlementOf(settlement: NonNullable<StoredUsageRecord["settlement"]>, proof: InclusionProof | undefined) {
  return {
    ...settlement,
    firstSequence: proof?.firstSequence.toString() ?? null,
    contentRoot: proof?.contentRoot ?? null,
    proof: proof?.proof ?? null,
  };
}

/**
 * The call's exact bytes, base64, with what a recount needs to know of the model; null when the gateway did
 * not retain them. Only ever the key's own buyer's records reach here (`recordsOf(key.buyer)`).
 */
function retainedContent(ctx: GatewayContext, record: StoredUsageRecord) {
  const content = ctx.store.contentOf(record.sequence);
  if (!content) return null;
  return {
    request: base64(content.request),
    response: base64(content.response),
    encoding: ctx.state.model(record.modelName)?.config.encoding ?? null,
    endpoint: record.endpoint,
    streamed: record.streamed,
  };
}
