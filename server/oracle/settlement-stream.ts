/**
 * One gateway signer's settlement: its usage store, read in sequence order, turned into signed batches
 * that start exactly at the chain's `nextSequence` for that signer.
 *
 * Restart safety comes from the chain, not from memory. Every pass starts by reading the signer's next
 * sequence on-chain; records below it are settled whatever this process remembers, and are marked from
 * the chain's `BatchSettled` events. So a crash after signing (nothing sent: the same batch is rebuilt
 * and re-signed identically), after sending (the journaled transaction is watched to its end by
 * `TxSender.recover`), or after mining but before marking (the event marks it) neither settles a record
 * twice, which the contract's sequence check forbids anyway, nor skips one.
 */
import { decodeEventLog, encodeFunctionData, getAddress, type Address, type Hex, type LocalAccount, type PublicClient, type TransactionReceipt } from "viem";
import type { Logger } from "pino";
import { tollgateAbi, tollgateCreditsAbi } from "../chain/abis";
import { MarketplaceReader, type CreditPlanTerms, type HeldCredits } from "../chain/marketplace-reader";
import { signedUsageBatch } from "../chain/sign-batch";
import type { StoredUsageRecord, UsageStore } from "../store/usage-store";
import { batchPrefix, chooseCreditPlans } from "./batch-planner";
import { revertOf, unknownRevert, type DecodedRevert } from "../chain/revert";
import { describeRpcError } from "./chain-errors";
import { SettledBatchScanner, type WithdrawalWatch } from "./chain-logs";
import type { OracleSettings } from "./config";
import type { OracleMetrics } from "./metrics";
import type { TxSender } from "./tx-sender";
import { SubscriptionRenewals } from "./subscription-renewals";

export type StreamState = "starting" | "idle" | "waiting" | "settling" | "blocked" | "rpc_unavailable" | "error";

export interface StreamHealth {
  signer: Address;
  storePath: string;
  state: StreamState;
  providerId: number | null;
  authorized: boolean | null;
  /** The chain's next sequence for this signer, as last read. */
  nextSequence: string | null;
  recordsPending: number;
  oldestPendingServedAt: number | null;
  lastBatch: { firstSequence: string; lastSequence: string; records: number; txHash: Hex; gasUsed: string; settledAt: number } | null;
  lastError: { message: string; revert?: string; at: number } | null;
}

export type TickResult =
  | { kind: "idle" }
  | { kind: "waiting"; pending: number }
  | { kind: "settled"; firstSequence: bigint; lastSequence: bigint; txHash: Hex }
  | { kind: "rejected"; revert: DecodedRevert }
  | { kind: "retry"; reason: string };

export interface SettlementStreamOptions {
  client: PublicClient;
  chainId: number;
  tollgate: Address;
  deployBlock: bigint;
  store: UsageStore;
  storePath: string;
  /** The gateway's key: signs batches, never sends them. */
  signer: LocalAccount;
  sender: TxSender;
  withdrawals: WithdrawalWatch;
  settings: Pick<OracleSettings, "batch" | "earlySettleSeconds" | "gas" | "retry" | "logBlockRange">;
  logger: Logger;
  metrics: OracleMetrics;
  failpoint: (name: string) => void;
}

/** The batch-encoding and plan lookups the stream keeps between passes (plans are append-only, local indexes immutable). */
interface ChainCache {
  plans: CreditPlanTerms[];
  nextPlanId: bigint;
  localIndex: Map<number, number>;
}

export class SettlementStream {
  readonly health: StreamHealth;
  private readonly reader: MarketplaceReader;
  private readonly scanner: SettledBatchScanner;
  private readonly renewals: SubscriptionRenewals;
  private readonly cache: ChainCache = { plans: [], nextPlanId: 1n, localIndex: new Map() };
  private backoffMs = 0;
  private blockedUntil = 0;

  constructor(private readonly options: SettlementStreamOptions) {
    this.reader = new MarketplaceReader(options.client, options.tollgate);
    this.renewals = new SubscriptionRenewals({ client: options.client, reader: this.reader, sender: options.sender, settings: options.settings, logger: options.logger });
    this.scanner = new SettledBatchScanner(options.client, options.tollgate, options.signer.address, options.deployBlock, options.settings.logBlockRange);
    this.health = {
      signer: options.signer.address,
      storePath: options.storePath,
      state: "starting",
      providerId: null,
      authorized: null,
      nextSequence: null,
      recordsPending: 0,
      oldestPendingServedAt: null,
      lastBatch: null,
      lastError: null,
    };
  }

