/**
 * `tollgate operator …`: deploy, run the gateway and the oracle, see the deployment's state, and the
 * owner's levers (pause, fee, treasury) plus the fee sweep anyone may call, each a client action.
 */
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import fs from "node:fs";
import type { Command } from "commander";
import { zeroAddress } from "viem";
import { collectProtocolFees, setPaused as setPausedAction, setProtocolFee, setTreasury as setTreasuryAction } from "../../client";
import { testUsdAbi, tollgateAbi } from "../../server/chain/abis";
import { formatDuration, formatTimestamp, parseAddress, parseInteger } from "./arguments";
import { envValue, ENV, examples, loadPrivateKey, type CliContext, type ContextFactory } from "./context";
import { CliError } from "./errors";
import { instanceCountOption, registerOperatorInstances } from "./operator-instances";
import { INSTANCES_ENV } from "../../server/gateway-instances/instance-layout";

const REPO_ROOT = path.resolve(__dirname, "..", "..");

/**
 * Runs a server as a child with the terminal and the environment, until it exits. The child gets its own
 * process group, so a Ctrl-C reaches it once, from us: a second SIGINT from the terminal would cut short the
 * graceful drain the gateway and oracle do on the first.
 */
function runServer(ctx: CliContext, script: string, env: NodeJS.ProcessEnv): Promise<number> {
  const file = path.join(REPO_ROOT, script);
  if (!fs.existsSync(file)) {
    return Promise.reject(new CliError(`${script} does not exist in ${REPO_ROOT}`, "is this checkout complete? `git status` shows missing files"));
  }
  return new Promise((resolve, reject) => {
    // Resolved here: `node -r` would look for ts-node from the working directory, which may be anywhere.
    const child = spawn(process.execPath, ["-r", require.resolve("ts-node/register/transpile-only"), file], {
      cwd: process.cwd(),
      env,
      stdio: "inherit",
      detached: process.platform !== "win32",
    });
    const forward = (signal: NodeJS.Signals) => () => {
      child.kill(signal);
    };
    const onInt = forward("SIGINT");
    const onTerm = forward("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    const cleanup = () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    };
    child.once("error", (error) => {
      cleanup();
      reject(new CliError(`could not start ${script}: ${error.message}`));
    });
    child.once("exit", (code, signal) => {
      cleanup();
      if (code !== null) resolve(code);
      else resolve(128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
    ctx.out.warn(`started ${script} (pid ${child.pid}); Ctrl-C stops it gracefully`);
  });
}

/** The environment for a server: ours, plus what the command's flags say, named as the server reads it. */
function serverEnv(ctx: CliContext, extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...ctx.io.env };
  if (ctx.options.explicit.has("rpc")) env[ENV.rpc] = ctx.options.rpc;
  // ts-node looks for tsconfig.json from the working directory; the servers compile with the project's.
  env.TS_NODE_PROJECT ??= path.join(REPO_ROOT, "tsconfig.json");
  for (const [name, value] of Object.entries(extra)) if (value !== undefined) env[name] = value;
  return env;
}

interface DeployOptions {
  network: string;
  out?: string;
  paymentToken?: string;
  withdrawalDelay?: string;
  priceNotice?: string;
  feeBps?: string;
  treasury?: string;
  owner?: string;
  deployer?: string;
  deploymentId?: string;
  reset?: boolean;
}

/**
 * Deploys with the shared deploy step (scripts/lib/deploy-tollgate.ts) in this process. Hardhat reads the
 * network from HARDHAT_NETWORK when it first loads, so it is loaded only here, after that is set; inside a
 * process that already runs Hardhat (tests) the network must be the one it runs.
 */
async function deploy(ctx: CliContext, options: DeployOptions): Promise<void> {
  const { parseDeployParameters } = await import("../lib/deploy-tollgate");
  const parameters = parseDeployParameters(
    {
      paymentToken: options.paymentToken,
      withdrawalDelaySeconds: options.withdrawalDelay,
      priceNoticeSeconds: options.priceNotice,
      protocolFeeBps: options.feeBps,
      treasury: options.treasury,
      owner: options.owner,
    },
    {
      paymentToken: "--payment-token",
      withdrawalDelaySeconds: "--withdrawal-delay",
      priceNoticeSeconds: "--price-notice",
      protocolFeeBps: "--fee-bps",
      treasury: "--treasury",
      owner: "--owner",
    },
  );
  const deployer = options.deployer ? parseAddress(options.deployer, "--deployer") : undefined;
  const { HardhatContext } = await import("hardhat/internal/context");
  if (!HardhatContext.isCreated()) {
    if (options.network === "hardhat") {
      throw new CliError(
        "the in-process hardhat network ends when this command does, and the deployment with it",
        "run `npx hardhat node` and deploy with --network localhost, or use --network rpc for any other chain",
      );
    }
    process.env.HARDHAT_NETWORK = options.network;
    process.env.HARDHAT_CONFIG ??= path.join(REPO_ROOT, "hardhat.config.ts");
    if (options.network === "rpc") {
      // hardhat.config's "rpc" network reads these when it loads: the CLI's --rpc and key serve it too.
      process.env[ENV.rpc] = ctx.options.rpc;
      if (!process.env.TOLLGATE_DEPLOYER_KEY && (envValue(ctx.io.env, ENV.privateKey) || envValue(ctx.io.env, ENV.keystore))) {
        process.env.TOLLGATE_DEPLOYER_KEY = await loadPrivateKey(ctx.io.env);
      }
    }
  }
  const hre = (await import("hardhat")).default;
  if (hre.network.name !== options.network) {
    throw new CliError(
      `this process already runs Hardhat on network "${hre.network.name}", so it cannot deploy to "${options.network}"`,
      `run \`tollgate operator deploy --network ${options.network}\` on its own`,
    );
  }
  const { deployTollgate } = await import("../lib/deploy-tollgate");
  // Ignition resolves artifacts from disk; `hardhat run` compiles first, a library caller must too.
  await hre.run("compile", { quiet: true });
  const out = path.resolve(options.out ?? path.join("deployments", `${hre.network.name}.json`));
  const deployment = await deployTollgate(hre, parameters, {
    deploymentFile: out,
    deployer,
    deploymentId: options.deploymentId,
    reset: options.reset,
    log: (line) => ctx.out.say(line),
  });
  if (path.resolve(ctx.options.deployment) !== out) {
    ctx.out.say(`other commands read ${ctx.options.deployment}; use --deployment ${path.relative(process.cwd(), out)} or export ${ENV.deployment}=${out}`);
  }
  ctx.out.result({ action: "deploy", file: out, ...deployment });
}

async function status(ctx: CliContext, options: { signer?: string }): Promise<void> {
  const conn = await ctx.connect();
  const read = { address: conn.tollgate, abi: tollgateAbi } as const;
  const signer = options.signer ? parseAddress(options.signer, "--signer") : undefined;
  const [block, owner, pendingOwner, paused, feeBps, maxFeeBps, treasury, feesAccrued, withdrawalDelay, priceNotice, providers, models, plans, credits, held] =
    await Promise.all([
      conn.client.getBlock({ blockTag: "latest" }),
      conn.client.readContract({ ...read, functionName: "owner" }),
      conn.client.readContract({ ...read, functionName: "pendingOwner" }),
      conn.client.readContract({ ...read, functionName: "paused" }),
      conn.client.readContract({ ...read, functionName: "protocolFeeBps" }),
      conn.client.readContract({ ...read, functionName: "MAX_FEE_BPS" }),
      conn.client.readContract({ ...read, functionName: "treasury" }),
      conn.client.readContract({ ...read, functionName: "protocolFeesAccrued" }),
      conn.client.readContract({ ...read, functionName: "withdrawalDelay" }),
      conn.client.readContract({ ...read, functionName: "priceNoticePeriod" }),
      conn.client.readContract({ ...read, functionName: "providerCount" }),
      conn.client.readContract({ ...read, functionName: "modelCount" }),
      conn.client.readContract({ ...read, functionName: "creditPlanCount" }),
      conn.client.readContract({ ...read, functionName: "credits" }),
      conn.client.readContract({ address: conn.token.address, abi: testUsdAbi, functionName: "balanceOf", args: [conn.tollgate] }),
    ]);
  const signerView = signer ? await conn.client.readContract({ ...read, functionName: "signerOf", args: [signer] }) : undefined;

  ctx.out.say(`chain ${conn.chain.id} at ${ctx.options.rpc}: block ${block.number}, time ${formatTimestamp(block.timestamp)}`);
  ctx.out.say(`Tollgate ${conn.tollgate} (${ctx.options.deployment})`);
  ctx.out.say(`  paused            ${paused ? "YES: settlement and credit purchases are stopped" : "no"}`);
  ctx.out.say(`  owner             ${owner}${pendingOwner !== zeroAddress ? ` (pending: ${pendingOwner})` : ""}`);
  ctx.out.say(`  protocol fee      ${feeBps} bps (${Number(feeBps) / 100}%; at most ${maxFeeBps} bps)`);
  ctx.out.say(`  treasury          ${treasury}`);
  ctx.out.say(`  fees accrued      ${await ctx.amount(feesAccrued)}`);
  ctx.out.say(`  payment token     ${conn.token.symbol} (${conn.token.decimals} decimals) ${conn.token.address}`);
  ctx.out.say(`  vault holds       ${await ctx.amount(held)}`);
  ctx.out.say(`  credits token     ${credits}`);
  ctx.out.say(`  withdrawal delay  ${formatDuration(withdrawalDelay)} (${withdrawalDelay}s); price notice ${formatDuration(priceNotice)} (${priceNotice}s)`);
  ctx.out.say(`  providers ${providers}, models ${models}, credit plans ${plans}`);
  if (signer && signerView) {
    const standing = signerView.compromised ? "compromised (fraud proven)" : signerView.authorized ? "authorized" : "revoked";
    const state = signerView.providerId === 0 ? "never authorized" : `${standing} for provider ${signerView.providerId}`;
    ctx.out.say(`signer ${signer}: ${state}, next sequence ${signerView.nextSequence}`);
  }
  ctx.out.result({
    chainId: conn.chain.id,
    blockNumber: block.number,
    blockTime: block.timestamp,
    tollgate: conn.tollgate,
    paused,
    owner,
    pendingOwner,
    protocolFeeBps: feeBps,
    treasury,
    protocolFeesAccrued: ctx.money(feesAccrued),
    paymentToken: conn.token,
    vaultHolds: ctx.money(held),
    credits,
    withdrawalDelaySeconds: withdrawalDelay,
    priceNoticeSeconds: priceNotice,
    providerCount: providers,
    modelCount: models,
    creditPlanCount: plans,
    signer: signer && signerView ? { address: signer, ...signerView } : null,
  });
}

async function setPaused(ctx: CliContext, paused: boolean): Promise<void> {
  await ctx.signer();
  const conn = await ctx.connect();
  ctx.out.say(paused ? "pausing settlement and credit purchases (deposits and withdrawals keep working)" : "resuming settlement and credit purchases");
  const { hash } = await setPausedAction(await ctx.client(), { paused });
  const now = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "paused" });
  ctx.out.say(now ? "paused" : "running");
  ctx.out.result({ action: paused ? "pause" : "unpause", paused: now, hash });
}

async function setFee(ctx: CliContext, bpsText: string): Promise<void> {
  await ctx.signer();
  const conn = await ctx.connect();
  const bps = parseInteger(bpsText, "fee in basis points");
  ctx.out.say(`setting the protocol fee to ${bps} bps (${Number(bps) / 100}%)`);
  const { hash } = await setProtocolFee(await ctx.client(), { feeBps: bps });
  const now = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "protocolFeeBps" });
  ctx.out.say(`protocol fee is now ${now} bps`);
  ctx.out.result({ action: "set-fee", protocolFeeBps: now, hash });
}

