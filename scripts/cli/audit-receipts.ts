/**
 * `tollgate audit receipts FILE`: a buyer's receipts (the gateway's `/v1/usage` export, JSON or CSV)
 * reconciled with what the chain settled, by `reconcileReceipts` over the batches `auditSettlements`
 * rebuilds from the chain. Exit status: 0 when everything agrees and is settled, 2 when anything disagrees,
 * 3 when nothing disagrees but some receipts are not settled (or not proven) yet; 1 when the audit could not
 * run at all, as for every command.
 *
 * `--dispute` is not here yet: the findings a contract could be shown are listed, with the receipts, batch
 * headers and proofs a dispute needs, as `disputeCandidates` in the `--json` output.
 */
import fs from "node:fs";
import { Command, CommanderError } from "commander";
import { createPublicClient, createWalletClient, http, type Address, type PublicClient } from "viem";
import {
  auditDeployment,
  createTollgateClient,
  disputeCandidates,
  parseUsageExport,
  reconcileReceipts,
  settlementAuditOf,
  submitDisputes,
  UsageExportError,
  withWallet,
  type AuditedBatch,
  type DisputeCandidate,
  type DisputeOutcome,
  type ReceiptFinding,
  type TollgateClient,
  type UsageExport,
} from "../../client";
import type { Deployment } from "../../server/chain/deployment-schema";
import { createCallRecount } from "../../server/gateway/metering/recount-call";
import { formatTimestamp, MAX_UINT64, parseAddress, parseInteger } from "./arguments";
import { examples, type CliContext, type ContextFactory } from "./context";
import { CliError } from "./errors";
import { auditCouldNotRun } from "./audit";

/**
 * Exit statuses, as `tollgate audit`'s (0 clean, 1 findings, 2 could not run), plus 3: nothing disagrees but
 * some receipts are not settled or proven yet.
 */
export const AUDIT_EXIT = { agrees: 0, discrepancies: 1, failed: 2, pending: 3 } as const;

interface AuditReceiptsOptions {
  tollgate?: string;
  signer?: string;
  buyer?: string;
  tokenToleranceBps: string;
  afterSequence?: string;
  throughSequence?: string;
  dispute?: boolean;
}

function readExport(file: string): UsageExport {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, "give the path of a file saved from the gateway's GET /v1/usage");
  }
  try {
    return parseUsageExport(text);
  } catch (error) {
    if (error instanceof UsageExportError) throw new CliError(`${file}: ${error.shortMessage}`, error.hint);
    throw error;
  }
}

/** The chain and the deployment: the deployment file's, or just `--tollgate` on the chain `--rpc` serves. */
async function chainOf(ctx: CliContext, tollgate: Address | undefined): Promise<{ client: PublicClient; deployment: Deployment; fromFile: boolean }> {
  if (!tollgate) {
    const { client, deployment } = await ctx.connect();
    return { client, deployment, fromFile: true };
  }
  const client = createPublicClient({ transport: http(ctx.options.rpc, { retryCount: 1, timeout: 20_000 }) }) as PublicClient;
  const chainId = await client.getChainId();
  const code = await client.getCode({ address: tollgate });
  if (!code || code === "0x") throw new CliError(`there is no contract at ${tollgate} on chain ${chainId} (${ctx.options.rpc})`, "check --tollgate and --rpc");
  // No deploy block known: the scan for settlements starts at genesis, which is slower but misses nothing.
  return { client, deployment: { chainId, tollgate }, fromFile: false };
}

function where(finding: ReceiptFinding): string {
  const w = finding.where;
  const parts = [`signer ${w.signer}`, `sequence ${w.sequence}`];
  if (w.rows.length > 0) parts.push(`row${w.rows.length > 1 ? "s" : ""} ${w.rows.join(", ")}`);
  if (w.txHash) parts.push(`tx ${w.txHash}`);
  if (w.batchFirstSequence !== undefined) parts.push(`batch from ${w.batchFirstSequence}`);
  return parts.join(", ");
}

