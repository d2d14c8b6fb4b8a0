/**
 * `POST /v1/outcomes` (the buyer's API key): records that a workflow run (a trace its calls carried) produced an
 * outcome, `{ trace_id, type, success, value? }`, so the usage summary can price outcomes against what the run's
 * calls cost. Refusals change nothing: a bad field is a 400 naming it, a trace none of this buyer's calls carry is
 * a 404 (another buyer's trace gets exactly that answer, so no trace id can be probed), a second outcome of the
 * same type for the same run is a 409.
 */
import type { Request, Response } from "express";
import { z } from "zod";
import type { GatewayContext } from "../context";
import { GatewayError, invalidRequest } from "../errors";
import { TRACE_ID } from "../http/call-attribution";
import { parseBody } from "../http/parse-body";

const OUTCOME_TYPE = /^[\w.:-]{1,64}$/;
/** The buyer's own measure of the outcome (revenue, minutes saved…): a plain decimal, kept exactly as sent. */
const DECIMAL = /^-?\d{1,60}(\.\d{1,18})?$/;

const outcomeBody = z.object({
  trace_id: z.string().regex(TRACE_ID, "a trace id as sent in x-tollgate-trace-id: 1 to 128 letters, digits or . _ : -"),
  type: z.string().regex(OUTCOME_TYPE, "1 to 64 letters, digits or . _ : - (e.g. ticket_resolved)"),
  success: z.boolean({ error: "true or false" }),
  value: z.string().regex(DECIMAL, 'a decimal string such as "12.5"').nullable().optional(),
});
const FIELDS = new Set(Object.keys(outcomeBody.shape));

export function recordOutcome(ctx: GatewayContext) {
  return async (req: Request, res: Response): Promise<void> => {
    // Named, not ignored: a misspelt field (e.g. `sucess`) must not record an outcome without it.
    const unknown = typeof req.body === "object" && req.body !== null && !Array.isArray(req.body) ? Object.keys(req.body).find((name) => !FIELDS.has(name)) : undefined;
    if (unknown !== undefined) throw invalidRequest(`Unknown field '${unknown}': an outcome has trace_id, type, success and value.`, unknown, "unknown_parameter");
    const body = parseBody(outcomeBody, req.body);
    const key = req.apiKey!;
    const result = ctx.store.recordOutcome({
      buyer: key.buyer,
      traceId: body.trace_id,
      type: body.type,
      success: body.success,
      value: body.value ?? null,
      keyId: key.id,
      // The clock records are served by, so an outcome and its run's calls fall on the same days.
      recordedAt: ctx.state.now(),
    });
    if ("refused" in result) {
      if (result.refused === "unknown_trace") {
        throw new GatewayError(
          404,
          "not_found_error",
          `No call of yours carries the trace '${body.trace_id}'. Send x-tollgate-trace-id with a run's calls, then record its outcome.`,
          "trace_not_found",
          "trace_id",
        );
      }
      throw new GatewayError(
        409,
        "invalid_request_error",
        `The run '${body.trace_id}' already has an outcome of type '${body.type}'; an outcome is recorded once per run and type.`,
        "outcome_exists",
        "type",
        // A repeat will be refused the same way: tell OpenAI clients not to retry.
        { "x-should-retry": "false" },
      );
    }
    const { outcome } = result;
    ctx.logger.info({ requestId: req.id, buyer: outcome.buyer, keyId: outcome.keyId, type: outcome.type }, "outcome recorded");
    res.status(201).json({
      object: "outcome",
      id: outcome.id,
      trace_id: outcome.traceId,
      type: outcome.type,
      success: outcome.success,
      value: outcome.value,
      key_id: outcome.keyId,
      recorded_at: outcome.recordedAt,
    });
  };
}
