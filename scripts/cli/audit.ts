/**
 * `tollgate audit`: every charge of a deployment rebuilt from chain data alone (no gateway, no usage store,
 * no key), every balance rebuilt from the events since deployment and compared with the contracts' state.
 * The group's own action is the chain audit; `registerAuditReceipts(auditCommand)` adds `audit receipts`.
 *
 * Exit status: 0 when everything agrees, 1 with findings (each named), 2 when the audit could not run.
 */
import path from "node:path";
import { CommanderError, type Command } from "commander";
import { createPublicClient, erc20Abi, http, type Address, type PublicClient } from "viem";
import { auditChain, type ChainAudit, type ChainAuditOptions } from "../../client/audit/chain-audit";
import { loadChainHistory, type LoadChainHistoryReturnType, type ScanProgress } from "../../client/audit/load-chain-history";
import { countingTransport } from "../../client/audit/rpc/counting-transport";
import { DEFAULT_MAX_RANGE } from "../../client/audit/rpc/log-scan";
import { rpcStateReader } from "../../client/audit/rpc-state-reader";
import { readDeploymentFile } from "../../server/chain/deployment";
import { checkpointFile, defaultCheckpointPath } from "../lib/audit-checkpoint-file";
import { MAX_UINT32, parseAddress, parseId, parseInteger } from "./arguments";
import { renderAuditCsv, renderAuditJson, renderAuditText, type AuditRunFacts } from "./audit-report";
import { examples, toJson, type CliContext, type ContextFactory } from "./context";
import { CliError, describeError } from "./errors";
import { progressLine, type ProgressStream } from "./progress-line";

/** Exit statuses of `tollgate audit`, for scripts and CI. */
export const AUDIT_EXIT = { clean: 0, findings: 1, failed: 2 } as const;

interface AuditOptions {
  tollgate?: string;
  buyer?: string;
  provider?: string;
  signer?: string;
  fromBlock?: string;
  toBlock?: string;
  atBlock?: string;
  csv?: boolean;
  checkpoint: string | false | undefined;
  maxRange?: string;
  traces?: boolean;
}

interface AuditTarget {
  tollgate: Address;
  deployBlock?: bigint;
  /** The chain the deployment file names, checked against the RPC's. */
  chainId?: number;
  source: string;
}

/** `--tollgate` alone, or the deployment file (the global --deployment, or its default) when not given. */
function targetOf(ctx: CliContext, options: AuditOptions): AuditTarget {
  if (options.tollgate !== undefined) {
    if (ctx.options.explicit.has("deployment")) {
      throw new CliError("both --tollgate and --deployment are given", "give one: --tollgate ADDRESS audits from the chain alone, --deployment FILE reads the address and deploy block from the file");
    }
    return { tollgate: parseAddress(options.tollgate, "--tollgate"), source: "--tollgate" };
  }
  const deployment = ctx.readDeployment();
  return {
    tollgate: deployment.tollgate,
    deployBlock: deployment.deployBlock === undefined ? undefined : BigInt(deployment.deployBlock),
    chainId: deployment.chainId,
    source: ctx.options.deployment,
  };
}

function filtersOf(options: AuditOptions): ChainAuditOptions {
  const filters: ChainAuditOptions = {};
  if (options.buyer !== undefined) filters.buyer = parseAddress(options.buyer, "--buyer");
  if (options.provider !== undefined) filters.provider = parseId(options.provider, "--provider");
  if (options.signer !== undefined) filters.signer = parseAddress(options.signer, "--signer");
  if (options.fromBlock !== undefined) filters.fromBlock = parseInteger(options.fromBlock, "--from-block");
  if (options.toBlock !== undefined) filters.toBlock = parseInteger(options.toBlock, "--to-block");
  if (filters.fromBlock !== undefined && filters.toBlock !== undefined && filters.fromBlock > filters.toBlock) {
    throw new CliError(`--from-block ${filters.fromBlock} is after --to-block ${filters.toBlock}`, "swap them, or drop one");
  }
  return filters;
}

