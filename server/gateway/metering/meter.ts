/**
 * The money side of one call, independent of HTTP: reserve the most the call can cost before it goes
 * upstream, then turn what was served into one durable, signed usage record, then release the rest.
 *
 *   reserve()  → 402 / 403 here, before any upstream work, changing nothing
 *   record()   → sequence number, usage record and receipt signature in one SQLite transaction (a group's)
 *   release()  → always, in a finally: a failed call costs nothing
 */
import { performance } from "node:perf_hooks";
import type { Address } from "viem";
import type { UsageReceipt } from "../../chain/eip712";
import { priceEpochAt, type PriceEpoch } from "../../chain/marketplace-reader";
import { recordCost } from "../../chain/pricing";
import { periodStart } from "../../store/budget-periods";
import { receiptToWire, type ReceiptEnvelope } from "../../chain/receipt-envelope";
import type { CallAttribution } from "../../store/call-attribution";
import type { ApiKeyRecord, StoredUsageRecord, UsageStore } from "../../store/usage-store";
import { BudgetExceededError } from "../budgets/budget-exceeded";
import { budgetStanding } from "../budgets/budget-status";
import { routingDecision, type RouteTaken } from "../routing/route-decision";
import { GatewayError, invalidApiKey } from "../errors";
import type { MarketplaceState, ModelOnSale } from "../marketplace-state";
import type { GatewayMetrics } from "../metrics";
import { commitContent } from "./content-hash";
import type { GroupCommit } from "./group-commit";
import type { ReceiptSigner } from "./receipt-signer";
import type { ServedCall } from "./served-call";
import type { BudgetCheck, Reservation, SpendLedger } from "./spend-ledger";
import { reservationCost } from "./reservation-cost";
import { IncludedUsageExhaustedError, subscriptionTerms } from "./included-usage-exhausted";
import { billedCounts } from "./usage-counts";
import type { FleetHold, FleetLedger } from "../fleet/fleet-ledger";
import { reserveInFleet } from "../fleet/reserve-in-fleet";
import type { FleetDefinitions } from "../fleet/fleet-definitions";
import { sharedStoreUnavailable } from "../fleet/store-unavailable";

export interface ReservedCall {
  key: ApiKeyRecord;
  model: ModelOnSale;
  reservation: Reservation;
  servedAt: number;
  epoch: PriceEpoch;
  reservedInput: number;
  reservedOutput: number;
  /** The call's trace, step, user, metadata and idempotency key, kept with its record. */
  attribution?: CallAttribution;
  /** Set by the route when the buyer called an alias: kept with the record, with what the dearest candidate would have cost. */
  route?: RouteTaken;
  /** Fleet mode: the call's share of the fleet's holdings, and the budget periods whose spend it publishes. */
  fleet?: { hold: FleetHold; budgets: readonly { id: string; periodStart: number }[] };
}

/** The envelope of a stored record, in the one browser-safe shape of `server/chain/receipt-envelope.ts`. */
export function receiptEnvelope(record: StoredUsageRecord, domain: ReceiptEnvelope["domain"]): ReceiptEnvelope {
  return {
    domain,
    signer: record.signer,
    primaryType: "UsageReceipt",
    receipt: receiptToWire(record),
    receiptHash: record.receiptHash,
    signature: record.signature,
    content: { salt: record.contentSalt, requestHash: record.requestHash, responseHash: record.responseHash },
    model: record.modelName,
    reasoningTokens: record.reasoningTokens,
    countSource: record.countSource,
    ...(record.routing ? { routing: { requested: record.routing.alias, reason: record.routing.reason, fallbacks: record.routing.fallbacks } } : {}),
  };
}

export class Meter {
  constructor(
    private readonly deps: {
      state: MarketplaceState;
      ledger: SpendLedger;
      /** Writes the records to the usage store, in groups (group-commit.ts). */
      records: GroupCommit;
      signer: ReceiptSigner;
      metrics: GatewayMetrics;
      domain: ReceiptEnvelope["domain"];
      /** `store.retainContent`: keep the call's exact bytes with its record, for the buyer's own audit. */
      retainContent?: boolean;
      /** The buyer's budgets and their committed spend (the usage store, whose reads here are in memory). */
      budgets?: Pick<UsageStore, "applicableBudgets" | "budgetSpent">;
      /** Fleet mode (`config.fleet`): the check against the other instances, after the local one. */
      fleet?: FleetLedger;
      /** Fleet mode: the buyer's keys and budgets as the fleet has them, adopted when the reserve check finds them changed. */
      fleetDefinitions?: Pick<FleetDefinitions, "adoptedVersion" | "syncBuyer" | "keyRevoked">;
    },
  ) {}

  get signerAddress(): Address {
    return this.deps.signer.address;
  }

