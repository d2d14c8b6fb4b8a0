/**
 * A fake model server that speaks the real OpenAI HTTP protocol (plain `node:http`, no framework),
 * so the gateway, the adapter and the official `openai` client can be exercised with no account and
 * no network. Answers are deterministic: the same request always yields the same text and usage.
 *
 *   POST /v1/chat/completions   JSON or SSE (`stream: true`, `stream_options.include_usage`), tool calls
 *   POST /v1/embeddings         float or base64 vectors
 *   GET  /v1/models[/{id}]      a small list; any model name is accepted in requests
 *
 * Token counts use o200k_base (gpt-tokenizer), special tokens read as plain text:
 * - completion_tokens = o200k count of the returned content (+ reasoning_tokens for a model whose name
 *   contains "reasoning"), never more than `max_completion_tokens` / `max_tokens`; when the cap cuts
 *   the answer, finish_reason is "length" and the content is a token prefix of the uncapped answer.
 * - prompt_tokens follows OpenAI's cookbook formula (`countChatPromptTokens`): 3 per message, the
 *   tokens of its role, content text, name (+1), refusal, tool_call_id and tool call names and
 *   arguments, +3 priming; plus the tokens of the `tools` JSON when given; 85 per image part. For
 *   plain text messages this is exactly the cookbook count; for tools and images it is no more than
 *   the gateway's own estimate (server/gateway/metering/chat-tokens.ts), which adds framing.
 * - cached_tokens: the tokens of the longest run of leading messages (all but the last at most) that
 *   this server has seen before at the start of a request for the same model.
 *
 * Failure injection: `failureRate` (a deterministic sequence from `seed`), and per request the header
 * `x-simulate-failure`: 500 | 503 | 429 | reset | midstream | stall, and `x-simulate-latency-ms`.
 *
 * One job per file under ./simulated/: the server and its HTTP plumbing, chat planning, SSE framing,
 * embeddings, the prefix cache, token arithmetic, deterministic text and fault injection.
 */
export {
  startSimulatedUpstream,
  type SimulatedUpstream,
  type SimulatedUpstreamOptions,
  type SimulatedUpstreamStats,
} from "./simulated/server";
export { SIMULATED_MODELS } from "./simulated/models";
export { countChatPromptTokens, countMessageTokens, countTokens } from "./simulated/token-counts";
export { simulatedEmbedding } from "./simulated/embeddings";
export { prng } from "./simulated/random";