async function tokenUnits(client: PublicClient, address: Address, atBlock: bigint): Promise<AuditRunFacts["token"]> {
  // A token without decimals() or symbol() is still audited, in base units.
  const [decimals, symbol] = await Promise.all([
    client.readContract({ address, abi: erc20Abi, functionName: "decimals", blockNumber: atBlock }).catch(() => 0),
    client.readContract({ address, abi: erc20Abi, functionName: "symbol", blockNumber: atBlock }).catch(() => "units"),
  ]);
  return { address, decimals: Number(decimals), symbol };
}

function describeScan(progress: ScanProgress): [label: string, done: bigint | number, total: bigint | number, detail: string] {
  if (progress.phase === "logs") {
    return ["scanning logs: blocks", progress.scannedBlocks, progress.totalBlocks, `${progress.logs.toLocaleString("en-US")} logs, ${progress.requests} requests`];
  }
  return [`reading blocks for ${progress.step ?? "batches"}`, progress.blocksFetched ?? 0, progress.blocksToFetch ?? 0, `${progress.requests} requests`];
}

async function runAudit(ctx: CliContext, options: AuditOptions): Promise<number> {
  const json = ctx.options.json;
  if (json && options.csv) throw new CliError("--json and --csv are both given", "choose one output format");
  const target = targetOf(ctx, options);
  const filters = filtersOf(options);
  const maxRange = options.maxRange === undefined ? DEFAULT_MAX_RANGE : parseInteger(options.maxRange, "--max-range", { min: 1n, max: MAX_UINT32 });
  const atBlock = options.atBlock === undefined ? undefined : parseInteger(options.atBlock, "--at-block");

  // Batching lets the state reads (one per buyer, plan, provider) travel together; every call is still counted.
  const counted = countingTransport(http(ctx.options.rpc, { batch: { batchSize: 100, wait: 0 }, retryCount: 0, timeout: 60_000 }));
  const client = createPublicClient({ transport: counted.transport }) as PublicClient;
  const chainId = await client.getChainId();
  if (target.chainId !== undefined && target.chainId !== chainId) {
    throw new CliError(
      `the deployment file ${target.source} is for chain ${target.chainId}, but the RPC at ${ctx.options.rpc} serves chain ${chainId}`,
      "point --rpc (TOLLGATE_RPC_URL) at the chain of the deployment, or give --tollgate ADDRESS instead of the file",
    );
  }

  const checkpointPath = options.checkpoint === false ? undefined : path.resolve(options.checkpoint ?? defaultCheckpointPath(chainId, target.tollgate));
  const progress = progressLine(ctx.io.stderr as ProgressStream);
  let history: LoadChainHistoryReturnType;
  try {
    history = await loadChainHistory(
      client,
      { tollgate: target.tollgate, deployBlock: target.deployBlock },
      {
        toBlock: atBlock,
        maxRange,
        traces: options.traces,
        checkpoint: checkpointPath ? checkpointFile(checkpointPath) : undefined,
        onProgress: (scan) => progress.update(...describeScan(scan)),
        onNotice: (text) => progress.note(text),
      },
    );
    const state = rpcStateReader(client, history);
    const audit = await auditChain(history, state, filters, (replayed, total) => progress.update("replaying logs", replayed, total, ""));
    progress.done();

    const sources: Record<string, number> = {};
    for (const kind of ["calldata", "event", "trace", "unavailable"]) {
      const count = [...history.batches.values()].filter((source) => source.kind === kind).length;
      if (count) sources[kind] = count;
    }
    const facts: AuditRunFacts = {
      token: await tokenUnits(client, history.paymentToken, history.auditBlock),
      rpc: { ...history.stats, stateRequests: state.requests, totalRequests: counted.counter.total },
      sources,
      checkpoint: checkpointPath,
    };
    write(ctx, audit, facts, options);
    return audit.ok ? AUDIT_EXIT.clean : AUDIT_EXIT.findings;
  } finally {
    progress.done();
  }
}

