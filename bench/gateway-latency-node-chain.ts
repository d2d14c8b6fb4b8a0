/**
 * `npm run bench:gateway:node-chain`: the gateway bench with the chain in a process of its own.
 *
 * `npm run bench:gateway` keeps the chain (Hardhat's in-process network) in the bench's own process, beside the
 * load generator's thread: every buyer snapshot the gateway reads is several `eth_call`s run by Hardhat's
 * JavaScript EVM on the same two cores the load generator answers on. This starts `hardhat node` on
 * 127.0.0.1:8545 (Hardhat's `localhost` network), runs the same bench against it with `--network localhost`,
 * and stops the node, so the two layouts can be compared. Same environment knobs as the bench.
 */
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const HARDHAT = path.join(ROOT, "node_modules", ".bin", "hardhat");
const PORT = 8545;

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

function waitForNode(node: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Started HTTP and WebSocket JSON-RPC server")) {
        node.stdout?.off("data", onData);
        node.stdout?.resume();
        resolve();
      }
    };
    node.stdout?.on("data", onData);
    node.once("exit", (code) => reject(new Error(`hardhat node exited with ${code} before it listened:\n${output}`)));
  });
}

async function main(): Promise<void> {
  if (await portInUse(PORT)) throw new Error(`port ${PORT} is in use: stop whatever listens there (another hardhat node?) and run again`);
  console.log(`[bench] starting hardhat node on 127.0.0.1:${PORT}…`);
  const node = spawn(HARDHAT, ["node", "--hostname", "127.0.0.1", "--port", String(PORT)], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  try {
    await waitForNode(node);
    const bench = spawn(HARDHAT, ["run", "--network", "localhost", "bench/gateway-latency.ts"], { cwd: ROOT, stdio: "inherit" });
    const code = await new Promise<number | null>((resolve) => bench.once("exit", resolve));
    process.exitCode = code ?? 1;
  } finally {
    node.kill("SIGTERM");
  }
}

main().catch((error: unknown) => {
  console.error(`[bench] ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