  /**
   * Reserves the most this call can cost: its prompt estimate plus every output token it may produce. In fleet mode,
   * when the buyer's keys or budgets changed on another instance since this one adopted them, it adopts them (a
   * revoked key is refused here) and checks the call again.
   */
  async reserve(key: ApiKeyRecord, model: ModelOnSale, inputEstimate: number, maxOutputTokens: number, attribution?: CallAttribution): Promise<ReservedCall> {
    for (let attempt = 1; ; attempt++) {
      const call = await this.reserveOnce(key, model, inputEstimate, maxOutputTokens, attribution);
      if (call !== "stale") return call;
      const definitions = this.deps.fleetDefinitions!;
      // Changes faster than a round trip, three times over: the buyer is scripting them; let the client retry.
      if (attempt === 3) throw sharedStoreUnavailable("your keys and budgets are changing on its other instances as it checks");
      await definitions.syncBuyer(key.buyer);
      if (definitions.keyRevoked(key)) throw invalidApiKey();
    }
  }

  private async reserveOnce(key: ApiKeyRecord, model: ModelOnSale, inputEstimate: number, maxOutputTokens: number, attribution?: CallAttribution): Promise<ReservedCall | "stale"> {
    const { state, ledger } = this.deps;
    if (!state.canSettle()) {
      throw new GatewayError(503, "server_error", "This gateway's signing key is not authorized by the provider right now, so it cannot serve metered calls. Try again later.", "gateway_not_authorized", null, { "retry-after": "60" });
    }
    if (model.terms.paused) {
      throw new GatewayError(503, "server_error", `The model \`${model.config.name}\` is paused by its provider.`, "model_paused", "model", { "retry-after": "60" });
    }
    const servedAt = state.now();
    const epoch = priceEpochAt(model.terms.epochs, servedAt);
    if (!epoch) {
      throw new GatewayError(503, "server_error", `The model \`${model.config.name}\` has no price in force yet.`, "model_not_priced", "model");
    }
    const { amount, reservedInput } = reservationCost(epoch, inputEstimate, maxOutputTokens);

    let snapshot;
    const waitStarted = performance.now();
    try {
      snapshot = await state.snapshot(key.buyer);
      this.deps.metrics.balanceWait.observe((performance.now() - waitStarted) / 1000);
    } catch (error) {
      // Without the buyer's on-chain balance the gateway cannot know the call is covered: refuse, charge nothing.
      throw new GatewayError(503, "server_error", `The gateway cannot read your balance from the chain right now (${(error as Error).message.split("\n")[0]}). Nothing was charged; retry shortly.`, "chain_unavailable", null, { "retry-after": "2" });
    }
    // From here to tryReserve nothing awaits: the budgets' spend read here is what the reservation is checked against.
    const budgets = this.deps.budgets?.applicableBudgets(key.buyer, key.tags, attribution?.traceId) ?? [];
    const checks: BudgetCheck[] = budgets.map((budget) => ({ id: budget.id, limit: budget.limit, spent: this.deps.budgets!.budgetSpent(budget.id, periodStart(budget.period, servedAt)) }));
    // What the local check leaves each budget, for the fleet's (read before tryReserve adds this call).
    const budgetsLeft = this.deps.fleet && checks.map((check) => check.limit - check.spent - ledger.budgetReserved(check.id));
    const { reservation, breakdown, keyRemaining, budgetRefusal } = ledger.tryReserve(snapshot, model.terms, servedAt, { id: key.id, spendCap: key.spendCap, spent: key.spent }, amount, checks);
    if (budgetRefusal) {
      this.deps.metrics.refusals.inc({ reason: "budget" });
      const budget = budgets.find((candidate) => candidate.id === budgetRefusal.budget.id)!;
      const standing = budgetStanding(budget, servedAt, { budgetSpent: () => budgetRefusal.budget.spent, budgetReserved: () => budgetRefusal.reserved });
      throw new BudgetExceededError(budget, standing, amount, servedAt, (value) => `${state.formatAmount(value)} ${state.token.symbol}`);
    }
    if (!reservation) {
      state.forget(key.buyer);
      const overCap = keyRemaining !== null && amount > keyRemaining;
      const subscription = breakdown.subscription;
      this.deps.metrics.refusals.inc({ reason: overCap ? "key_cap" : subscription?.refusesOverage ? "subscription" : "funds" });
      const fmt = (value: bigint) => `${state.formatAmount(value)} ${state.token.symbol}`;
      if (!overCap && subscription?.refusesOverage) throw new IncludedUsageExhaustedError(subscription, amount, fmt, servedAt);
      if (keyRemaining !== null && amount > keyRemaining) {
        throw new GatewayError(
          402,
          "insufficient_funds",
          `This call may cost up to ${fmt(amount)}, but API key ${key.id} has ${fmt(keyRemaining > 0n ? keyRemaining : 0n)} left of its ${fmt(key.spendCap!)} cap. Create a key with a higher cap, or lower max_tokens.`,
          "key_spend_cap_reached",
        );
      }
      throw new GatewayError(
        402,
        "insufficient_funds",
        `This call may cost up to ${fmt(amount)} (${reservedInput} input tokens reserved + ${maxOutputTokens} output tokens), but you can spend ${fmt(breakdown.spendable)} now ` +
          `(balance ${fmt(breakdown.balance)} + credits ${fmt(breakdown.creditValue)} − unsettled usage ${fmt(breakdown.unsettledUsage)} − calls in flight ${fmt(breakdown.openReservations)}` +
          `${subscriptionTerms(breakdown.subscription, fmt)}` +
          `${breakdown.limitRemaining !== null ? `, spending limit left ${fmt(breakdown.limitRemaining)}` : ""}). Deposit or buy credits, or lower max_tokens. GET /v1/balance shows the details.`,
        "insufficient_funds",
      );
    }
    const call: ReservedCall = { key, model, reservation, servedAt, epoch, reservedInput, reservedOutput: maxOutputTokens, attribution };
    if (this.deps.fleet) {
      const fleetBudgets = budgets.map((budget, index) => ({ id: budget.id, periodStart: periodStart(budget.period, servedAt), left: budgetsLeft![index] }));
      const definitions = this.deps.fleetDefinitions?.adoptedVersion(key.buyer) ?? "0";
      const held = await reserveInFleet(this.deps.fleet, { ...call, amount, breakdown, keyRemaining, budgets, fleetBudgets, signerNext: snapshot.fleetNextSequences, definitions }, this.deps);
      if (held === "stale") return "stale";
      call.fleet = held;
    }
    return call;
  }

