/**
 * Runs the gateway (`server/gateway/main.ts`) or the simulated upstream (`server/upstream/simulated-main.ts`)
 * as a separate OS process, the way an operator runs them: `node -r ts-node/register/transpile-only …`.
 *
 * `start*` resolves once the process prints its one JSON "listening" line; it rejects (and kills the
 * process) if the process exits first or does not come up in time, with its output in the message.
 * Every process started here is remembered until it exits, so an `after` hook or a bench's `finally` can
 * `killAllProcesses()` and a crashed run never leaves a gateway behind. Shared by the tests and the benches.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import type { Address, Hex } from "viem";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const OUTPUT_KEPT_CHARS = 64 * 1024;
const DEFAULT_START_TIMEOUT_MS = 60_000;
const DEFAULT_STOP_TIMEOUT_MS = 30_000;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The parsed "listening" line. */
  readonly ready: Record<string, unknown>;
  /** Base URL from the listening line. */
  readonly url: string;
  /** Resolves when the process has exited, with its exit code or the signal that ended it. */
  readonly exited: Promise<ExitStatus>;
  /** The last 64 KiB of what the process wrote, for failure messages. */
  output(): string;
  hasExited(): boolean;
  /** Sends a signal (default SIGKILL) if the process is still running. */
  kill(signal?: NodeJS.Signals): void;
  /**
   * SIGTERM (unless a SIGTERM or SIGINT was already sent), then SIGKILL if it has not exited within
   * `timeoutMs`; resolves with how it ended.
   */
  stop(timeoutMs?: number): Promise<ExitStatus>;
}

export interface SpawnOptions {
  /** Path of the TypeScript entry point, relative to the repository root. */
  script: string;
  args?: string[];
  env?: Record<string, string | undefined>;
  /** Extra node flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** Picks the listening line among the JSON lines on stdout (logs are JSON lines too). */
  isReady: (line: Record<string, unknown>) => boolean;
  startTimeoutMs?: number;
  /** Process label for messages. */
  name?: string;
}

const running = new Set<ManagedProcess>();

/** Kills (SIGKILL) every process started by this module that is still running, and waits for them. */
export async function killAllProcesses(): Promise<void> {
  const all = [...running];
  for (const p of all) p.kill("SIGKILL");
  await Promise.all(all.map((p) => p.exited));
}

process.once("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

export function spawnTsProcess(options: SpawnOptions): Promise<ManagedProcess> {
  const name = options.name ?? path.basename(options.script);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), "-r", "ts-node/register/transpile-only", options.script, ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    if (output.length > OUTPUT_KEPT_CHARS * 2) output = output.slice(-OUTPUT_KEPT_CHARS);
  };
  const tail = () => output.slice(-OUTPUT_KEPT_CHARS);
  child.stderr!.on("data", keep);

  let status: ExitStatus | undefined;
  let managed: ManagedProcess | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("exit", (code, signal) => {
      status = { code, signal };
      if (managed) running.delete(managed);
      resolve(status);
    });
  });

  let terminating = false;
  const kill = (signal: NodeJS.Signals = "SIGKILL") => {
    if (status !== undefined || child.pid === undefined) return;
    if (signal === "SIGTERM" || signal === "SIGINT") terminating = true;
    child.kill(signal);
  };

  return new Promise<ManagedProcess>((resolve, reject) => {
    let pending = "";
    let settled = false;
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      kill("SIGKILL");
      reject(new Error(`${name}: ${message}\n--- output ---\n${tail()}`));
    };
    const timer = setTimeout(() => fail(`did not print its listening line within ${options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms`), options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    child.once("error", (error) => fail(`could not be spawned: ${error.message}`));
    void exited.then((s) => fail(`exited before listening (code ${s.code}, signal ${s.signal})`));

    child.stdout!.on("data", (chunk: Buffer) => {
      keep(chunk);
      if (settled) return;
      pending += chunk.toString("utf8");
      let newline: number;
      while (!settled && (newline = pending.indexOf("\n")) !== -1) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue;
        }
        if (parsed === null || typeof parsed !== "object" || !options.isReady(parsed as Record<string, unknown>)) continue;
        const ready = parsed as Record<string, unknown>;
        settled = true;
        clearTimeout(timer);
        managed = {
          child,
          pid: child.pid!,
          ready,
          url: String(ready.url),
          exited,
          output: tail,
          hasExited: () => status !== undefined,
          kill,
          async stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
            if (status !== undefined) return status;
            // A second SIGTERM would end a draining gateway at once (its handler is `once`): send one only.
            if (!terminating) kill("SIGTERM");
            const killTimer = setTimeout(() => kill("SIGKILL"), timeoutMs);
            try {
              return await exited;
            } finally {
              clearTimeout(killTimer);
            }
          },
        };
        if (status === undefined) running.add(managed);
        resolve(managed);
      }
    });
  });
}

export interface GatewayProcessOptions {
  /** The gateway config file (TOLLGATE_CONFIG). Relative paths in it resolve against its folder. */
  configPath: string;
  signerKey: Hex;
  rpcUrl: string;
  env?: Record<string, string | undefined>;
  nodeArgs?: string[];
  startTimeoutMs?: number;
}

export interface GatewayProcess extends ManagedProcess {
  signer: Address;
}

/** Starts `server/gateway/main.ts` and waits for `{"event":"listening","url":…}`. */
export async function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const p = await spawnTsProcess({
    script: "server/gateway/main.ts",
    name: "gateway",
    env: { TOLLGATE_CONFIG: options.configPath, TOLLGATE_GATEWAY_SIGNER_KEY: options.signerKey, TOLLGATE_RPC_URL: options.rpcUrl, ...options.env },
    nodeArgs: options.nodeArgs,
    isReady: (line) => line.event === "listening" && typeof line.url === "string",
    startTimeoutMs: options.startTimeoutMs,
  });
  return Object.assign(p, { signer: p.ready.signer as Address });
}

/** Starts `server/upstream/simulated-main.ts` and waits for `{"url":"http://…/v1","port":n}`. */
export function startSimulatedUpstreamProcess(options: { args?: string[]; nodeArgs?: string[]; startTimeoutMs?: number } = {}): Promise<ManagedProcess> {
  return spawnTsProcess({
    script: "server/upstream/simulated-main.ts",
    name: "simulated upstream",
    args: ["--port", "0", ...(options.args ?? [])],
    nodeArgs: options.nodeArgs,
    isReady: (line) => typeof line.url === "string" && typeof line.port === "number",
    startTimeoutMs: options.startTimeoutMs,
  });
}
