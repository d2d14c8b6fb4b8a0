/**
 * `POST /v1/chat/completions`, streaming and not. The flow of one call (DESIGN.md):
 * validate → count the prompt → reserve → call upstream → count what came back → write the record and
 * sign the receipt → respond → release the reservation.
 *
 * Unknown parameters and tools pass through untouched. Upstream usage is always requested
 * (`stream_options.include_usage`) and stripped again if the client did not ask for it.
 */
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { z } from "zod";
import { UpstreamError } from "../../upstream/types";
import type { GatewayContext } from "../context";
import { GatewayError, invalidRequest, modelNotFound } from "../errors";
import type { ReservedCall } from "../metering/meter";
import { parseReportedUsage, type ReportedUsage } from "../metering/usage-counts";
import { callAttribution } from "../http/call-attribution";
import type { MeteredRequest } from "../http/metered-request";
import { parseBody } from "../http/parse-body";
import { sendMeteredJson } from "../http/receipt-header";
import { upstreamFailure } from "../http/upstream-failure";
import { countChatOutput, OutputTextCollector } from "../metering/output-text";
import { minTierHint } from "../http/min-tier-hint";
import type { ModelOnSale } from "../marketplace-state";
import { planRoute } from "../routing/route-plan";
import type { RoutingPolicy } from "../routing/routing-config";
import type { ApiKeyRecord } from "../../store/usage-store";
import { budgetDegrade } from "../budgets/budget-degrade";

const MAX_CHOICES = 8;

const chatBody = z.looseObject({
  model: z.string({ error: "you must provide a model parameter" }).min(1),
  messages: z.array(z.looseObject({ role: z.string() }), { error: "messages must be an array of message objects" }).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  n: z.number().int().min(1).max(MAX_CHOICES).nullish(),
  tools: z.array(z.unknown()).nullish(),
  store: z.boolean().nullish(),
  // Passed through as sent; routing rules read the values OpenAI defines.
  reasoning_effort: z.unknown().optional(),
});

/** On a routed answer: the alias the buyer called, the rule that chose the tier, and how many candidates failed first. */
export const ROUTED_FROM_HEADER = "x-tollgate-routed-from";
export const ROUTE_REASON_HEADER = "x-tollgate-route-reason";
export const ROUTE_FALLBACKS_HEADER = "x-tollgate-route-fallbacks";

export function chatCompletions(ctx: GatewayContext) {
  return async (req: MeteredRequest, res: ServerResponse): Promise<void> => {
    const body = parseBody(chatBody, req.body);
    const attribution = callAttribution(req.headers, body);
    const key = req.apiKey;
    const choices = body.n ?? 1;
    const policy = ctx.routing?.policies.get(body.model);
    const asked = policy ? await routedCall(ctx, req, body, policy) : await namedModelCall(ctx, key, body);
    const plan = await degradedPlan(ctx, key, body, attribution?.traceId, asked);

    const abort = new AbortController();
    let clientGone = false;
    res.on("close", () => {
      if (!res.writableFinished) {
        clientGone = true;
        abort.abort();
      }
    });
    const clientWantsUsage = body.stream_options?.include_usage === true;
    // A routed call whose model server fails before answering moves on to the next candidate: the failed try is
    // released uncharged and the next one reserved at its own prices. Nothing has reached the client by then
    // (a stream's headers go out only once its upstream answered), so the buyer sees one answer or one error.
    for (let attempt = 0; ; attempt++) {
      const { model, promptTokens, maxTokens } = plan.attempts[attempt];
      const call = await ctx.meter.reserve(key, model, promptTokens, maxTokens * choices, attribution);
      if (plan.route) call.route = { alias: plan.route.alias, reason: plan.route.reason, fallbacks: attempt, policyModels: plan.route.policyModels };
      try {
        // The upstream gets the model's upstream name and an explicit output bound, so it cannot produce
        // more than was reserved; the client's own parameters and tools pass through as they were.
        const upstreamBody: Record<string, unknown> = { ...(req.body as Record<string, unknown>), model: model.config.upstreamModel ?? model.config.name };
        if (body.max_completion_tokens == null) upstreamBody.max_tokens = maxTokens;
        if (body.stream) upstreamBody.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
        // OpenAI refuses `metadata` unless the completion is stored (`store: true`); a buyer who sends it only to
        // attribute its spend here must not have the call fail upstream because of it.
        if (body.store !== true) delete upstreamBody.metadata;

        const upstream = ctx.upstreamFor(model);
        let answer;
        try {
          answer = await upstream.send({ endpoint: "/chat/completions", body: upstreamBody, signal: abort.signal, requestId: req.id });
        } catch (error) {
          if (clientGone) return; // the client left before anything was produced: nothing to charge
          const failure = upstreamFailure(ctx, upstream.name, error);
          // A 4xx passed through is about the request itself: another model would refuse it too.
          if (failure.status >= 500 && attempt + 1 < plan.attempts.length) {
            ctx.metrics.routeFallbacks.inc({ alias: plan.route!.alias, from_model: model.config.name });
            ctx.logger.warn({ requestId: req.id, model: model.config.name, upstream: upstream.name, code: failure.code, next: plan.attempts[attempt + 1].model.config.name }, "routed call: upstream failed, trying the next candidate");
            continue;
          }
          throw failure;
        }
        if (plan.route) {
          req.responseHeaders.push(ROUTED_FROM_HEADER, plan.route.alias, ROUTE_REASON_HEADER, plan.route.reason, ROUTE_FALLBACKS_HEADER, String(attempt));
        }
        if (answer.kind === "json") {
          await respondJson(ctx, req, res, call, promptTokens, answer.body);
        } else {
          await respondStream(ctx, req, res, call, promptTokens, answer.events, clientWantsUsage, () => clientGone);
        }
        return;
      } finally {
        ctx.meter.release(call);
      }
    }
  };
}

