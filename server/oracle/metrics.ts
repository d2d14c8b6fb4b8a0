/** The oracle's Prometheus metrics: how far settlement lags serving, what waits, what each batch cost. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class OracleMetrics {
  readonly registry = new Registry();
  readonly recordsPending: Gauge<"signer">;
  readonly settlementLag: Histogram;
  readonly recordsSettled: Counter<"signer">;
  readonly batches: Counter<"signer" | "result">;
  readonly gasUsed: Counter;
  readonly gasPerRecord: Gauge;
  readonly rpcErrors: Counter;
  readonly feeBumps: Counter;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.recordsPending = new Gauge({ name: "tollgate_oracle_records_pending", help: "Served records not yet settled on-chain, per gateway signer", labelNames: ["signer"], registers });
    this.settlementLag = new Histogram({
      name: "tollgate_oracle_settlement_lag_seconds",
      help: "From serving a call (receipt servedAt) to the block that settled it",
      buckets: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1_800, 3_600, 21_600, 86_400],
      registers,
    });
    this.recordsSettled = new Counter({ name: "tollgate_oracle_records_settled_total", help: "Records settled by this oracle's transactions", labelNames: ["signer"], registers });
    this.batches = new Counter({
      name: "tollgate_oracle_batches_total",
      help: "Batches by outcome: settled, rejected (would revert; not sent), reverted (mined, failed)",
      labelNames: ["signer", "result"],
      registers,
    });
    this.gasUsed = new Counter({ name: "tollgate_oracle_gas_used_total", help: "Gas used by settlement transactions", registers });
    this.gasPerRecord = new Gauge({ name: "tollgate_oracle_gas_per_record", help: "Gas per record of the last settled batch", registers });
    this.rpcErrors = new Counter({ name: "tollgate_oracle_rpc_errors_total", help: "RPC calls that failed and were retried", registers });
    this.feeBumps = new Counter({ name: "tollgate_oracle_fee_bumps_total", help: "Stuck transactions re-sent with higher fees", registers });
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
