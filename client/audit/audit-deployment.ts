/**
 * The chain audit of a deployment in one call, for the demo, the tests and the older `auditSettlements` /
 * `checkConservation` entry points: load the history over the client's RPC (`loadChainHistory`), read the
 * state at its audit block (`rpcStateReader`), and run `auditChain`. The CLI composes the same three parts
 * with progress and a checkpoint. Browser-safe: viem only.
 */
import type { PublicClient } from "viem";
import type { Deployment } from "../../server/chain/deployment-schema";
import { auditChain, type ChainAudit, type ChainAuditOptions } from "./chain-audit";
import { loadChainHistory, type LoadChainHistoryParameters } from "./load-chain-history";
import { rpcStateReader } from "./rpc-state-reader";

export interface AuditDeploymentParameters extends ChainAuditOptions {
  /** Passed to the loader (range, retries, checkpoint, progress). */
  load?: LoadChainHistoryParameters;
}

export async function auditDeployment(client: PublicClient, deployment: Pick<Deployment, "tollgate" | "deployBlock">, parameters: AuditDeploymentParameters = {}): Promise<ChainAudit> {
  const { load, ...options } = parameters;
  const history = await loadChainHistory(client, { tollgate: deployment.tollgate, deployBlock: deployment.deployBlock === undefined ? undefined : BigInt(deployment.deployBlock) }, load);
  return auditChain(history, rpcStateReader(client, history), options);
}
