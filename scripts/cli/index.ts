/**
 * The `tollgate` command line: one program for buyers, providers and operators.
 *
 *   npx ts-node --transpile-only scripts/tollgate.ts <group> <command> [options]     (or `npm run tollgate -- …`)
 *
 * `runCli` runs one invocation against the given environment and streams and returns the exit code instead
 * of exiting, so tests run the CLI in-process; scripts/tollgate.ts hands it the real process.
 */
import { Command, CommanderError } from "commander";
import { version } from "../../package.json";
import { registerAudit } from "./audit";
import { registerAuditReceipts } from "./audit-receipts";
import { registerBuyer } from "./buyer";
import { CliContext, DEFAULTS, ENV, envValue, KEY_SETUP_HINT, toJson, type CliIo, type GlobalOptions } from "./context";
import { CliError, describeError, type ErrorReport } from "./errors";
import { registerKeystore } from "./keystore";
import { registerOperator } from "./operator";
import { registerProvider } from "./provider";
import { registerUsage } from "./usage-report";

export type { CliIo } from "./context";

const GLOBAL_OPTIONS = ["rpc", "deployment", "gateway", "json"] as const;

/**
 * No command takes a private key, a seed or a password, and none takes a 32-byte hex value, so anything
 * shaped like one is refused before parsing: it would otherwise sit in shell history and `ps` output, and
 * commander would echo it back in its "unknown option" message.
 */
function refuseSecrets(argv: readonly string[]): void {
  const flag = /^--?(private[-_]?key|privatekey|key|secret|mnemonic|seed|seed-phrase|password|passphrase|keystore-password)(=|$)/i;
  const secret = /(^|=)(0x)?[0-9a-fA-F]{64}$/;
  if (argv.some((arg) => flag.test(arg) || secret.test(arg))) {
    throw new CliError("refusing a private key, seed or password on the command line", KEY_SETUP_HINT);
  }
}

function globalOptionsOf(cmd: Command, program: Command): GlobalOptions {
  const options = cmd.optsWithGlobals<{ rpc: string; deployment: string; gateway: string; json?: boolean }>();
  const explicit = new Set(GLOBAL_OPTIONS.filter((name) => program.getOptionValueSource(name) === "cli"));
  return { rpc: options.rpc, deployment: options.deployment, gateway: options.gateway, json: Boolean(options.json), explicit };
}

export function buildProgram(io: CliIo, onContext: (ctx: CliContext) => void = () => {}): Command {
  const program = new Command("tollgate");
  // Set before any subcommand is added: commander copies these settings into each new subcommand.
  program
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showHelpAfterError("(add --help for usage)");

  program
    .version(version, "-V, --version", "print the version")
    .description("Tollgate: prepaid, metered AI usage settled on-chain. Commands for buyers, providers and operators.")
    .option("--rpc <url>", `JSON-RPC URL of the chain (env ${ENV.rpc})`, envValue(io.env, ENV.rpc) ?? DEFAULTS.rpc)
    .option("--deployment <file>", `deployment file written by the deploy step (env ${ENV.deployment})`, envValue(io.env, ENV.deployment) ?? DEFAULTS.deployment)
    .option("--gateway <url>", `gateway base URL, for API keys and the gateway balance (env ${ENV.gateway})`, envValue(io.env, ENV.gateway) ?? DEFAULTS.gateway)
    .option("--json", "print one machine-readable JSON object (amounts as base-unit strings beside formatted ones)")
    .addHelpText(
      "after",
      `
Signing key (never a command-line argument):
  ${ENV.privateKey}=0x<64 hex>                    a raw private key, or
  ${ENV.keystore}=<file> ${ENV.keystorePassword}=…   an encrypted JSON keystore (\`tollgate keystore create\`)
Other environment: ${ENV.apiKey} (gateway view in \`buyer balance\`).
Amounts are in token units with the token's decimals ("12.5" tUSD = 12500000 base units).

Examples:
  $ tollgate operator status
  $ tollgate provider register 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 https://provider.example/meta.json
  $ tollgate buyer deposit 25 && tollgate buyer buy-credits 1 100 --from-balance
  $ tollgate buyer keys create --label laptop --spend-cap 5
  $ TOLLGATE_API_KEY=tg_… tollgate usage report --group-by tag,month --from 2026-11-01
`,
    );

  const context = (cmd: Command): CliContext => {
    const ctx = new CliContext(io, globalOptionsOf(cmd, program));
    onContext(ctx);
    return ctx;
  };
  registerBuyer(program, context);
  registerProvider(program, context);
  registerOperator(program, context);
  registerKeystore(program, context);
  registerUsage(program, context);
  // `tollgate audit` is the chain audit; `tollgate audit receipts FILE` reconciles a buyer's receipts with it.
  registerAuditReceipts(registerAudit(program, context), context);
  return program;
}

function printError(io: CliIo, report: ErrorReport, json: boolean): void {
  if (json) {
    io.stderr.write(`${toJson({ error: report })}\n`);
    return;
  }
  io.stderr.write(`error: ${report.message}\n`);
  if (report.hint) io.stderr.write(`hint: ${report.hint}\n`);
}

/** Runs one invocation; `argv` holds only the user's arguments (process.argv.slice(2)). Returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let ctx: CliContext | undefined;
  const json = argv.includes("--json");
  try {
    refuseSecrets(argv);
    const program = buildProgram(io, (created) => (ctx = created));
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (error) {
    // Commander already printed its own message (unknown option, missing argument) or the help.
    if (error instanceof CommanderError) return error.exitCode;
    const fallback = { rpcUrl: envValue(io.env, ENV.rpc) ?? DEFAULTS.rpc };
    printError(io, describeError(error, ctx?.errorContext() ?? fallback), ctx?.options.json ?? json);
    return 1;
  }
}
