/**
 * Every settled batch rebuilt from chain data alone, as `auditSettlements` has always returned it (the receipts
 * audit and the store audit read its `batches`): now a view of the chain audit (`chain-audit.ts`), which finds
 * batches relayed through contracts too, and names each disagreement as a finding; `problems` are their messages.
 */
import type { Address, PublicClient } from "viem";
import type { Deployment } from "../../server/chain/deployment-schema";
import { auditDeployment } from "./audit-deployment";
import type { ChainAudit } from "./chain-audit";
import type { AuditedBatch } from "./replay/audited-batch";

export type { AuditedBatch, AuditedRecord, UsageBatchHeader } from "./replay/audited-batch";

export interface SettlementAudit {
  batches: AuditedBatch[];
  /** Every disagreement found, in words (`code: message`); empty when the chain's own data is consistent. */
  problems: string[];
}

/** The settlement view of a chain audit already run. */
export function settlementAuditOf(audit: ChainAudit): SettlementAudit {
  return { batches: audit.batches, problems: audit.findings.map((finding) => `${finding.code}: ${finding.message}`) };
}

/** Audits `deployment` (the batches of one gateway signer, if given) and returns its settled batches and problems. */
export async function auditSettlements(client: PublicClient, deployment: Deployment, options: { signer?: Address } = {}): Promise<SettlementAudit> {
  return settlementAuditOf(await auditDeployment(client, deployment, { signer: options.signer }));
}