function write(ctx: CliContext, audit: ChainAudit, facts: AuditRunFacts, options: AuditOptions): void {
  if (ctx.options.json) {
    ctx.io.stdout.write(renderAuditJson(audit, facts));
    return;
  }
  if (options.csv) {
    ctx.io.stdout.write(renderAuditCsv(audit));
    // The rows say nothing of findings; the exit status does, and stderr names them.
    for (const finding of audit.findings) ctx.io.stderr.write(`finding [${finding.code}] ${finding.message}\n`);
    return;
  }
  ctx.io.stdout.write(renderAuditText(audit, facts));
}

/**
 * An audit that could not run: say what went wrong and what to do, then exit 2 (not 1, which means findings).
 * `tollgate audit receipts` ends the same way, so both audits share one exit-status convention.
 */
export function auditCouldNotRun(ctx: CliContext, error: unknown): never {
  const report = describeError(error, ctx.errorContext());
  if (ctx.options.json) ctx.io.stderr.write(`${toJson({ error: report })}\n`);
  else {
    ctx.io.stderr.write(`error: the audit could not run: ${report.message}\n`);
    if (report.hint) ctx.io.stderr.write(`hint: ${report.hint}\n`);
  }
  throw new CommanderError(AUDIT_EXIT.failed, "tollgate.audit.failed", report.message);
}

/** Registers `tollgate audit` and returns its command, for `audit receipts` and other subcommands to attach to. */
export function registerAudit(program: Command, context: ContextFactory): Command {
  const audit = program
    .command("audit")
    .description("rebuild every charge and balance of a deployment from chain data alone, and compare with the contracts (exit 0 clean, 1 findings, 2 could not run)")
    .option("--tollgate <address>", "audit the Tollgate at this address, finding its deploy block from the chain (instead of --deployment)")
    .option("--buyer <address>", "check and report only this buyer's charges and balances")
    .option("--provider <id>", "check and report only this provider's batches and earnings")
    .option("--signer <address>", "check and report only this gateway signer's batches")
    .option("--from-block <n>", "check and report only batches settled at or after this block")
    .option("--to-block <n>", "check and report only batches settled at or before this block")
    .option("--at-block <n>", "the audit block: read history up to it and compare with the contracts' state there (default: the latest block)")
    .option("--csv", "print CSV rows per buyer, provider, model and day (kind column; amounts in base units); findings go to stderr")
    .option("--checkpoint <file>", "where the log scan saves its progress, to resume an interrupted or earlier scan (default .tollgate/audit-<chain>-<tollgate>.jsonl)")
    .option("--no-checkpoint", "scan from the deploy block without saving or reading a checkpoint")
    .option("--max-range <blocks>", `the widest block range asked for in one eth_getLogs; narrowed automatically when the provider refuses it (default ${DEFAULT_MAX_RANGE})`)
    .option("--traces", "for a batch found neither in calldata nor in BatchDataPublished, try debug_traceTransaction (a node with the debug API)")
    .addHelpText(
      "after",
      `
Filters limit what is checked and reported, never what is replayed: the ledger is always rebuilt from every
event since deployment, because each balance depends on everything before it.

Needs only an RPC URL (--rpc or TOLLGATE_RPC_URL) and the deployment: no gateway, no usage store, no key.
Exit status: 0 when everything agrees, 1 when there are findings (each named: what, where, expected vs found),
2 when the audit could not run (with what went wrong and what to do).
${examples(
  "tollgate audit",
  "tollgate audit --rpc https://rpc.example --tollgate 0x5FbDB2315678afecb367f032d93F642f64180aa3",
  "tollgate audit --buyer 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --csv > usage.csv",
  "tollgate audit --json --max-range 2000 | jq .findings",
)}`,
    )
    // A mistyped option is an audit that could not run (2), never "findings" (1); help and version stay 0.
    .exitOverride((error) => {
      throw error.exitCode === 0 ? error : new CommanderError(AUDIT_EXIT.failed, error.code, error.message);
    })
    .action(async (options: AuditOptions, cmd: Command) => {
      const ctx = context(cmd);
      let code: number;
      try {
        code = await runAudit(ctx, options);
      } catch (error) {
        auditCouldNotRun(ctx, error);
      }
      if (code !== AUDIT_EXIT.clean) throw new CommanderError(code, "tollgate.audit.findings", "the audit has findings");
    });
  return audit;
}