type ChatBody = z.infer<typeof chatBody>;

/** The models a call may be served by, in the order to try them, and the route when it named an alias. */
interface CallPlan {
  attempts: { model: ModelOnSale; promptTokens: number; maxTokens: number }[];
  route?: { alias: string; reason: string; policyModels: readonly ModelOnSale[] };
}

/**
 * The plan a budget past its degrade threshold turns the call into: the model its rule names, with no fallback,
 * the route saying which budget and how far it is spent, and the model(s) first chosen kept as what the call
 * would have cost (the usage report's routing savings). A degrade model this key may not use, or that cannot
 * serve the request, leaves the call as it was, with a warning in the log.
 */
async function degradedPlan(ctx: GatewayContext, key: ApiKeyRecord, body: ChatBody, traceId: string | undefined, plan: CallPlan): Promise<CallPlan> {
  const chosen = plan.attempts[0].model;
  const degrade = budgetDegrade(ctx.store, { buyer: key.buyer, tags: key.tags, traceId, chosenModel: chosen.config.name, now: ctx.state.now() });
  if (!degrade) return plan;
  let degraded: CallPlan;
  try {
    degraded = await namedModelCall(ctx, key, { ...body, model: degrade.model });
  } catch (error) {
    ctx.logger.warn({ budget: degrade.budget.id, model: degrade.model, err: error }, "a budget's degrade model cannot serve this call; serving the model asked for");
    return plan;
  }
  const percent = `${degrade.spentBps / 100n}.${String(degrade.spentBps % 100n).padStart(2, "0")}%`;
  return {
    attempts: degraded.attempts,
    route: {
      alias: plan.route?.alias ?? body.model,
      reason: `budget ${degrade.budget.id} at ${percent}`,
      policyModels: [...(plan.route?.policyModels ?? [chosen]), degraded.attempts[0].model],
    },
  };
}

/** A call that names its model: that model or an error, as before routing existed. */
async function namedModelCall(ctx: GatewayContext, key: ApiKeyRecord, body: ChatBody): Promise<CallPlan> {
  const model = ctx.state.model(body.model);
  if (!model || model.config.kind !== "chat") throw modelNotFound(body.model);
  if (key.models && !key.models.includes(model.config.name)) {
    throw new GatewayError(403, "permission_error", `API key ${key.id} may not use the model \`${model.config.name}\`. It may use: ${key.models.join(", ")}.`, "model_not_allowed", "model");
  }
  const requested = body.max_completion_tokens ?? body.max_tokens;
  if (requested && requested > model.config.maxOutputTokens) {
    throw invalidRequest(
      `max_tokens is too large: ${requested}. The model \`${model.config.name}\` produces at most ${model.config.maxOutputTokens} tokens per choice.`,
      body.max_completion_tokens ? "max_completion_tokens" : "max_tokens",
      "max_tokens_too_large",
    );
  }
  const encoding = model.config.encoding;
  const promptTokens =
    ctx.tokenizer.countChatPromptSync(encoding, body.messages, body.tools ?? undefined) ??
    (await ctx.tokenizer.countChatPrompt(encoding, body.messages, body.tools ?? undefined));
  return { attempts: [{ model, promptTokens, maxTokens: requested ?? model.config.maxOutputTokens }] };
}

/** A call to an alias (`auto`): the cheapest candidates good enough for it (routing/route-plan.ts). */
async function routedCall(ctx: GatewayContext, req: MeteredRequest, body: ChatBody, policy: RoutingPolicy): Promise<CallPlan> {
  const levels = ctx.routing!.levels;
  const plan = await planRoute(ctx, levels, policy, req.apiKey, {
    messages: body.messages,
    tools: body.tools ?? undefined,
    reasoningEffort: body.reasoning_effort,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    choices: body.n ?? 1,
    hint: minTierHint(req.headers, levels),
  });
  return { attempts: plan.attempts, route: { alias: plan.alias, reason: plan.reason, policyModels: plan.policyModels } };
}