/**
 * `--dispute`: a fraud proof per candidate, signed with the key from the environment (anyone may prove; the
 * refund goes to the charged buyer and the penalty to the receipt's buyer, whoever sends it). Both are
 * awarded, not credited: each beneficiary claims them with `tollgate buyer claim-awards` once BOND_WITHDRAWAL_DELAY
 * has passed, so a provider proving its own fraud cannot get its bond out sooner. The key is loaded first, so a
 * missing key is said before any transaction.
 */
async function submitCandidates(ctx: CliContext, chain: Awaited<ReturnType<typeof chainOf>>, candidates: DisputeCandidate[]) {
  const account = await ctx.signer();
  let client: TollgateClient;
  if (chain.fromFile) client = await ctx.client();
  else {
    // Only --tollgate: the wallet talks to the chain --rpc serves.
    const base = await createTollgateClient({ publicClient: chain.client, deployment: chain.deployment });
    client = withWallet(base, createWalletClient({ account, transport: http(ctx.options.rpc) }), (progress) => {
      if (progress.stage === "pending") ctx.out.say(`  ${progress.description}: tx ${progress.hash}`);
    });
  }
  if (candidates.length > 0) ctx.out.warn(`submitting ${candidates.length} fraud proof${candidates.length === 1 ? "" : "s"} from ${account.address} …`);
  return submitDisputes(client, { candidates });
}

function disputeLine(outcome: DisputeOutcome): string {
  const at = `signer ${outcome.candidate.signer}, sequence ${outcome.candidate.sequence}`;
  if (outcome.status === "proven") {
    const f = outcome.fraud;
    const claimableAt = f.awards.reduce((latest, award) => (award.claimableAt > latest ? award.claimableAt : latest), 0n);
    const claim = claimableAt === 0n ? "nothing awarded (the bond was empty)" : `awarded, claimable from ${formatTimestamp(claimableAt)} (unix ${claimableAt}) with \`tollgate buyer claim-awards\``;
    return `proven (${outcome.proof}) ${at}: tx ${f.hash}; refund ${f.refund} to ${f.refundedBuyer}, penalty ${f.penalty} to ${f.penalizedTo} (base units), ${claim}; the key is now compromised`;
  }
  if (outcome.status === "refused") return `refused (${outcome.proof}) ${at}: ${outcome.error}`;
  return `not submitted ${at}: ${outcome.reason}`;
}

function disputeJson(outcome: DisputeOutcome) {
  const base = { status: outcome.status, signer: outcome.candidate.signer, sequence: outcome.candidate.sequence, reason: outcome.candidate.reason };
  if (outcome.status === "proven") return { ...base, proof: outcome.proof, fraud: outcome.fraud };
  if (outcome.status === "refused") return { ...base, proof: outcome.proof, error: outcome.error, errorName: outcome.errorName };
  return { ...base, why: outcome.reason };
}

/** A finding for `--json`: the receipts without their retained bytes, which the file already holds. */
function findingJson(finding: ReceiptFinding) {
  return {
    ...finding,
    receipts: finding.receipts?.map(({ retained: _retained, ...receipt }) => receipt),
  };
}