async function setTreasury(ctx: CliContext, addressText: string): Promise<void> {
  await ctx.signer();
  await ctx.connect();
  const treasury = parseAddress(addressText, "treasury");
  ctx.out.say(`sending future protocol fee sweeps to ${treasury}`);
  const { hash } = await setTreasuryAction(await ctx.client(), { treasury });
  ctx.out.say("treasury set");
  ctx.out.result({ action: "set-treasury", treasury, hash });
}

async function collectFees(ctx: CliContext): Promise<void> {
  await ctx.signer();
  const conn = await ctx.connect();
  const accrued = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "protocolFeesAccrued" });
  ctx.out.say(`sweeping ${await ctx.amount(accrued)} of protocol fees to the treasury`);
  const { hash, amount, treasury } = await collectProtocolFees(await ctx.client());
  ctx.out.say(`sent ${await ctx.amount(amount)} to ${treasury ?? "the treasury"}`);
  ctx.out.result({ action: "collect-fees", amount: ctx.money(amount), treasury, hash });
}

export function registerOperator(program: Command, context: ContextFactory): void {
  const operator = program.command("operator").description("deploy, run the gateway and the oracle, inspect and steer the deployment");

  operator
    .command("deploy")
    .description("deploy Tollgate (and the TestUSD token unless --payment-token) and write the deployment file")
    .option("--network <name>", 'a network of hardhat.config.ts: "localhost" (a running `npx hardhat node`), "rpc" (--rpc, signed by the CLI key), "hardhat"', "localhost")
    .option("--out <file>", "where to write the deployment file (default: deployments/<network>.json)")
    .option("--payment-token <address>", "an existing ERC-20 to use (default: deploy TestUSD)")
    .option("--withdrawal-delay <seconds>", "seconds between a withdrawal request and its execution (default 3 days)")
    .option("--price-notice <seconds>", "seconds before a price change applies (default 1 day)")
    .option("--fee-bps <bps>", "protocol fee in basis points (default 250)")
    .option("--treasury <address>", "where protocol fees go (default: the deployer)")
    .option("--owner <address>", "who may pause and set the fee (default: the deployer)")
    .option("--deployer <address>", "which of the network's accounts deploys (default: the first)")
    .option("--deployment-id <id>", "Ignition journal name (default chain-<chainId>)")
    .option("--reset", "forget Ignition's journal for this id and deploy anew")
    .addHelpText(
      "after",
      examples(
        "tollgate operator deploy                       # to `npx hardhat node` running in another terminal",
        "TOLLGATE_RPC_URL=https://… TOLLGATE_KEYSTORE=key.json TOLLGATE_KEYSTORE_PASSWORD=… tollgate operator deploy --network rpc --payment-token 0x…",
      ),
    )
    .action((options: DeployOptions, cmd: Command) => deploy(context(cmd), options));

  operator
    .command("start-gateway")
    .description("run the metered gateway (server/gateway/main.ts) in the foreground; needs TOLLGATE_GATEWAY_SIGNER_KEY")
    .option("--config <file>", "gateway config file (default: TOLLGATE_CONFIG or tollgate.config.json)")
    .option("--port <port>", "listen port (TOLLGATE_PORT)")
    .option("--instances <n>", "run N instances sharing the port, each with its own key and store (needs the config's fleet section)", "1")
    .addHelpText(
      "after",
      examples(
        "TOLLGATE_GATEWAY_SIGNER_KEY=0x… tollgate operator start-gateway --config tollgate.config.json",
        "TOLLGATE_GATEWAY_SIGNER_KEY=0x<base key> tollgate operator start-gateway --instances 4   # keys derived per instance",
      ),
    )
    .action(async (options: { config?: string; port?: string; instances: string }, cmd: Command) => {
      const ctx = context(cmd);
      const instances = instanceCountOption(options.instances);
      const env = serverEnv(ctx, { TOLLGATE_CONFIG: options.config, TOLLGATE_PORT: options.port });
      // One instance is the plain gateway, exactly as without the flag.
      const code =
        instances === 1
          ? await runServer(ctx, "server/gateway/main.ts", env)
          : await runServer(ctx, "server/gateway-instances/main.ts", { ...env, [INSTANCES_ENV]: String(instances) });
      if (code !== 0) throw new CliError(`the gateway exited with code ${code}`, "its output above says why");
    });

  operator
    .command("start-oracle")
    .description("run the settlement oracle (server/oracle/main.ts) in the foreground; needs TOLLGATE_ORACLE_KEY and the gateway signer key")
    .option("--config <file>", "config file (default: TOLLGATE_CONFIG or tollgate.config.json)")
    .option("--instances <n>", "settle every instance of `start-gateway --instances N` (same keys, same stores) with this one oracle key", "1")
    .addHelpText(
      "after",
      examples("TOLLGATE_ORACLE_KEY=0x… TOLLGATE_GATEWAY_SIGNER_KEY=0x… tollgate operator start-oracle", "TOLLGATE_ORACLE_KEY=0x… TOLLGATE_GATEWAY_SIGNER_KEY=0x<base key> tollgate operator start-oracle --instances 4"),
    )
    .action(async (options: { config?: string; instances: string }, cmd: Command) => {
      const ctx = context(cmd);
      const instances = instanceCountOption(options.instances);
      const code = await runServer(ctx, "server/oracle/main.ts", serverEnv(ctx, { TOLLGATE_CONFIG: options.config, [INSTANCES_ENV]: instances > 1 ? String(instances) : undefined }));
      if (code !== 0) throw new CliError(`the oracle exited with code ${code}`, "its output above says why");
    });

  registerOperatorInstances(operator, context);

  operator
    .command("status")
    .description("chain, block, pause state, fee, treasury, accrued fees, counts; with --signer, a gateway key's status (needs no key)")
    .option("--signer <address>", "also show this gateway key's provider, authorization and next sequence")
    .addHelpText("after", examples("tollgate operator status", "tollgate operator status --signer 0x90F79bf6EB2c4f870365E785982E1f101E93b906 --json"))
    .action((options: { signer?: string }, cmd: Command) => status(context(cmd), options));

  operator
    .command("pause")
    .description("stop settlement and credit purchases (owner only); deposits and withdrawals keep working")
    .action((_options: unknown, cmd: Command) => setPaused(context(cmd), true));
  operator
    .command("unpause")
    .description("resume settlement and credit purchases (owner only)")
    .action((_options: unknown, cmd: Command) => setPaused(context(cmd), false));
  operator
    .command("set-fee")
    .description("set the protocol fee in basis points (owner only; capped by MAX_FEE_BPS)")
    .argument("<bps>", "basis points, e.g. 250 for 2.5%")
    .action((bps: string, _options: unknown, cmd: Command) => setFee(context(cmd), bps));
  operator
    .command("set-treasury")
    .description("set where protocol fees go (owner only)")
    .argument("<address>", "the treasury")
    .action((address: string, _options: unknown, cmd: Command) => setTreasury(context(cmd), address));
  operator
    .command("collect-fees")
    .description("sweep the accrued protocol fees to the treasury (anyone may)")
    .action((_options: unknown, cmd: Command) => collectFees(context(cmd)));
}
