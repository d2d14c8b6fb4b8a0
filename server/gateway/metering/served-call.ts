/**
 * What the HTTP side hands the meter about one served call. A file of its own because both the meter and
 * the metrics read it: kept in meter.ts, it made metrics.ts and meter.ts import each other.
 */
import type { ReportedUsage } from "./usage-counts";

export interface ServedCall {
  requestId: string;
  endpoint: "chat.completions" | "embeddings";
  reported: ReportedUsage | undefined;
  gatewayCount: { inputTokens: number; outputTokens: number };
  requestBytes: Uint8Array;
  responseBytes: Uint8Array;
  streamed: boolean;
  completed: boolean;
}
