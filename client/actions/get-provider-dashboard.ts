/**
 * What a provider's page shows about its money and its gateway keys, from the chain: earnings waiting to be
 * withdrawn, the bond, every signer it ever authorized (with its authorization, next sequence and whether a
 * fraud proof marked it compromised), every batch settled for it (cost, earnings, fee, shortfall, and the gas
 * its transaction used) and every shortfall recorded against its signers. Usage per model and day is the
 * chain audit's (`usageByModelAndDay` over `auditDeployment(..., { provider })`), which rebuilds each record.
 * Browser-safe: viem only.
 */
import type { Address, Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { mapWithLimit } from "../audit/rpc/rpc-caller";
import { eventsNamed, readTollgateEvents, topicOfNumber, type ReadTollgateEventsParameters } from "../internal/tollgate-events";
import type { TollgateClient } from "../tollgate-client";
import { getBond, type GetBondReturnType } from "./get-bond";

export interface GetProviderDashboardParameters extends ReadTollgateEventsParameters {
  providerId: number;
}

export interface ProviderSigner {
  signer: Address;
  authorized: boolean;
  /** The sequence its next batch must start at: how many records it has settled. */
  nextSequence: bigint;
  /** Proven to have signed something false; its batches revert from then on and it cannot be authorized again. */
  compromised: boolean;
  /** Every authorization change, oldest first. */
  changes: { authorized: boolean; blockNumber: bigint; transactionHash: Hash }[];
}

export interface SettledBatchRow {
  transactionHash: Hash;
  blockNumber: bigint;
  /** Unix seconds of the block. */
  time: number;
  signer: Address;
  firstSequence: bigint;
  records: bigint;
  totalCost: bigint;
  providerEarnings: bigint;
  protocolFee: bigint;
  shortfall: bigint;
  /** Gas used by the whole transaction (a relay may settle several batches in one). */
  gasUsed: bigint;
  /** How many batches that transaction settled: gasUsed is shared among them. */
  batchesInTransaction: number;
}

export interface ShortfallRow {
  buyer: Address;
  signer: Address;
  firstSequence: bigint;
  shortfall: bigint;
  transactionHash: Hash;
  blockNumber: bigint;
}

export interface GetProviderDashboardReturnType {
  providerId: number;
  /** Withdrawable now (`earningsOf`). */
  earnings: bigint;
  bond: GetBondReturnType;
  signers: ProviderSigner[];
  /** Oldest first. */
  batches: SettledBatchRow[];
  shortfalls: ShortfallRow[];
  totals: { batches: number; records: bigint; totalCost: bigint; providerEarnings: bigint; protocolFee: bigint; shortfall: bigint; gasUsed: bigint };
  blockNumber: bigint;
  fromBlock: bigint;
}
export type GetProviderDashboardErrorType = Error;

/** Blocks and receipts in flight at once: enough to be quick, few enough not to trip a public RPC's rate limit. */
const CONCURRENCY = 6;

export async function getProviderDashboard(client: Pick<TollgateClient, "public" | "contracts">, { providerId, ...parameters }: GetProviderDashboardParameters): Promise<GetProviderDashboardReturnType> {
  const address = client.contracts.tollgate;
  // Both events index the provider id as their second topic; shortfalls name only the signer, so all are read and kept by signer.
  const read = await readTollgateEvents(
    client,
    [{ events: ["SignerAuthorizationChanged", "BatchSettled"], topics: [null, topicOfNumber(providerId)] }, { events: ["ShortfallRecorded"] }],
    parameters,
  );
  const blockNumber = read.toBlock;

  const changes = eventsNamed(read.events, "SignerAuthorizationChanged");
  const signerAddresses = [...new Set(changes.map((event) => event.args.signer))];
  const [earnings, bond, signers] = await Promise.all([
    client.public.readContract({ address, abi: tollgateAbi, functionName: "earningsOf", args: [providerId], blockNumber }),
    getBond(client, { providerId }),
    Promise.all(
      signerAddresses.map(async (signer): Promise<ProviderSigner> => {
        const view = await client.public.readContract({ address, abi: tollgateAbi, functionName: "signerOf", args: [signer], blockNumber });
        return {
          signer,
          authorized: view.authorized,
          nextSequence: view.nextSequence,
          compromised: view.compromised,
          changes: changes
            .filter((event) => event.args.signer === signer)
            .map((event) => ({ authorized: event.args.authorized, blockNumber: event.blockNumber, transactionHash: event.transactionHash })),
        };
      }),
    ),
  ]);

  const settled = eventsNamed(read.events, "BatchSettled");
  const transactions = [...new Set(settled.map((event) => event.transactionHash))];
  const blocks = [...new Set(settled.map((event) => event.blockNumber))];
  const [receipts, times] = await Promise.all([
    mapWithLimit(transactions, CONCURRENCY, (hash) => client.public.getTransactionReceipt({ hash })),
    mapWithLimit(blocks, CONCURRENCY, async (number) => Number((await client.public.getBlock({ blockNumber: number })).timestamp)),
  ]);
  const gasOf = new Map(transactions.map((hash, i) => [hash, receipts[i].gasUsed]));
  const timeOf = new Map(blocks.map((number, i) => [number, times[i]]));
  const perTransaction = new Map<Hash, number>();
  for (const event of settled) perTransaction.set(event.transactionHash, (perTransaction.get(event.transactionHash) ?? 0) + 1);
  const batches = settled.map(
    (event): SettledBatchRow => ({
      transactionHash: event.transactionHash,
      blockNumber: event.blockNumber,
      time: timeOf.get(event.blockNumber)!,
      signer: event.args.signer,
      firstSequence: event.args.firstSequence,
      records: event.args.recordCount,
      totalCost: event.args.totalCost,
      providerEarnings: event.args.providerEarnings,
      protocolFee: event.args.protocolFee,
      shortfall: event.args.totalShortfall,
      gasUsed: gasOf.get(event.transactionHash)!,
      batchesInTransaction: perTransaction.get(event.transactionHash)!,
    }),
  );

  const ours = new Set(signerAddresses);
  const shortfalls = eventsNamed(read.events, "ShortfallRecorded")
    .filter((event) => ours.has(event.args.signer))
    .map((event): ShortfallRow => ({ buyer: event.args.buyer, signer: event.args.signer, firstSequence: event.args.firstSequence, shortfall: event.args.shortfall, transactionHash: event.transactionHash, blockNumber: event.blockNumber }));

  const totals = { batches: batches.length, records: 0n, totalCost: 0n, providerEarnings: 0n, protocolFee: 0n, shortfall: 0n, gasUsed: 0n };
  for (const batch of batches) {
    totals.records += batch.records;
    totals.totalCost += batch.totalCost;
    totals.providerEarnings += batch.providerEarnings;
    totals.protocolFee += batch.protocolFee;
    totals.shortfall += batch.shortfall;
  }
  for (const gas of gasOf.values()) totals.gasUsed += gas;
  return { providerId, earnings, bond, signers, batches, shortfalls, totals, blockNumber, fromBlock: read.fromBlock };
}