async function auditReceipts(ctx: CliContext, file: string, options: AuditReceiptsOptions): Promise<void> {
  const tollgate = options.tollgate ? parseAddress(options.tollgate, "--tollgate") : undefined;
  const onlySigner = options.signer ? parseAddress(options.signer, "--signer") : undefined;
  const buyer = options.buyer ? parseAddress(options.buyer, "--buyer") : undefined;
  const tolerance = Number(parseInteger(options.tokenToleranceBps, "--token-tolerance-bps", { max: 10_000n }));
  const coverage = {
    afterSequence: options.afterSequence === undefined ? undefined : parseInteger(options.afterSequence, "--after-sequence", { max: MAX_UINT64 }),
    throughSequence: options.throughSequence === undefined ? undefined : parseInteger(options.throughSequence, "--through-sequence", { max: MAX_UINT64 }),
  };
  const usageExport = readExport(file);
  const out = ctx.out;
  const signers = onlySigner ? [onlySigner] : [...new Set(usageExport.receipts.map((r) => r.signer))];
  if (signers.length === 0) {
    throw new CliError(`${file} holds no receipts, so no gateway key to audit`, "name the gateway key with --signer to check the chain for records without receipt");
  }

  const chain = await chainOf(ctx, tollgate);
  const { client, deployment } = chain;
  const batches: AuditedBatch[] = [];
  const chainProblems: string[] = [];
  // One chain audit, read once, for every gateway key in the export (its filter keeps one key's batches).
  out.warn(`reading the batches ${signers.join(", ")} settled on chain ${deployment.chainId} …`);
  const audit = settlementAuditOf(await auditDeployment(client, deployment, { signer: signers.length === 1 ? signers[0] : undefined }));
  const ofSigners = new Set(signers.map((signer) => signer.toLowerCase()));
  batches.push(...audit.batches.filter((batch) => ofSigners.has(batch.signer.toLowerCase())));
  chainProblems.push(...audit.problems);

  const withContent = usageExport.receipts.filter((r) => r.retained).length;
  const counter = withContent > 0 ? createCallRecount() : undefined;
  if (counter) out.warn(`recounting the tokens of ${withContent} retained call${withContent === 1 ? "" : "s"} …`);
  let result;
  try {
    result = await reconcileReceipts({
      usageExport,
      batches,
      deployment: { chainId: deployment.chainId, tollgate: deployment.tollgate },
      signer: onlySigner,
      buyer,
      recount: counter?.recount,
      tokenToleranceBps: tolerance,
      coverage,
      onProgress: (checked, total) => out.warn(`  checked ${checked} of ${total} receipts' hashes and signatures …`),
    });
  } finally {
    await counter?.close();
  }
  const candidates = disputeCandidates(result, usageExport, batches);
  const disputes = options.dispute ? await submitCandidates(ctx, chain, candidates) : undefined;
  const discrepancies = result.findings.filter((f) => f.severity === "discrepancy");
  const pending = result.findings.filter((f) => f.severity === "pending");
  const exitCode = !result.agrees ? AUDIT_EXIT.discrepancies : !result.complete ? AUDIT_EXIT.pending : AUDIT_EXIT.agrees;

  out.result({
    file,
    format: usageExport.format,
    chainId: deployment.chainId,
    tollgate: deployment.tollgate,
    buyer: result.buyer ?? null,
    signers: result.signers,
    agrees: result.agrees,
    complete: result.complete,
    exitCode,
    counts: result.counts,
    coverage: result.coverage,
    batches: batches.length,
    chainProblems,
    findings: result.findings.map(findingJson),
    disputeCandidates: candidates,
    disputes: disputes?.map(disputeJson),
  });

  const c = result.counts;
  out.say(`Receipts of ${result.buyer ?? "(unknown buyer)"} in ${file} (${usageExport.format}), Tollgate ${deployment.tollgate} on chain ${deployment.chainId}`);
  out.say(`  gateway keys: ${result.signers.join(", ")}; ${batches.length} settled batches read`);
  out.say(`  ${c.receipts} receipts: ${c.settled} settled (${c.proven} proven in their batch's content root), ${c.unsettled} not settled`);
  if (c.contentChecked > 0) out.say(`  ${c.contentChecked} with retained content: hashes recomputed, tokens recounted`);
  out.say(`  records without receipt: ${result.coverage.checked ? `${c.onChainRecords} on-chain records checked (${result.coverage.description})` : result.coverage.description}`);
  for (const problem of chainProblems) out.say(`  chain audit: ${problem}`);
  const list = (title: string, findings: ReceiptFinding[]) => {
    if (findings.length === 0) return;
    out.say(`${title} (${findings.length}):`);
    for (const finding of findings) {
      out.say(`  ${finding.code}  ${where(finding)}`);
      out.say(`      ${finding.message}${finding.field ? `  [${finding.field}: expected ${finding.expected}, found ${finding.found}]` : ""}`);
    }
  };
  list("Discrepancies", discrepancies);
  list("Pending", pending);
  if (candidates.length > 0 && !disputes) {
    out.say(`Dispute candidates: ${candidates.length} (receipts, batch headers and proofs in the --json output; --dispute submits the proofs)`);
  }
  if (disputes) {
    out.say(`Disputes (${disputes.length}):`);
    for (const outcome of disputes) out.say(`  ${disputeLine(outcome)}`);
  }
  out.say(
    exitCode === AUDIT_EXIT.agrees
      ? "Everything agrees: every receipt is settled as signed, and every on-chain charge has its receipt."
      : exitCode === AUDIT_EXIT.pending
        ? "Nothing disagrees, but not everything is settled and proven yet: run the audit again after the next settlement."
        : `${discrepancies.length} discrepanc${discrepancies.length === 1 ? "y" : "ies"}: keep the export and this report; they are evidence.`,
  );
  if (exitCode !== AUDIT_EXIT.agrees) {
    // Not an error: the report is printed; the status tells scripts what it said.
    throw new CommanderError(exitCode, "tollgate.audit.receipts", `audit result ${exitCode}`);
  }
}

