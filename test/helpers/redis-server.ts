/**
 * A real `redis-server` (Debian's, installed by `.ci/run`) for the fleet tests: its own temp dir, a free loopback
 * port, AOF persistence on (as in production: `appendonly yes`, fsync every write here so a kill loses nothing).
 * `kill()` is a SIGKILL (a crash); `start()` again brings it back on the same port and data, as an operator's
 * supervisor would. Every server started here is killed when the test process exits.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** Starts (again) on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `appendfsync`: "always" for the tests (a SIGKILL loses nothing), "everysec" (Redis's default) for the bench. */
export async function startRedisServer(options: { appendfsync?: "always" | "everysec" } = {}): Promise<RedisServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-redis-"));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", options.appendfsync ?? "always", "--save", "", "--protected-mode", "no"];
      const proc = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      running.add(proc);
      exited = new Promise((done) => proc.once("exit", () => {
        running.delete(proc);
        done();
      }));
      let output = "";
      const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port} within 10 s:\n${output}`)), 10_000);
      proc.once("error", (error) => {
        clearTimeout(timer);
        reject(new Error(`redis-server could not be started (${error.message}): install it (apt-get install redis-server)`));
      });
      proc.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited before it was ready:\n${output}`));
      });
    });

  const kill = async () => {
    child?.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    start,
    kill,
    async stop() {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
