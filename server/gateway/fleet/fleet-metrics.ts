/** The fleet's metrics, on the gateway's own registry: the shared store's round trip per operation, and its state. */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export class FleetMetrics {
  readonly roundTrip: Histogram<"op">;
  readonly ready: Gauge;
  readonly refusals: Counter<"reason">;
  readonly rejoins: Counter;

  constructor(registry: Registry) {
    this.roundTrip = new Histogram({
      name: "tollgate_fleet_store_seconds",
      help: "Round trip of one shared-store operation, by operation (reserve is on every paid call's path)",
      labelNames: ["op"] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
      registers: [registry],
    });
    this.ready = new Gauge({ name: "tollgate_fleet_store_ready", help: "1 while this instance serves paid calls through the shared store", registers: [registry] });
    this.refusals = new Counter({ name: "tollgate_fleet_refusals_total", help: "Paid calls refused by the fleet check, by reason", labelNames: ["reason"] as const, registers: [registry] });
    this.rejoins = new Counter({ name: "tollgate_fleet_rejoins_total", help: "Times this instance re-published its usage and holdings to the shared store", registers: [registry] });
  }
}