async function respondJson(ctx: GatewayContext, req: MeteredRequest, res: ServerResponse, call: ReservedCall, promptTokens: number, body: Record<string, unknown>): Promise<void> {
  body.model = call.model.config.name;
  const outputTokens = countChatOutput(ctx.tokenizer, call.model.config.encoding, body);
  const responseBytes = Buffer.from(JSON.stringify(body));
  const { envelope } = await ctx.meter.record(call, {
    requestId: req.id,
    endpoint: "chat.completions",
    reported: parseReportedUsage(body.usage),
    gatewayCount: { inputTokens: promptTokens, outputTokens: await outputTokens },
    requestBytes: req.rawBody,
    responseBytes,
    streamed: false,
    completed: true,
  });
  sendMeteredJson(res, envelope, responseBytes, req.responseHeaders);
}

async function respondStream(
  ctx: GatewayContext,
  req: MeteredRequest,
  res: ServerResponse,
  call: ReservedCall,
  promptTokens: number,
  events: AsyncIterable<string>,
  clientWantsUsage: boolean,
  clientGone: () => boolean,
): Promise<void> {
  const sent: Buffer[] = [];
  const output = new OutputTextCollector();
  let reported: ReportedUsage | undefined;
  let lastChunk: Record<string, unknown> | undefined;

  res.writeHead(200, [...req.responseHeaders, "content-type", "text/event-stream; charset=utf-8", "cache-control", "no-cache", "connection", "keep-alive"]);
  res.flushHeaders();

  // Events parsed from one upstream read are written while the socket is corked and leave in one syscall
  // when the tick ends, instead of one write each: the first token is not delayed, a burst is coalesced.
  let corked = false;
  const uncork = () => {
    corked = false;
    res.uncork();
  };
  const write = async (payload: string): Promise<void> => {
    const bytes = Buffer.from(`data: ${payload}\n\n`);
    sent.push(bytes);
    if (!corked) {
      corked = true;
      res.cork();
      process.nextTick(uncork);
    }
    if (!res.write(bytes) && !clientGone()) await Promise.race([once(res, "drain"), once(res, "close")]);
  };

  try {
    for await (const data of events) {
      if (data === "[DONE]") break;
      let chunk: Record<string, unknown>;
      try {
        chunk = JSON.parse(data) as Record<string, unknown>;
      } catch {
        throw new UpstreamError("the upstream sent a stream event that is not JSON", undefined, "bad_response");
      }
      lastChunk = chunk;
      if (chunk.error) throw new UpstreamError("the upstream reported an error mid-stream", undefined, "bad_status");
      chunk.model = call.model.config.name;
      output.addChunk(chunk);
      if (chunk.usage != null) reported = parseReportedUsage(chunk.usage) ?? reported;
      if (!clientWantsUsage) {
        // We asked for usage; the client did not. Drop the usage-only chunk and the field elsewhere.
        const choices = chunk.choices as unknown[] | undefined;
        if (chunk.usage !== undefined && (!choices || choices.length === 0)) continue;
        delete chunk.usage;
      }
      if (clientGone()) break;
      await write(JSON.stringify(chunk));
    }
  } catch (error) {
    if (!clientGone()) {
      // An upstream failure mid-stream costs nothing: no record, an error event, and the stream ends.
      ctx.metrics.upstreamErrors.inc({ upstream: ctx.upstreamFor(call.model).name, reason: error instanceof UpstreamError ? error.reason : "unknown" });
      const failure = upstreamFailure(ctx, ctx.upstreamFor(call.model).name, error, false);
      res.end(`data: ${JSON.stringify(failure.toJSON())}\n\n`);
      return;
    }
  }

  // Served (fully, or until the client left): charge for what was produced.
  const completed = !clientGone();
  const outputTokens = await output.count(ctx.tokenizer, call.model.config.encoding);
  const { envelope } = await ctx.meter.record(call, {
    requestId: req.id,
    endpoint: "chat.completions",
    reported: completed ? reported : undefined,
    gatewayCount: { inputTokens: promptTokens, outputTokens },
    requestBytes: req.rawBody,
    responseBytes: Buffer.concat(sent),
    streamed: true,
    completed,
  });
  if (!completed) return;
  const receiptChunk = {
    id: lastChunk?.id ?? `chatcmpl-${req.id}`,
    object: "chat.completion.chunk",
    created: lastChunk?.created ?? Math.floor(Date.now() / 1000),
    model: call.model.config.name,
    choices: [],
    tollgate_receipt: envelope,
  };
  res.write(`data: ${JSON.stringify(receiptChunk)}\n\n`);
  res.end("data: [DONE]\n\n");
}

