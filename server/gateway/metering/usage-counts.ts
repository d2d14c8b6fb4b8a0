/**
 * Which token counts a call is billed for.
 *
 * The upstream's reported usage is the bill (it saw the real prompt template, the cache and the
 * reasoning). The gateway's own count stands in when the upstream reports nothing (an abandoned stream,
 * a server without usage), and is exported as a cross-check either way. Whatever the source, the billed
 * counts never exceed what was reserved, so a buyer is never charged more than it authorized: a server
 * that over-reports is capped, and the difference is visible in the divergence metric.
 */
import { isUint32, MAX_UINT32 } from "../../chain/batch-limits";

export interface ReportedUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
}

export interface BilledCounts {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  source: "upstream" | "gateway";
  /** True when the upstream reported more than was reserved and the bill was capped. */
  capped: boolean;
}

// A count no batch record can hold is treated as not reported at all.
function count(value: unknown): number | undefined {
  return typeof value === "number" && isUint32(value) ? value : undefined;
}

/** Reads an OpenAI `usage` object (chat or embeddings); undefined when absent or malformed. */
export function parseReportedUsage(usage: unknown): ReportedUsage | undefined {
  if (typeof usage !== "object" || usage === null) return undefined;
  const u = usage as Record<string, unknown>;
  const promptTokens = count(u.prompt_tokens);
  if (promptTokens === undefined) return undefined;
  const promptDetails = (u.prompt_tokens_details ?? {}) as Record<string, unknown>;
  const completionDetails = (u.completion_tokens_details ?? {}) as Record<string, unknown>;
  return {
    promptTokens,
    completionTokens: count(u.completion_tokens) ?? 0,
    cachedTokens: Math.min(count(promptDetails?.cached_tokens) ?? 0, promptTokens),
    reasoningTokens: count(completionDetails?.reasoning_tokens) ?? 0,
  };
}

export function billedCounts(
  reported: ReportedUsage | undefined,
  gatewayCount: { inputTokens: number; outputTokens: number },
  reserved: { inputTokens: number; outputTokens: number },
): BilledCounts {
  const source = reported ? "upstream" : "gateway";
  const input = reported ? reported.promptTokens : gatewayCount.inputTokens;
  const output = reported ? reported.completionTokens : gatewayCount.outputTokens;
  const inputTokens = Math.min(input, reserved.inputTokens);
  const outputTokens = Math.min(output, reserved.outputTokens);
  return {
    inputTokens,
    cachedInputTokens: Math.min(reported?.cachedTokens ?? 0, inputTokens),
    outputTokens,
    reasoningTokens: Math.min(reported?.reasoningTokens ?? 0, outputTokens),
    source,
    capped: inputTokens < input || outputTokens < output,
  };
}

/**
 * The input tokens reserved for a prompt the gateway counted as `estimate`: a margin covers chat
 * templates and tool schemas that servers count slightly differently.
 */
export function reservedInputTokens(estimate: number): number {
  return Math.min(MAX_UINT32, Math.ceil(estimate * 1.1) + 32);
}
