/**
 * The primary of N gateway instances on one host (node:cluster): each worker runs the ordinary single gateway
 * (server/gateway/main.ts) with its own signer key, store and fleet id in its environment, and they all listen
 * on one port the primary shares out. The primary serves nothing itself; it
 * - starts every instance and reports once all listen; one that exits before it first listens stops the lot
 *   (exit 1): a fleet with a hole in it is a configuration problem, not something to retry;
 * - restarts an instance that dies later, with backoff (RestartBackoff), under the same key and store, so its
 *   sequence carries on where its store says;
 * - on SIGTERM/SIGINT sends SIGTERM to every instance (each drains its in-flight calls and closes its store)
 *   and exits 0 once all exited cleanly, 1 otherwise; a second signal kills them at once.
 */
import cluster, { type Worker } from "node:cluster";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { GatewayInstance } from "./instance-layout";
import { DEFAULT_RESTART_BACKOFF, RestartBackoff, type RestartBackoffOptions } from "./restart-backoff";

export interface ClusterPrimaryOptions {
  instances: readonly GatewayInstance[];
  /** The script every worker runs: the single gateway's entry point. */
  workerScript: string;
  logger: Logger;
  /** How long an instance may drain after SIGTERM before it is killed (the gateway's own drain limit plus slack). */
  stopTimeoutMs: number;
  backoff?: RestartBackoffOptions;
  /** Machine-readable lines for scripts and tests (stdout), beside the JSON logs. */
  emit(event: Record<string, unknown>): void;
  /** Once every instance listens, with the shared address and each instance's process id. */
  onAllListening(address: Pick<AddressInfo, "port">, pids: ReadonlyMap<number, number | undefined>): void;
}

interface Slot {
  instance: GatewayInstance;
  backoff: RestartBackoff;
  worker?: Worker;
  startedAt: number;
  listening: boolean;
  restartTimer?: NodeJS.Timeout;
  killTimer?: NodeJS.Timeout;
}

/** What an instance's process is told, on top of the primary's environment: who it is, and nothing of its siblings. */
export function instanceEnv(instance: GatewayInstance): Record<string, string> {
  return {
    TOLLGATE_GATEWAY_SIGNER_KEY: instance.signerKey,
    TOLLGATE_STORE_PATH: instance.storePath,
    TOLLGATE_INSTANCE_ID: instance.instanceId,
  };
}

/** Runs the instances until a signal stops them or one cannot start; resolves with the exit code for the primary. */
export function runClusterPrimary(options: ClusterPrimaryOptions): Promise<number> {
  const { logger } = options;
  // Round-robin by the primary: the kernel's shared accept() hands most connections to whichever worker is
  // already awake, so a busy instance would get busier. Must be set before the first fork.
  cluster.schedulingPolicy = cluster.SCHED_RR;
  // Workers run the gateway's entry with the primary's node flags (ts-node's register hook among them).
  cluster.setupPrimary({ exec: options.workerScript, execArgv: process.execArgv });

  return new Promise<number>((resolve) => {
    let phase: "starting" | "running" | "stopping" = "starting";
    let exitCode = 0;
    const slots: Slot[] = options.instances.map((instance) => ({ instance, backoff: new RestartBackoff(options.backoff ?? DEFAULT_RESTART_BACKOFF), startedAt: 0, listening: false }));
    const who = (slot: Slot) => ({ instance: slot.instance.index, instanceId: slot.instance.instanceId, signer: slot.instance.signer });

    const finishIfDone = () => {
      if (phase !== "stopping" || slots.some((slot) => slot.worker)) return;
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      logger.info({ exitCode }, exitCode === 0 ? "every instance stopped cleanly" : "instances stopped; some did not stop cleanly or could not start");
      resolve(exitCode);
    };

    const stopAll = (reason: string) => {
      if (phase === "stopping") return;
      phase = "stopping";
      logger.info({ reason, running: slots.filter((s) => s.worker).length }, "stopping every instance (each drains its in-flight calls)");
      for (const slot of slots) {
        clearTimeout(slot.restartTimer);
        if (!slot.worker) continue;
        slot.worker.process.kill("SIGTERM");
        const worker = slot.worker;
        slot.killTimer = setTimeout(() => {
          logger.error({ ...who(slot), timeoutMs: options.stopTimeoutMs }, "instance did not stop in time; killing it");
          worker.process.kill("SIGKILL");
        }, options.stopTimeoutMs);
      }
      finishIfDone();
    };

    const killAll = () => {
      logger.warn("second signal: killing every instance now");
      for (const slot of slots) slot.worker?.process.kill("SIGKILL");
    };

    let signals = 0;
    function onSignal(signal: NodeJS.Signals) {
      if (++signals === 1) stopAll(signal);
      else killAll();
    }
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);

    const start = (slot: Slot) => {
      slot.restartTimer = undefined;
      slot.listening = false;
      slot.startedAt = Date.now();
      const worker = cluster.fork(instanceEnv(slot.instance));
      slot.worker = worker;
      logger.info({ ...who(slot), pid: worker.process.pid, store: slot.instance.storePath }, "starting instance");

      worker.on("listening", (address: AddressInfo) => {
        slot.listening = true;
        logger.info({ ...who(slot), pid: worker.process.pid, port: address.port }, "instance listening");
        if (phase === "starting" && slots.every((s) => s.listening)) {
          phase = "running";
          options.onAllListening(address, new Map(slots.map((s) => [s.instance.index, s.worker?.process.pid])));
        } else if (phase === "running") {
          options.emit({ event: "instance-restarted", index: slot.instance.index, instanceId: slot.instance.instanceId, signer: slot.instance.signer, pid: worker.process.pid });
        }
      });

      worker.on("exit", (code, signal) => {
        slot.worker = undefined;
        clearTimeout(slot.killTimer);
        const ended = { ...who(slot), pid: worker.process.pid, code, signal };
        if (phase === "stopping") {
          if (code !== 0) exitCode = 1;
          logger.info(ended, "instance stopped");
          finishIfDone();
        } else if (phase === "starting") {
          exitCode = 1;
          logger.error(ended, "instance exited before it listened; its output above says why. Stopping the others");
          process.stderr.write(
            `tollgate gateway instances: instance ${slot.instance.index} (signer ${slot.instance.signer}) exited with ${signal ?? `code ${code}`} before it listened; its output above says why\n`,
          );
          stopAll("an instance could not start");
        } else {
          const waitMs = slot.backoff.next(Date.now() - slot.startedAt);
          logger.warn({ ...ended, restartInMs: waitMs }, slot.listening ? "instance died; restarting it with its own key and store" : "instance failed to start again; retrying");
          slot.restartTimer = setTimeout(() => start(slot), waitMs);
        }
      });
    };

    for (const slot of slots) start(slot);
  });
}