  get signer(): Address {
    return this.options.signer.address;
  }

  /** Records the store holds that the chain has not settled. */
  pending(): number {
    return this.health.recordsPending;
  }

  /**
   * One pass: catch up with what the chain already settled, then settle the next batch if it is due
   * (or at once with `force`). Never throws for a batch the chain refuses; throws on RPC failure.
   */
  async tick(options: { force?: boolean; now?: number } = {}): Promise<TickResult> {
    const { store, settings, metrics } = this.options;
    const now = options.now ?? Date.now();
    const status = await this.reader.signerStatus(this.signer);
    Object.assign(this.health, { providerId: status.providerId, authorized: status.authorized, nextSequence: status.nextSequence.toString() });

    // Records marked settled that the chain has not settled: a reorganisation dropped the block that did.
    const forgotten = store.clearSettlementsFrom(status.nextSequence);
    if (forgotten > 0) {
      this.options.logger.warn(
        { signer: this.signer, nextSequence: status.nextSequence.toString(), records: forgotten },
        "the chain no longer has these records settled (reorganisation?); they will be settled again",
      );
      this.scanner.rewind(this.options.deployBlock);
    }

    const behind = store.pendingUsage(0n);
    if (behind.firstSequence !== null && behind.firstSequence < status.nextSequence) await this.markSettledFromChain();

    const pending = store.pendingUsage(status.nextSequence);
    this.health.recordsPending = pending.count;
    this.health.oldestPendingServedAt = pending.oldestServedAt;
    metrics.recordsPending.set({ signer: this.signer }, pending.count);
    if (pending.count === 0) {
      this.recover();
      this.health.state = "idle";
      return { kind: "idle" };
    }
    if (!options.force && now < this.blockedUntil) return { kind: "retry", reason: "backing off after a rejected batch" };

    const waiting = store.unsettledRecords(status.nextSequence, settings.batch.maxRecords);
    if (waiting[0].sequence !== status.nextSequence) {
      throw new Error(
        `the chain expects signer ${this.signer}'s next batch at sequence ${status.nextSequence}, but the usage store ` +
          `${this.options.storePath} has no record ${status.nextSequence} (its next unsettled is ${waiting[0].sequence}). ` +
          `Is this the right store for this signer and deployment?`,
      );
    }
    const reason = options.force ? "forced" : await this.dueReason(waiting, pending.count, pending.oldestServedAt!, now);
    if (!reason) {
      this.health.state = "waiting";
      return { kind: "waiting", pending: pending.count };
    }
    this.health.state = "settling";
    return this.settle(batchPrefix(waiting, settings.batch.maxRecords), status.providerId, reason);
  }

  /** Why a batch should go now, or undefined to keep collecting. */
  private async dueReason(waiting: StoredUsageRecord[], count: number, oldestServedAt: number, now: number): Promise<string | undefined> {
    const { batch, earlySettleSeconds } = this.options.settings;
    if (count >= batch.maxRecords) return "size";
    // Serving times are on the chain's clock when it runs ahead of the wall clock (the gateway stamps
    // max(wall, chain)), as a dev chain does after many blocks or a time jump: ages are measured the same way.
    const latest = await this.options.client.getBlock({ blockTag: "latest" });
    const chainNow = Number(latest.timestamp);
    if (Math.max(now, chainNow * 1000) - oldestServedAt * 1000 >= batch.maxAgeMs) return "age";
    const buyers = new Set(waiting.map((record) => getAddress(record.buyer)));
    const urgent = this.options.withdrawals.urgent(buyers, chainNow, earlySettleSeconds);
    return urgent.length > 0 ? `withdrawal of ${urgent[0]} about to become executable` : undefined;
  }

