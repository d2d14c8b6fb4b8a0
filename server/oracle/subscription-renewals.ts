/**
 * Renews subscriptions before a batch settles, so records served in a period that has started but is not yet paid
 * draw that period's included value instead of the buyer's balance: settlement never renews by itself (README,
 * "Subscriptions"), and bills a record served at or after `paidUntil` as if there were no subscription.
 *
 * For each buyer of the batch whose latest record was served at or after its subscription's `paidUntil`, the oracle
 * calls `renew(buyer, providerId)` from its gas key (public: anyone may). A renewal that is not due, that reverts,
 * or whose reads fail never blocks settlement: it is logged, and the batch settles as the chain then stands (a
 * buyer who cannot pay ends its subscription in that renewal and is billed per the rule for the rest).
 */
import { encodeFunctionData, getAddress, parseEventLogs, type Address, type PublicClient } from "viem";
import type { Logger } from "pino";
import { tollgateSubscriptionsAbi } from "../chain/abis";
import type { MarketplaceReader } from "../chain/marketplace-reader";
import { revertOf } from "../chain/revert";
import type { StoredUsageRecord } from "../store/usage-store";
import { describeRpcError } from "./chain-errors";
import type { OracleSettings } from "./config";
import type { TxSender } from "./tx-sender";

/** `renew` pays at most `MAX_RENEWALS_PER_CALL` (24) periods a call; a buyer further behind gets a few more calls. */
const MAX_RENEW_CALLS = 4;

export interface SubscriptionRenewalsOptions {
  client: PublicClient;
  reader: MarketplaceReader;
  sender: TxSender;
  settings: Pick<OracleSettings, "gas">;
  logger: Logger;
}

/** What one renewal did, for logs and tests. */
export interface RenewalOutcome {
  buyer: Address;
  periodsPaid: number;
  ended?: "cancelled" | "unpaid";
  /** Set when the renewal was not made: the decoded revert or the failure. */
  skipped?: string;
}

export class SubscriptionRenewals {
  /**
   * Per buyer, a time before which its records need no renewal: the `paidUntil` last read. Paid periods only grow,
   * and a later subscription starts after it, so it stays a safe lower bound; buyers without one are read each batch.
   */
  private readonly coveredUntil = new Map<Address, number>();

  constructor(private readonly options: SubscriptionRenewalsOptions) {}

  /** Renews every subscription the batch's records need renewed; never throws. */
  async renewDue(records: readonly Pick<StoredUsageRecord, "buyer" | "servedAt">[], providerId: number): Promise<RenewalOutcome[]> {
    const latest = new Map<Address, number>();
    for (const record of records) {
      const buyer = getAddress(record.buyer);
      if ((latest.get(buyer) ?? -1) < record.servedAt) latest.set(buyer, record.servedAt);
    }
    const due = [...latest].filter(([buyer, servedAt]) => (this.coveredUntil.get(buyer) ?? 0) <= servedAt);
    if (due.length === 0) return [];
    const outcomes = await Promise.all(due.map(([buyer, servedAt]) => this.renewIfDue(buyer, providerId, servedAt)));
    return outcomes.filter((outcome): outcome is RenewalOutcome => outcome !== undefined);
  }

  private async renewIfDue(buyer: Address, providerId: number, servedAt: number): Promise<RenewalOutcome | undefined> {
    const { logger } = this.options;
    const outcome: RenewalOutcome = { buyer, periodsPaid: 0 };
    try {
      for (let call = 0; call < MAX_RENEW_CALLS; call++) {
        const paidUntil = await this.paidUntil(buyer, providerId);
        if (paidUntil === undefined || paidUntil > servedAt) return call === 0 ? undefined : outcome;
        const renewed = await this.renew(buyer, providerId, paidUntil);
        if (renewed.skipped) return { ...outcome, skipped: renewed.skipped };
        outcome.periodsPaid += renewed.periodsPaid;
        if (renewed.ended) return { ...outcome, ended: renewed.ended };
        if (renewed.periodsPaid === 0) return outcome;
      }
      return outcome;
    } catch (error) {
      const message = describeRpcError(error);
      logger.warn({ buyer, providerId, error: message }, "could not renew a subscription before settling; settling without the renewal");
      return { ...outcome, skipped: message };
    }
  }

  /** The live subscription's `paidUntil`, or undefined when there is none to renew (never subscribed, or ended). */
  private async paidUntil(buyer: Address, providerId: number): Promise<number | undefined> {
    const { client, reader } = this.options;
    const address = await reader.subscriptions();
    const sub = await client.readContract({ address, abi: tollgateSubscriptionsAbi, functionName: "subscriptionOf", args: [buyer, providerId] });
    if (sub.id === 0n) return undefined;
    const plan = await reader.subscriptionPlan(BigInt(sub.planId));
    const paidUntil = sub.startedAt + sub.paidPeriods * plan.period;
    this.coveredUntil.set(buyer, paidUntil);
    return sub.active ? paidUntil : undefined;
  }

  private async renew(buyer: Address, providerId: number, paidUntil: number): Promise<RenewalOutcome> {
    const { client, reader, sender, settings, logger } = this.options;
    const address = await reader.subscriptions();
    const args = [buyer, providerId] as const;
    let gasEstimate: bigint;
    try {
      gasEstimate = await client.estimateContractGas({ address, abi: tollgateSubscriptionsAbi, functionName: "renew", args, account: sender.address });
    } catch (error) {
      const revert = revertOf(error);
      if (!revert) throw error;
      // Not due yet on the chain's clock, or ended by someone else meanwhile: the batch settles as the chain stands.
      logger.warn({ buyer, providerId, paidUntil, revert: revert.text }, "subscription renewal would revert; settling without it");
      return { buyer, periodsPaid: 0, skipped: revert.text };
    }
    const data = encodeFunctionData({ abi: tollgateSubscriptionsAbi, functionName: "renew", args });
    const gas = (gasEstimate * BigInt(settings.gas.limitPercent)) / 100n;
    const receipt = await sender.send({ to: address, data, gas, label: `renew ${buyer}'s subscription to provider ${providerId}` });
    if (receipt.status !== "success") {
      logger.warn({ buyer, providerId, txHash: receipt.transactionHash }, "subscription renewal reverted; settling without it");
      return { buyer, periodsPaid: 0, skipped: `renewal ${receipt.transactionHash} reverted` };
    }
    const outcome: RenewalOutcome = { buyer, periodsPaid: 0 };
    let paid = 0n;
    for (const log of parseEventLogs({ abi: tollgateSubscriptionsAbi, logs: receipt.logs })) {
      if (getAddress(log.address) !== getAddress(address)) continue;
      if (log.eventName === "SubscriptionRenewed") {
        outcome.periodsPaid++;
        paid += log.args.price;
      } else if (log.eventName === "SubscriptionEnded") {
        outcome.ended = log.args.reason === 0 ? "cancelled" : "unpaid";
      }
    }
    logger.info(
      { buyer, providerId, periodsPaid: outcome.periodsPaid, paid: paid.toString(), ended: outcome.ended, txHash: receipt.transactionHash },
      outcome.ended ? `subscription ended (${outcome.ended}) when renewed before settling` : "renewed a subscription before settling",
    );
    return outcome;
  }
}
