/** A chat answer as server-sent events, the way OpenAI streams it, and writing them at a chosen pace. */
import { decode } from "gpt-tokenizer/encoding/o200k_base";
import { type ChatPlan, SYSTEM_FINGERPRINT } from "./chat";
import { type Ctx, wait } from "./http";
import { prng } from "./random";

/** The fields every chunk of one answer repeats, in OpenAI's order. */
function chunkEnvelope(plan: ChatPlan): Record<string, unknown> {
  return {
    id: plan.id,
    object: "chat.completion.chunk",
    created: plan.created,
    model: plan.model,
    service_tier: "default",
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

/** The SSE events of a streamed answer, each a complete `data: ...\n\n` frame, `[DONE]` last. */
export function chatStreamFrames(plan: ChatPlan, includeUsage: boolean): string[] {
  const frames: string[] = [];
  const chunk = (delta: Record<string, unknown>, finish: string | null) => {
    const c: Record<string, unknown> = {
      ...chunkEnvelope(plan),
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
    if (includeUsage) c.usage = null;
    frames.push(`data: ${JSON.stringify(c)}\n\n`);
  };
  const rng = prng(plan.seed);
  if (plan.toolCall) {
    const call = plan.toolCall;
    chunk(
      {
        role: "assistant",
        content: null,
        tool_calls: [{ index: 0, id: call.id, type: "function", function: { name: call.name, arguments: "" } }],
        refusal: null,
      },
      null,
    );
    for (let i = 0; i < call.arguments.length; ) {
      const n = 4 + Math.floor(rng() * 12);
      chunk({ tool_calls: [{ index: 0, function: { arguments: call.arguments.slice(i, i + n) } }] }, null);
      i += n;
    }
  } else {
    chunk({ role: "assistant", content: "", refusal: null }, null);
    const tokens = plan.contentTokens;
    for (let i = 0; i < tokens.length; ) {
      const n = 1 + Math.floor(rng() * 4);
      chunk({ content: decode(tokens.slice(i, i + n)) }, null);
      i += n;
    }
  }
  chunk({}, plan.finishReason);
  if (includeUsage) {
    frames.push(
      `data: ${JSON.stringify({ ...chunkEnvelope(plan), choices: [], usage: plan.usage })}\n\n`,
    );
  }
  frames.push("data: [DONE]\n\n");
  return frames;
}

/**
 * Writes the frames one by one with `interTokenDelayMs` between them, waiting for the socket to
 * drain; stops as soon as the client goes away, so an abandoned answer stops "generating".
 */
export async function writeFramesPaced(ctx: Ctx, frames: readonly string[], interTokenDelayMs: number): Promise<void> {
  for (let i = 0; i < frames.length; i++) {
    if (ctx.closed) return;
    if (!ctx.res.write(frames[i]) && !ctx.closed) {
      await new Promise<void>((resolve) => {
        ctx.res.once("drain", resolve);
        ctx.onClose = resolve;
      });
      ctx.onClose = null;
    }
    if (i < frames.length - 1 && !(await wait(ctx, interTokenDelayMs))) return;
  }
  ctx.res.end();
}