  private async settle(records: StoredUsageRecord[], providerId: number, reason: string): Promise<TickResult> {
    const { client, chainId, tollgate, signer, sender, settings, logger, metrics, failpoint } = this.options;
    const first = records[0].sequence;
    const last = records[records.length - 1].sequence;
    // Records served after a paid period ended draw the next period's included value only once it is renewed.
    await this.renewals.renewDue(records, providerId);
    const plans = await this.creditPlansFor(records, providerId);
    const { batch, signature } = await signedUsageBatch(signer, { chainId, address: tollgate }, records, plans);
    failpoint("oracle.after-sign");

    let gasEstimate: bigint;
    try {
      gasEstimate = await client.estimateContractGas({ address: tollgate, abi: tollgateAbi, functionName: "settleBatch", args: [batch, signature], account: sender.address });
    } catch (error) {
      const revert = revertOf(error);
      if (!revert) throw error;
      return this.refused(revert, first, last, "rejected");
    }
    const gas = (gasEstimate * BigInt(settings.gas.limitPercent)) / 100n;
    const data = encodeFunctionData({ abi: tollgateAbi, functionName: "settleBatch", args: [batch, signature] });
    const receipt = await sender.send({ to: tollgate, data, gas, label: `signer ${this.signer} records ${first}..${last}` });
    failpoint("oracle.after-mine");

    if (receipt.status !== "success") {
      const revert = await this.replayRevert(data, receipt);
      return this.refused(revert, first, last, "reverted");
    }
    const settledAt = await this.markReceipt(receipt, records);
    const buyers = new Set(records.map((record) => record.buyer)).size;
    const settledLog = this.batchSettledLog(receipt);
    metrics.batches.inc({ signer: this.signer, result: "settled" });
    metrics.gasUsed.inc(Number(receipt.gasUsed));
    metrics.gasPerRecord.set(Number(receipt.gasUsed) / records.length);
    logger.info(
      {
        signer: this.signer,
        firstSequence: first.toString(),
        lastSequence: last.toString(),
        records: records.length,
        buyers,
        creditPlans: plans.size,
        gasUsed: receipt.gasUsed.toString(),
        gasPerRecord: Math.round(Number(receipt.gasUsed) / records.length),
        txHash: receipt.transactionHash,
        block: receipt.blockNumber.toString(),
        totalCost: settledLog?.totalCost.toString(),
        shortfall: settledLog?.totalShortfall.toString(),
        reason,
      },
      "batch settled",
    );
    this.health.lastBatch = {
      firstSequence: first.toString(),
      lastSequence: last.toString(),
      records: records.length,
      txHash: receipt.transactionHash,
      gasUsed: receipt.gasUsed.toString(),
      settledAt,
    };
    this.health.lastError = null;
    this.health.recordsPending = Math.max(0, this.health.recordsPending - records.length);
    metrics.recordsPending.set({ signer: this.signer }, this.health.recordsPending);
    this.recover();
    this.health.state = "idle";
    return { kind: "settled", firstSequence: first, lastSequence: last, txHash: receipt.transactionHash };
  }

  /**
   * A batch the chain refuses. A serving time ahead of the chain's clock or a sequence someone else just
   * settled clear up by themselves; anything else (a revoked signer, a paused model's epoch mismatch) is
   * reported with its decoded error and retried with backoff, while other streams carry on.
   */
  private refused(revert: DecodedRevert, first: bigint, last: bigint, result: "rejected" | "reverted"): TickResult {
    const { logger, metrics, settings } = this.options;
    if (revert.name === "SettlementServedInFuture" || revert.name === "SettlementSequenceMismatch") {
      logger.debug({ signer: this.signer, revert: revert.text }, "batch not settleable yet; retrying next pass");
      return { kind: "retry", reason: revert.text };
    }
    metrics.batches.inc({ signer: this.signer, result });
    this.backoffMs = Math.min(settings.retry.maxMs, this.backoffMs === 0 ? settings.retry.initialMs : this.backoffMs * 2);
    this.blockedUntil = Date.now() + this.backoffMs;
    const hint =
      revert.name === "SettlementUnauthorizedSigner"
        ? "the provider revoked this gateway key (or never authorized it): re-authorize it with `provider authorize-signer`, or retire this gateway"
        : revert.name === "SettlementSignerCompromised"
          ? "fraud by this gateway key was proven on-chain (GatewayFraudProven): it can never settle again; retire this gateway and authorize a new key"
          : "check the batch and the contract's state; the oracle retries with backoff";
    const message = `batch ${first}..${last} of signer ${this.signer} ${result === "rejected" ? "would revert" : "reverted"}: ${revert.text}. ${hint}`;
    logger.error({ signer: this.signer, firstSequence: first.toString(), lastSequence: last.toString(), revert: revert.text, retryInMs: this.backoffMs }, message);
    this.health.state = "blocked";
    this.health.lastError = { message, revert: revert.text, at: Date.now() };
    return { kind: "rejected", revert };
  }

  private recover(): void {
    this.backoffMs = 0;
    this.blockedUntil = 0;
  }

