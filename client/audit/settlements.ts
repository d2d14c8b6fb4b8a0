/**
 * Every settled batch rebuilt from its `settleBatch` calldata and the price epochs, with no trust in the
 * gateway or the oracle: each record priced at the epoch in force when it was served, the totals compared
 * with `BatchSettled`, the calldata's EIP-712 struct hash compared with the commitment the contract stored.
 */
import {
  decodeFunctionData,
  getAddress,
  hashStruct,
  type Address,
  type Hash,
  type Hex,
  type PublicClient,
} from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import type { Deployment } from "../../server/chain/deployment-schema";
import { usageBatchTypes } from "../../server/chain/eip712";
import { MarketplaceReader, priceEpochAt, type PriceEpoch } from "../../server/chain/marketplace-reader";
import { recordCost } from "../../server/chain/pricing";
import { decodeUsageBatch, usageBatchHeader, type DecodedRecord, type UsageBatch } from "../../server/chain/usage-batch";

export interface AuditedRecord extends DecodedRecord {
  epoch: PriceEpoch;
  cost: bigint;
}

/** The header `verifyReceiptSettled` takes: the batch with its three sections replaced by their hashes. */
export interface UsageBatchHeader {
  firstSequence: bigint;
  baseTime: number;
  buyersHash: Hash;
  modelsHash: Hash;
  recordsHash: Hash;
  contentRoot: Hash;
}

export interface AuditedBatch {
  txHash: Hash;
  blockNumber: bigint;
  signer: Address;
  providerId: number;
  firstSequence: bigint;
  recordCount: bigint;
  commitment: Hash;
  contentRoot: Hash;
  header: UsageBatchHeader;
  /** As the contract reported them in `BatchSettled`. */
  totalCost: bigint;
  providerEarnings: bigint;
  protocolFee: bigint;
  totalShortfall: bigint;
  /** Summed from `buyerResults`: what came out of buyer balances (the rest of the cost was credits or shortfall). */
  drawnFromBalance: bigint;
  records: AuditedRecord[];
  /** The sum of the rebuilt records' costs; equals `totalCost` when the audit passes. */
  rebuiltCost: bigint;
}

export interface SettlementAudit {
  batches: AuditedBatch[];
  /** Every disagreement found, in words; empty when the chain's own data is consistent. */
  problems: string[];
}

/** `BatchSettled.buyerResults`: per buyer entry, uint128 drawn from balance | uint128 shortfall. */
function drawnFrom(buyerResults: Hex): bigint {
  const body = buyerResults.slice(2);
  let drawn = 0n;
  for (let i = 0; i + 64 <= body.length; i += 64) drawn += BigInt(`0x${body.slice(i, i + 32)}`);
  return drawn;
}

/**
 * Rebuilds every batch settled on `deployment` (of one gateway signer, if given) from the settlement
 * transactions' calldata and the models' price epochs, and lists what disagrees with the contract's events.
 */
export async function auditSettlements(client: PublicClient, deployment: Deployment, options: { signer?: Address } = {}): Promise<SettlementAudit> {
  const tollgate = deployment.tollgate;
  const reader = new MarketplaceReader(client, tollgate);
  const events = await client.getContractEvents({
    address: tollgate,
    abi: tollgateAbi,
    eventName: "BatchSettled",
    args: options.signer ? { signer: options.signer } : undefined,
    fromBlock: BigInt(deployment.deployBlock ?? 0),
    strict: true,
  });
  const epochsOf = new Map<number, Promise<PriceEpoch[]>>();
  const epochs = (modelId: number) => {
    let found = epochsOf.get(modelId);
    if (!found) {
      found = reader.modelTerms(modelId).then((terms) => terms.epochs);
      epochsOf.set(modelId, found);
    }
    return found;
  };

  const problems: string[] = [];
  const batches: AuditedBatch[] = [];
  for (const event of events) {
    const { signer, providerId, firstSequence, recordCount, commitment, contentRoot, totalCost, providerEarnings, protocolFee, totalShortfall, buyerResults } = event.args;
    const where = `batch ${firstSequence}..${firstSequence + recordCount - 1n} of ${signer} (tx ${event.transactionHash})`;
    const tx = await client.getTransaction({ hash: event.transactionHash });
    let batch: UsageBatch;
    try {
      const call = decodeFunctionData({ abi: tollgateAbi, data: tx.input });
      if (call.functionName !== "settleBatch") throw new Error(`the transaction calls ${call.functionName}`);
      batch = call.args[0];
    } catch (error) {
      // A batch relayed through another contract has its calldata inside an internal call; this auditor reads top-level calls only.
      problems.push(`${where}: cannot read settleBatch calldata from the transaction (${(error as Error).message.split("\n")[0]})`);
      continue;
    }
    if (hashStruct({ data: batch, primaryType: "UsageBatch", types: usageBatchTypes }) !== commitment) {
      problems.push(`${where}: the calldata's batch does not hash to the commitment the contract stored`);
    }
    const records: AuditedRecord[] = [];
    for (const record of decodeUsageBatch(batch)) {
      const modelEpochs = await epochs(record.modelId);
      const epoch = modelEpochs[record.priceEpoch];
      if (!epoch) {
        problems.push(`${where}: record ${record.sequence} names price epoch ${record.priceEpoch} of model ${record.modelId}, which does not exist`);
        continue;
      }
      const inForce = priceEpochAt(modelEpochs, record.servedAt);
      if (inForce?.index !== epoch.index) {
        problems.push(`${where}: record ${record.sequence} was served at ${record.servedAt}, when epoch ${inForce?.index ?? "none"} was in force, but is priced at epoch ${epoch.index}`);
      }
      records.push({ ...record, epoch, cost: recordCost(record, epoch) });
    }
    const rebuiltCost = records.reduce((sum, record) => sum + record.cost, 0n);
    if (BigInt(records.length) !== recordCount) problems.push(`${where}: the calldata holds ${records.length} records, the event says ${recordCount}`);
    if (rebuiltCost !== totalCost) problems.push(`${where}: the records rebuilt cost ${rebuiltCost}, the contract charged ${totalCost}`);
    batches.push({
      txHash: event.transactionHash,
      blockNumber: event.blockNumber,
      signer: getAddress(signer),
      providerId,
      firstSequence,
      recordCount,
      commitment,
      contentRoot,
      header: usageBatchHeader(batch),
      totalCost,
      providerEarnings,
      protocolFee,
      totalShortfall,
      drawnFromBalance: drawnFrom(buyerResults),
      records,
      rebuiltCost,
    });
  }
  return { batches, problems };
}
