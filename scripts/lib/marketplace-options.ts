/**
 * The demo's options, from flags (npm run demo -- --serve) or the environment (for `hardhat run`, which
 * passes no flags through). Every problem is reported at once, with the usage text.
 */
import { isHex, type Hex } from "viem";
import { LOG_LEVELS, MarketplaceSetupError, type LogLevel } from "./local-marketplace";

export interface DemoOptions {
  serve: boolean;
  calls?: number;
  rpcPort?: number;
  gatewayPort?: number;
  dataDir?: string;
  logLevel?: LogLevel;
  /** An external chain's JSON-RPC URL, with the key that deploys there. */
  rpcUrl?: string;
  deployerKey?: Hex;
  help: boolean;
}

export const DEMO_USAGE = `Runs the Tollgate marketplace end to end on Hardhat's in-process network, or on any EVM chain by RPC URL.

  npm run demo [-- options]
  npx hardhat run scripts/marketplace.ts        (options from the environment only)

Options (environment variable in brackets):
  --serve               keep everything running until Ctrl-C and print how to connect [TOLLGATE_SERVE=1]
  --calls <n>           metered calls the buyer makes, 1-1000 (default 12) [TOLLGATE_DEMO_CALLS]
  --rpc-port <port>     JSON-RPC port (default 8545; a port in use falls back to a free one) [TOLLGATE_RPC_PORT]
  --gateway-port <port> gateway port (default 8787; falls back likewise) [TOLLGATE_GATEWAY_PORT]
  --data-dir <dir>      config, usage store and oracle journal (default data/marketplace) [TOLLGATE_DATA_DIR]
  --rpc-url <url>       run on this chain instead (Anvil, a Hardhat node, a testnet); needs --deployer-key [TOLLGATE_RPC_URL]
  --deployer-key <key>  0x-prefixed private key that deploys Tollgate there (owner, treasury) and, on a real chain,
                        sends the demo's accounts their gas money [TOLLGATE_DEPLOYER_KEY]
  --help                this text
Gateway and oracle JSON logs: TOLLGATE_LOG_LEVEL (default warn).`;

export function parseDemoOptions(argv: readonly string[], env: NodeJS.ProcessEnv): DemoOptions {
  const problems: string[] = [];
  const whole = (name: string, raw: string | undefined, min: number, max: number): number | undefined => {
    if (raw === undefined || raw === "") return undefined;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
      return undefined;
    }
    return Number(raw);
  };
  const flag = (raw: string | undefined) => raw !== undefined && raw !== "" && raw !== "0" && raw.toLowerCase() !== "false";
  const values: Record<string, string | undefined> = {
    calls: env.TOLLGATE_DEMO_CALLS,
    "rpc-port": env.TOLLGATE_RPC_PORT,
    "gateway-port": env.TOLLGATE_GATEWAY_PORT,
    "data-dir": env.TOLLGATE_DATA_DIR,
    "rpc-url": env.TOLLGATE_RPC_URL,
    "deployer-key": env.TOLLGATE_DEPLOYER_KEY,
  };
  let serve = flag(env.TOLLGATE_SERVE);
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.startsWith("--") ? arg.slice(2).split(/=(.*)/s, 2) : [undefined, undefined];
    if (name === "serve") serve = true;
    else if (name === "help" || arg === "-h") help = true;
    else if (name !== undefined && name in values) {
      const value = inline ?? argv[++i];
      if (value === undefined) problems.push(`--${name} needs a value`);
      values[name] = value;
    } else problems.push(`unknown option "${arg}"`);
  }
  const logLevel = env.TOLLGATE_LOG_LEVEL;
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) problems.push(`TOLLGATE_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  const rpcUrl = values["rpc-url"] || undefined;
  const deployerKey = values["deployer-key"] || undefined;
  if (rpcUrl && !deployerKey) problems.push("--rpc-url (TOLLGATE_RPC_URL) needs --deployer-key (TOLLGATE_DEPLOYER_KEY): the funded key that deploys there");
  if (deployerKey && (!isHex(deployerKey) || deployerKey.length !== 66)) problems.push("--deployer-key (TOLLGATE_DEPLOYER_KEY) must be a 32-byte private key as 0x-prefixed hex");
  if (rpcUrl && values["rpc-port"]) problems.push("--rpc-port serves the in-process chain; with --rpc-url there is none to serve");
  const options: DemoOptions = {
    serve,
    help,
    calls: whole("--calls (TOLLGATE_DEMO_CALLS)", values.calls, 1, 1_000),
    rpcPort: whole("--rpc-port (TOLLGATE_RPC_PORT)", values["rpc-port"], 0, 65_535),
    gatewayPort: whole("--gateway-port (TOLLGATE_GATEWAY_PORT)", values["gateway-port"], 0, 65_535),
    dataDir: values["data-dir"] || undefined,
    logLevel: logLevel as LogLevel | undefined,
    rpcUrl,
    deployerKey: rpcUrl ? (deployerKey as Hex | undefined) : undefined,
  };
  if (problems.length > 0) throw new MarketplaceSetupError(`${problems.join("\n")}\n\n${DEMO_USAGE}`);
  return options;
}