  /** Why a mined transaction reverted: the same call replayed against the state of its block. */
  private async replayRevert(data: Hex, receipt: TransactionReceipt): Promise<DecodedRevert> {
    try {
      await this.options.client.call({ to: this.options.tollgate, data, account: this.options.sender.address, blockNumber: receipt.blockNumber });
    } catch (error) {
      const revert = revertOf(error);
      if (revert) return revert;
      return unknownRevert(`reverted; replay failed: ${describeRpcError(error)}`);
    }
    return unknownRevert(`transaction ${receipt.transactionHash} reverted (the replay succeeds: the state changed in between)`);
  }

  private batchSettledLog(receipt: TransactionReceipt) {
    for (const log of receipt.logs) {
      if (getAddress(log.address) !== getAddress(this.options.tollgate)) continue;
      try {
        const event = decodeEventLog({ abi: tollgateAbi, data: log.data, topics: log.topics, strict: true });
        if (event.eventName === "BatchSettled" && getAddress(event.args.signer) === this.signer) return event.args;
      } catch {
        // another event of the contract
      }
    }
    return undefined;
  }

  /** Marks a batch this oracle just settled, and measures its lag from serving. */
  private async markReceipt(receipt: TransactionReceipt, records: StoredUsageRecord[]): Promise<number> {
    const event = this.batchSettledLog(receipt);
    if (!event) throw new Error(`transaction ${receipt.transactionHash} succeeded without a BatchSettled event for ${this.signer}`);
    const block = await this.options.client.getBlock({ blockNumber: receipt.blockNumber });
    const settledAt = Number(block.timestamp);
    const first = records[0].sequence;
    const last = records[records.length - 1].sequence;
    this.options.store.markSettled(first, last, { txHash: receipt.transactionHash, batchId: event.commitment, settledAt });
    for (const record of records) this.options.metrics.settlementLag.observe(Math.max(0, settledAt - record.servedAt));
    this.options.metrics.recordsSettled.inc({ signer: this.signer }, records.length);
    return settledAt;
  }

  /**
   * Marks records the chain settled without this process seeing it: a batch mined after the oracle was
   * killed, or relayed by someone else. The events name the range, transaction and commitment.
   */
  private async markSettledFromChain(): Promise<void> {
    const { store, client, logger } = this.options;
    for (const batch of await this.scanner.newBatches()) {
      const last = batch.firstSequence + batch.recordCount - 1n;
      const block = await client.getBlock({ blockNumber: batch.blockNumber });
      const changed = store.markSettled(batch.firstSequence, last, { txHash: batch.txHash, batchId: batch.commitment, settledAt: Number(block.timestamp) });
      if (changed > 0) {
        logger.info(
          { signer: this.signer, firstSequence: batch.firstSequence.toString(), lastSequence: last.toString(), records: changed, txHash: batch.txHash },
          "marked a batch the chain settled while this oracle was not watching",
        );
      }
    }
  }

  /** Per buyer of the batch, the credit plan to burn: reads the provider's plans (new ones only) and every holding in one call. */
  private async creditPlansFor(records: StoredUsageRecord[], providerId: number): Promise<Map<Address, number>> {
    const { client, tollgate } = this.options;
    const count = await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "creditPlanCount" });
    if (count >= this.cache.nextPlanId) {
      this.cache.plans.push(...(await this.reader.creditPlans(providerId, this.cache.nextPlanId)));
      this.cache.nextPlanId = count + 1n;
    }
    if (this.cache.plans.length === 0) return new Map();
    for (const modelId of new Set(records.map((record) => record.modelId))) {
      if (!this.cache.localIndex.has(modelId)) this.cache.localIndex.set(modelId, (await this.reader.modelTerms(modelId)).localIndex);
    }
    const buyers = [...new Set(records.map((record) => getAddress(record.buyer)))];
    const pairs = buyers.flatMap((buyer) => this.cache.plans.map((plan) => ({ buyer, plan })));
    const credits = await this.reader.creditsToken();
    const balances = await client.readContract({
      address: credits,
      abi: tollgateCreditsAbi,
      functionName: "balanceOfBatch",
      args: [pairs.map((pair) => pair.buyer), pairs.map((pair) => pair.plan.planId)],
    });
    const holdings = new Map<Address, HeldCredits[]>();
    pairs.forEach((pair, index) => {
      if (balances[index] === 0n) return;
      const list = holdings.get(pair.buyer) ?? [];
      // Credit change (the unused part of a burned credit) is left out: it is worth less than one credit.
      list.push({ plan: pair.plan, credits: balances[index], change: 0n });
      holdings.set(pair.buyer, list);
    });
    return chooseCreditPlans({ records, holdings, localIndexOf: (modelId) => this.cache.localIndex.get(modelId)! });
  }
}
