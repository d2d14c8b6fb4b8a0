/**
 * Records what a workflow run produced (`POST /v1/outcomes`, the buyer's API key): a trace its calls carried
 * (`x-tollgate-trace-id`), an outcome type such as `ticket_resolved`, success or failure, and an optional value.
 * The usage summary then prices outcomes against the run's calls. Once per run and type.
 */
import { z } from "zod";
import { gatewayRequest } from "../internal/gateway-request";
import { parseGatewayResponse } from "../internal/parse-response";
import type { TollgateGatewayClient } from "../tollgate-client";

export const recordedOutcomeSchema = z.object({
  object: z.literal("outcome"),
  id: z.number().int().positive(),
  trace_id: z.string(),
  type: z.string(),
  success: z.boolean(),
  value: z.string().nullable(),
  key_id: z.string(),
  recorded_at: z.number().int(),
});

export interface RecordOutcomeParameters {
  /** An API key of the buyer whose calls carried the trace (a read session cannot record). */
  apiKey: string;
  traceId: string;
  type: string;
  success: boolean;
  /** The buyer's own measure of the outcome, as a decimal string ("12.5"). */
  value?: string;
}
export type RecordOutcomeReturnType = z.infer<typeof recordedOutcomeSchema>;
/**
 * GatewayRequestError: 404 trace_not_found (no call of this buyer carries the trace), 409 outcome_exists (the run
 * already has one of this type), 400 invalid_value / unknown_parameter naming the field; nothing is recorded then.
 */
export type RecordOutcomeErrorType = Error;

export async function recordOutcome(client: TollgateGatewayClient, { apiKey, traceId, type, success, value }: RecordOutcomeParameters): Promise<RecordOutcomeReturnType> {
  const body = await gatewayRequest<unknown>(client, "/v1/outcomes", {
    method: "POST",
    apiKey,
    body: { trace_id: traceId, type, success, ...(value === undefined ? {} : { value }) },
  });
  return parseGatewayResponse(recordedOutcomeSchema, body, "recorded outcome");
}
