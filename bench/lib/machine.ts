/** CPU accounting from /proc (Linux): per process, and the whole machine's busy and hypervisor-stolen time. */
import fs from "node:fs";

const CLOCK_TICKS = 100;

/** CPU seconds (user + system, all threads) a process has used so far; undefined off Linux. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15 (clock ticks).
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The machine's CPU time counters (/proc/stat, all cores, clock ticks); undefined off Linux. */
export function machineTicks(): { busy: number; steal: number; total: number } | undefined {
  try {
    const [, ...values] = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number);
    return { busy: user + nice + system + irq + softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
  } catch {
    return undefined;
  }
}

/**
 * Seconds a process's main thread (its event loop) has spent runnable but waiting for a core, from
 * /proc/<pid>/schedstat (the run-queue delay the scheduler keeps, in ns); undefined off Linux or without
 * schedstats. On a box shared with the load generator, the upstream and the chain, this is the part of a
 * server's latency that is the machine's, not the server's.
 */
export function runQueueSecondsOf(pid: number): number | undefined {
  try {
    const [, waitNs] = fs.readFileSync(`/proc/${pid}/schedstat`, "utf8").trim().split(/\s+/).map(Number);
    return Number.isFinite(waitNs) ? waitNs / 1e9 : undefined;
  } catch {
    return undefined;
  }
}