/** Adds `receipts` to the `audit` group, beside whatever else the group holds (`tollgate audit`, the chain audit). */
export function registerAuditReceipts(audit: Command, context: ContextFactory): void {
  audit
    .command("receipts")
    .description("reconcile a buyer's receipts (the gateway's GET /v1/usage export, JSON or CSV) with what the chain settled")
    .argument("<file>", "the export, saved from GET /v1/usage (JSON; add include_content=true for retained bytes) or ?format=csv")
    .option("--tollgate <address>", "the Tollgate contract to audit against, on the chain --rpc serves (instead of the deployment file)")
    .option("--signer <address>", "audit only this gateway key's receipts and records")
    .option("--buyer <address>", "the buyer, when the export names none (an empty CSV)")
    .option("--token-tolerance-bps <n>", "how far a recount of retained bytes may differ from the receipt, in basis points", "0")
    .option("--after-sequence <n>", "check for records without receipt only after this sequence (the export's own filter by default)")
    .option("--through-sequence <n>", "… and only up to this sequence (a CSV does not say where it ends)")
    .option("--dispute", "submit an on-chain fraud proof for every signed receipt the chain contradicts (key from TOLLGATE_PRIVATE_KEY or a keystore)")
    .addHelpText(
      "after",
      `
Exit status: 0 everything agrees and is settled; 1 discrepancies (each named with what, where and expected vs found);
2 the audit could not run; 3 nothing disagrees but some receipts are not settled or proven yet.
${examples(
  "curl -H \"authorization: Bearer $TOLLGATE_API_KEY\" \"$TOLLGATE_GATEWAY_URL/v1/usage?limit=10000\" > usage.json && tollgate audit receipts usage.json",
  "tollgate audit receipts usage.csv --signer 0x… --json",
)}`,
    )
    .action(async (file: string, options: AuditReceiptsOptions, cmd: Command) => {
      const ctx = context(cmd);
      // `tollgate audit` has --tollgate, --signer and --buyer of its own, and commander gives an option both
      // commands know to the parent: take them from there when this command did not get them.
      const parent = (cmd.parent?.opts() ?? {}) as Partial<AuditReceiptsOptions>;
      const merged: AuditReceiptsOptions = {
        ...options,
        tollgate: options.tollgate ?? parent.tollgate,
        signer: options.signer ?? parent.signer,
        buyer: options.buyer ?? parent.buyer,
      };
      try {
        await auditReceipts(ctx, file, merged);
      } catch (error) {
        // The result statuses pass through; anything else means the audit could not run.
        if (error instanceof CommanderError) throw error;
        auditCouldNotRun(ctx, error);
      }
    });
}
