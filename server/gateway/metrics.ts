/**
 * Prometheus metrics, on a registry of the gateway's own (several gateways can live in one test process).
 * The token-count divergence histogram is the cross-check between the upstream's reported usage and the
 * gateway's own tokenizer: a drifting upstream shows up here before it shows up on a bill.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { StoredUsageRecord } from "../store/usage-store";
import type { ServedCall } from "./metering/served-call";

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: "tollgate_http_requests_total", help: "HTTP requests by route and status", labelNames: ["route", "status"] as const, registers: [this.registry] });
  readonly duration = new Histogram({
    name: "tollgate_http_request_duration_seconds",
    help: "Time to the end of the response, by route",
    labelNames: ["route"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly meteredCalls = new Counter({ name: "tollgate_metered_calls_total", help: "Usage records written", labelNames: ["model", "endpoint", "streamed", "completed"] as const, registers: [this.registry] });
  readonly tokens = new Counter({ name: "tollgate_billed_tokens_total", help: "Billed tokens by model and kind", labelNames: ["model", "kind"] as const, registers: [this.registry] });
  readonly divergence = new Histogram({
    name: "tollgate_token_count_divergence_ratio",
    help: "(upstream-reported − gateway-counted) / gateway-counted tokens, per call where the upstream reported usage",
    labelNames: ["model", "direction"] as const,
    buckets: [-1, -0.5, -0.2, -0.1, -0.05, -0.01, 0, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly cappedBills = new Counter({ name: "tollgate_bills_capped_total", help: "Calls whose reported usage exceeded the reservation and was capped", labelNames: ["model"] as const, registers: [this.registry] });
  readonly refusals = new Counter({ name: "tollgate_refusals_total", help: "Calls refused before going upstream, by reason", labelNames: ["reason"] as const, registers: [this.registry] });
  readonly upstreamErrors = new Counter({ name: "tollgate_upstream_errors_total", help: "Upstream failures (never charged)", labelNames: ["upstream", "reason"] as const, registers: [this.registry] });
  readonly routeFallbacks = new Counter({ name: "tollgate_route_fallbacks_total", help: "Routed calls moved to the next candidate after an upstream failure (the failed try uncharged)", labelNames: ["alias", "from_model"] as const, registers: [this.registry] });
  readonly openReservations = new Gauge({ name: "tollgate_open_reservations", help: "Calls in flight holding a reservation", registers: [this.registry] });
  readonly lastSequence = new Gauge({ name: "tollgate_last_sequence", help: "Sequence number of the last usage record written", registers: [this.registry] });

  /** How long calls waited for the buyer's on-chain balance: ~0 when a cached snapshot served, an RPC round trip when not. */
  readonly balanceWait = new Histogram({
    name: "tollgate_balance_wait_seconds",
    help: "Time a metered call waited for the buyer's on-chain snapshot before its reservation",
    buckets: [0.0001, 0.001, 0.005, 0.025, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });
  /** Group commits of usage records, on the event loop: how long each held it, and how many records it wrote. */
  readonly storeCommit = new Histogram({
    name: "tollgate_store_commit_seconds",
    help: "Time one group commit of usage records held the event loop (signing included)",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry],
  });
  readonly storeCommitMax = new Gauge({ name: "tollgate_store_commit_max_seconds", help: "Longest group commit since the gateway started", registers: [this.registry] });
  readonly storeGroupSize = new Histogram({
    name: "tollgate_store_group_records",
    help: "Usage records written per group commit",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  /** WAL checkpoints, which run on a worker thread (server/store/wal-checkpointer.ts), not on the event loop. */
  readonly storeCheckpoint = new Histogram({
    name: "tollgate_store_checkpoint_seconds",
    help: "WAL checkpoints of the usage store, on the checkpoint worker thread",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private longestCommit = 0;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  observeCommit(records: number, seconds: number): void {
    this.storeCommit.observe(seconds);
    this.storeGroupSize.observe(records);
    if (seconds > this.longestCommit) this.storeCommitMax.set((this.longestCommit = seconds));
  }

  observeRecord(record: StoredUsageRecord, served: ServedCall, capped: boolean): void {
    const model = record.modelName;
    this.meteredCalls.inc({ model, endpoint: record.endpoint, streamed: String(record.streamed), completed: String(record.completed) });
    this.tokens.inc({ model, kind: "input" }, record.inputTokens);
    this.tokens.inc({ model, kind: "cached_input" }, record.cachedInputTokens);
    this.tokens.inc({ model, kind: "output" }, record.outputTokens);
    this.tokens.inc({ model, kind: "reasoning" }, record.reasoningTokens);
    if (served.reported) {
      const ratio = (reported: number, counted: number) => (reported - counted) / Math.max(counted, 1);
      this.divergence.observe({ model, direction: "input" }, ratio(served.reported.promptTokens, served.gatewayCount.inputTokens));
      if (record.endpoint === "chat.completions") {
        this.divergence.observe({ model, direction: "output" }, ratio(served.reported.completionTokens, served.gatewayCount.outputTokens));
      }
    }
    if (capped) this.cappedBills.inc({ model });
    this.lastSequence.set(Number(record.sequence));
  }
}
