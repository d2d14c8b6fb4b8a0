/**
 * `POST /v1/embeddings`: billed for input tokens only (output price does not apply). The input may be
 * a string, an array of strings, or pre-tokenized arrays, as in OpenAI's API.
 */
import type { ServerResponse } from "node:http";
import { z } from "zod";
import type { GatewayContext } from "../context";
import { GatewayError, modelNotFound } from "../errors";
import { countEmbeddingInput } from "../metering/embedding-input";
import { parseReportedUsage } from "../metering/usage-counts";
import { callAttribution } from "../http/call-attribution";
import type { MeteredRequest } from "../http/metered-request";
import { parseBody } from "../http/parse-body";
import { sendMeteredJson } from "../http/receipt-header";
import { upstreamFailure } from "../http/upstream-failure";

const MAX_INPUTS = 2048;
const tokenArray = z.array(z.number().int().nonnegative()).min(1);
const embeddingsBody = z.looseObject({
  model: z.string({ error: "you must provide a model parameter" }).min(1),
  input: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(MAX_INPUTS), tokenArray, z.array(tokenArray).min(1).max(MAX_INPUTS)], {
    error: "input must be a non-empty string, an array of strings, or an array of token arrays",
  }),
});

export function embeddings(ctx: GatewayContext) {
  return async (req: MeteredRequest, res: ServerResponse): Promise<void> => {
    const body = parseBody(embeddingsBody, req.body);
    const attribution = callAttribution(req.headers, body);
    const key = req.apiKey;
    const model = ctx.state.model(body.model);
    if (!model || model.config.kind !== "embeddings") throw modelNotFound(body.model);
    if (key.models && !key.models.includes(model.config.name)) {
      throw new GatewayError(403, "permission_error", `API key ${key.id} may not use the model \`${model.config.name}\`.`, "model_not_allowed", "model");
    }
    const inputTokens = await countEmbeddingInput(ctx.tokenizer, model.config.encoding, body.input);

    const call = await ctx.meter.reserve(key, model, inputTokens, 0, attribution);
    try {
      const abort = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) abort.abort();
      });
      const upstream = ctx.upstreamFor(model);
      let answer;
      try {
        // `metadata` is the gateway's (attribution); the embeddings API has no such field.
        const { metadata: _attributionOnly, ...forwarded } = req.body as Record<string, unknown>;
        answer = await upstream.send({ endpoint: "/embeddings", body: { ...forwarded, model: model.config.upstreamModel ?? model.config.name }, signal: abort.signal, requestId: req.id });
      } catch (error) {
        if (abort.signal.aborted) return;
        throw upstreamFailure(ctx, upstream.name, error);
      }
      if (answer.kind !== "json") throw upstreamFailure(ctx, upstream.name, new Error("the upstream streamed an embeddings answer"));
      const responseBody = { ...answer.body, model: model.config.name };
      const responseBytes = Buffer.from(JSON.stringify(responseBody));
      const reported = parseReportedUsage(answer.body.usage);
      const { envelope } = await ctx.meter.record(call, {
        requestId: req.id,
        endpoint: "embeddings",
        reported: reported && { ...reported, completionTokens: 0, reasoningTokens: 0 },
        gatewayCount: { inputTokens, outputTokens: 0 },
        requestBytes: req.rawBody,
        responseBytes,
        streamed: false,
        completed: true,
      });
      sendMeteredJson(res, envelope, responseBytes, req.responseHeaders);
    } finally {
      ctx.meter.release(call);
    }
  };
}
