/**
 * Runs the simulated upstream as a process:
 *
 *   node -r ts-node/register/transpile-only server/upstream/simulated-main.ts --port 8080 --latency-ms 0
 *
 * Options (all optional): --host, --port, --latency-ms, --inter-token-delay-ms, --failure-rate,
 * --seed, --max-context-chars. Prints one JSON line `{"url": "http://host:port/v1", "port": n}` once
 * listening; SIGINT or SIGTERM closes the server and exits with status 0.
 */
import { startSimulatedUpstream, type SimulatedUpstreamOptions } from "./simulated-upstream";

const FLAGS: Record<string, keyof SimulatedUpstreamOptions> = {
  "--host": "host",
  "--port": "port",
  "--latency-ms": "latencyMs",
  "--inter-token-delay-ms": "interTokenDelayMs",
  "--failure-rate": "failureRate",
  "--seed": "seed",
  "--max-context-chars": "maxContextChars",
};

const USAGE = `usage: simulated-main.ts [${Object.keys(FLAGS)
  .map((f) => `${f} <value>`)
  .join("] [")}]`;

export function parseArgs(argv: readonly string[]): SimulatedUpstreamOptions {
  const options: Record<string, string | number> = {};
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let value: string | undefined;
    const eq = flag.indexOf("=");
    if (flag.startsWith("--") && eq !== -1) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    } else {
      value = argv[++i];
    }
    const key = FLAGS[flag];
    if (key === undefined) throw new Error(`unknown option ${flag}\n${USAGE}`);
    if (value === undefined) throw new Error(`option ${flag} needs a value\n${USAGE}`);
    if (key === "host") {
      options[key] = value;
      continue;
    }
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < 0) throw new Error(`option ${flag}: not a number >= 0: ${value}`);
    if (key === "failureRate" && n > 1) throw new Error(`option ${flag} must be between 0 and 1`);
    if (key !== "failureRate" && !Number.isInteger(n)) throw new Error(`option ${flag} must be an integer`);
    options[key] = n;
  }
  return options as SimulatedUpstreamOptions;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let options: SimulatedUpstreamOptions;
  try {
    options = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const sim = await startSimulatedUpstream(options);
  process.stdout.write(`${JSON.stringify({ url: sim.url, port: sim.port })}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