  /**
   * Writes the usage record of a served call and signs its receipt, in one transaction (shared with the other
   * records that finish in the same turn of the event loop). The caller sends the response only after this
   * resolves, so a response never exists without its durable record.
   */
  async record(call: ReservedCall, served: ServedCall): Promise<{ record: StoredUsageRecord; envelope: ReceiptEnvelope }> {
    const { records, signer, ledger, metrics } = this.deps;
    const counts = billedCounts(served.reported, served.gatewayCount, { inputTokens: call.reservedInput, outputTokens: call.reservedOutput });
    const prices = { input: call.epoch.input, cachedInput: call.epoch.cachedInput, output: call.epoch.output };
    const cost = recordCost(counts, prices);
    const content = commitContent(served.requestBytes, served.responseBytes);
    // Every field of the receipt but its sequence, which the store assigns inside its transaction.
    const receipt: Omit<UsageReceipt, "sequence"> = {
      buyer: call.key.buyer,
      modelId: call.model.terms.modelId,
      inputTokens: counts.inputTokens,
      cachedInputTokens: counts.cachedInputTokens,
      outputTokens: counts.outputTokens,
      servedAt: call.servedAt,
      inputPrice: prices.input,
      cachedInputPrice: prices.cachedInput,
      outputPrice: prices.output,
      cost,
      contentHash: content.contentHash,
    };
    const record = await records.append({
      input: {
        ...receipt,
        requestId: served.requestId,
        keyId: call.key.id,
        tags: call.key.tags,
        endpoint: served.endpoint,
        modelName: call.model.config.name,
        priceEpoch: call.epoch.index,
        reasoningTokens: counts.reasoningTokens,
        gatewayInputTokens: served.gatewayCount.inputTokens,
        gatewayOutputTokens: served.gatewayCount.outputTokens,
        countSource: counts.source,
        contentSalt: content.salt,
        requestHash: content.requestHash,
        responseHash: content.responseHash,
        streamed: served.streamed,
        completed: served.completed,
      },
      sign: (sequence) => {
        const signed = signer.sign({ sequence, ...receipt });
        return { receiptHash: signed.receiptHash, signature: signed.signature };
      },
      content: this.deps.retainContent ? { request: served.requestBytes, response: served.responseBytes } : undefined,
      attribution: call.attribution,
      routing: call.route && routingDecision(call.route, counts, call.servedAt),
    });
    // The record is durable: count it as unsettled before the reservation that covered it goes away.
    ledger.addUnsettled(record.buyer, record.sequence, cost, call.reservation.cover);
    call.key.spent += cost;
    if (call.fleet) {
      const fleet = this.deps.fleet!;
      const spent = [{ part: fleet.keyPart(call.key.id), spent: call.key.spent }];
      for (const budget of call.fleet.budgets) spent.push({ part: fleet.budgetPart(budget.id, budget.periodStart), spent: this.deps.budgets!.budgetSpent(budget.id, budget.periodStart) });
      fleet.publishUsage({ buyer: record.buyer, sequence: record.sequence, cost }, spent, call.fleet.hold);
    }
    metrics.observeRecord(record, served, counts.capped);
    return { record, envelope: receiptEnvelope(record, this.deps.domain) };
  }

  release(call: ReservedCall): void {
    this.deps.ledger.release(call.reservation);
    if (call.fleet) this.deps.fleet!.release(call.fleet.hold);
  }
}
