/**
 * One decoded event applied to the ledger, as the contract that emitted it changed its state: the registry's
 * events build providers, models, price epochs, plans and signer authorizations; the vault's move balances,
 * withdrawals, earnings, fees, bonds and dispute awards; the credits token's move credits; the payment token's
 * are counted into the transaction's flows; the subscriptions contract's go to `applySubscriptionEvent`.
 * `BatchSettled` is not here: `settleBatch` replays it.
 *
 * Credit purchases: `buyCredits` pulls the price from the payer's wallet, `buyCreditsWithBalance` debits the
 * payer's vault balance, and `CreditsPurchased` is the same for both. The rule: a purchase was paid from the
 * wallet when a payment-token `Transfer` of exactly the price from the payer into the vault, not claimed by
 * an earlier deposit or purchase, precedes it in the same transaction (the contract pulls right before it
 * emits); otherwise it was paid from the balance.
 */
import { getAddress, type Address } from "viem";
import { protocolFeeOn } from "../../../server/chain/pricing";
import type { HistoryLog } from "../chain-history";
import type { AuditEvent, Emitter } from "./decode-logs";
import type { FindingList, FindingLocation } from "./findings";
import { buyerOf, type Ledger, type ProviderLedger } from "./ledger";
import { isMint, type TransactionFlows } from "./transaction-flows";
import { applySubscriptionEvent } from "./apply-subscription-event";

export interface EventContext {
  ledger: Ledger;
  findings: FindingList;
  tollgate: Address;
  /** The flows of the transaction the event is in. */
  flows: TransactionFlows;
  log: HistoryLog;
  /** Its block's time. */
  time: number;
  where: FindingLocation;
}

export function applyEvent(context: EventContext, event: AuditEvent, emitter: Emitter): void {
  const { ledger, findings, tollgate, flows: tx, log, time, where } = context;
  const providerOf = (providerId: number, at: FindingLocation): ProviderLedger | undefined => {
    const provider = ledger.providers.get(providerId);
    if (!provider) findings.add("event_mismatch", `an event names provider ${providerId}, which was never registered`, at);
    return provider;
  };
  if (emitter === "token") {
    if (event.eventName !== "Transfer") return;
    const { from, to, value } = event.args;
    // A transfer from the vault to itself moves nothing.
    if (getAddress(to) === tollgate && getAddress(from) !== tollgate) {
      ledger.tokensIn += value;
      tx.inbound.push({ party: getAddress(from), value, log, claimed: false });
    } else if (getAddress(from) === tollgate && getAddress(to) !== tollgate) {
      ledger.tokensOut += value;
      tx.outbound.push({ party: getAddress(to), value, log, claimed: false });
    }
    return;
  }
  if (emitter === "subscriptions") return applySubscriptionEvent(context, event);
  if (emitter === "credits") {
    const moves: { from: Address; to: Address; id: bigint; value: bigint }[] = [];
    if (event.eventName === "TransferSingle") moves.push({ from: event.args.from, to: event.args.to, id: event.args.id, value: event.args.value });
    else if (event.eventName === "TransferBatch") {
      event.args.ids.forEach((id, i) => moves.push({ from: event.args.from, to: event.args.to, id, value: event.args.values[i] }));
    } else return;
    for (const move of moves) {
      const from = getAddress(move.from);
      const to = getAddress(move.to);
      if (isMint(to)) {
        // Settlement burns before it emits BatchSettled: held for that event to claim.
        tx.burns.push({ holder: from, planId: move.id, amount: move.value, log });
        continue;
      }
      if (isMint(from)) tx.mints.push({ holder: to, planId: move.id, amount: move.value, log });
      else {
        const sender = buyerOf(ledger, from);
        const held = sender.credits.get(move.id) ?? 0n;
        if (held < move.value) findings.add("event_mismatch", `${from} transferred ${move.value} credits of plan ${move.id} holding ${held} by the events before`, { ...where, buyer: from, planId: move.id }, { expected: held, found: move.value });
        sender.credits.set(move.id, held - move.value);
      }
      const receiver = buyerOf(ledger, to);
      receiver.credits.set(move.id, (receiver.credits.get(move.id) ?? 0n) + move.value);
    }
    return;
  }
  switch (event.eventName) {
    case "ProviderRegistered": {
      const { providerId, owner, payout } = event.args;
      ledger.providers.set(providerId, { providerId, owner: getAddress(owner), payout: getAddress(payout), earnings: 0n, bond: { available: 0n, pending: 0n, withdrawableAt: 0n }, modelIds: [] });
      return;
    }
    case "ProviderUpdated": {
      const provider = providerOf(event.args.providerId, where);
      if (provider) provider.payout = getAddress(event.args.payout);
      return;
    }
    case "ModelListed": {
      const { modelId, providerId, localIndex, name } = event.args;
      ledger.models.set(modelId, { modelId, providerId, localIndex, name, paused: false, epochs: [] });
      providerOf(providerId, where)?.modelIds.push(modelId);
      return;
    }
    case "PriceScheduled": {
      const { modelId, epochIndex, effectiveFrom, input, cachedInput, output } = event.args;
      const model = ledger.models.get(modelId);
      if (!model) return findings.add("event_mismatch", `a price scheduled for model ${modelId}, which was never listed`, { ...where, modelId });
      if (epochIndex !== BigInt(model.epochs.length)) findings.compare("event_mismatch", `model ${modelId}'s new price epoch index`, { ...where, modelId }, BigInt(model.epochs.length), epochIndex);
      model.epochs.push({ index: model.epochs.length, effectiveFrom: Number(effectiveFrom), input, cachedInput, output });
      return;
    }
    case "PriceScheduleReplaced": {
      const { modelId, epochIndex } = event.args;
      const model = ledger.models.get(modelId);
      if (!model || epochIndex !== BigInt(model.epochs.length - 1)) {
        findings.add("event_mismatch", `PriceScheduleReplaced of epoch ${epochIndex} of model ${modelId}, which is not its last epoch`, { ...where, modelId });
      }
      model?.epochs.pop();
      return;
    }
    case "ModelPauseChanged": {
      const model = ledger.models.get(event.args.modelId);
      if (model) model.paused = event.args.paused;
      return;
    }
    case "SignerAuthorizationChanged": {
      const signer = getAddress(event.args.signer);
      const { providerId, authorized } = event.args;
      let state = ledger.signers.get(signer);
      if (!state) {
        state = { signer, providerId, authorized, nextSequence: 0n, history: [] };
        ledger.signers.set(signer, state);
      }
      state.providerId = providerId;
      state.authorized = authorized;
      state.history.push({ block: log.blockNumber, logIndex: log.logIndex, providerId, authorized });
      return;
    }
    case "SpendingLimitSet": {
      const { buyer, providerId, limitPerPeriod, period } = event.args;
      const account = buyerOf(ledger, getAddress(buyer));
      const limit = account.limits.get(providerId) ?? { limitPerPeriod: 0n, period: 0, windowStart: 0, spentInWindow: 0n };
      limit.limitPerPeriod = limitPerPeriod;
      limit.period = Number(period);
      if (limit.windowStart === 0) limit.windowStart = time;
      account.limits.set(providerId, limit);
      return;
    }
    case "SpendingLimitCleared": {
      // Kept as an all-zero limit, so the state check still compares it with the contract's.
      buyerOf(ledger, getAddress(event.args.buyer)).limits.set(event.args.providerId, { limitPerPeriod: 0n, period: 0, windowStart: 0, spentInWindow: 0n });
      return;
    }
    case "Deposited": {
      const buyer = buyerOf(ledger, getAddress(event.args.buyer));
      buyer.balance += event.args.credited;
      const payer = getAddress(event.args.payer);
      if (!tx.claimInbound(payer, event.args.credited)) {
        tx.expectedIn.push({ party: payer, value: event.args.credited, what: `Deposited ${event.args.credited} for ${buyer.buyer}`, where: { ...where, buyer: buyer.buyer } });
      }
      return;
    }
    case "WithdrawalRequested": {
      const { amount, pendingWithdrawal, withdrawableAt } = event.args;
      const buyer = buyerOf(ledger, getAddress(event.args.buyer));
      const at = { ...where, buyer: buyer.buyer };
      if (amount > buyer.balance) findings.add("event_mismatch", `${buyer.buyer} requested a withdrawal of ${amount} with a balance of ${buyer.balance} by the events before`, at, { expected: buyer.balance, found: amount });
      buyer.balance -= amount;
      buyer.pendingWithdrawal += amount;
      findings.compare("event_mismatch", `${buyer.buyer}'s pending withdrawal after its request`, at, buyer.pendingWithdrawal, pendingWithdrawal);
      buyer.withdrawableAt = withdrawableAt;
      return;
    }
    case "WithdrawalCancelled": {
      const buyer = buyerOf(ledger, getAddress(event.args.buyer));
      findings.compare("event_mismatch", `the pending withdrawal ${buyer.buyer} cancelled`, { ...where, buyer: buyer.buyer }, buyer.pendingWithdrawal, event.args.amount);
      buyer.balance += buyer.pendingWithdrawal;
      buyer.pendingWithdrawal = 0n;
      buyer.withdrawableAt = 0n;
      return;
    }
    case "Withdrawn": {
      const buyer = buyerOf(ledger, getAddress(event.args.buyer));
      findings.compare("event_mismatch", `the amount ${buyer.buyer} withdrew (its pending withdrawal)`, { ...where, buyer: buyer.buyer }, buyer.pendingWithdrawal, event.args.amount);
      buyer.pendingWithdrawal = 0n;
      buyer.withdrawableAt = 0n;
      if (event.args.amount !== 0n) tx.expectedOut.push({ party: buyer.buyer, value: event.args.amount, what: `Withdrawn ${event.args.amount} by ${buyer.buyer}`, where: { ...where, buyer: buyer.buyer } });
      return;
    }
    case "EarningsWithdrawn": {
      const { providerId, payout, amount } = event.args;
      const provider = providerOf(providerId, { ...where, providerId });
      if (provider) {
        findings.compare("event_mismatch", `provider ${providerId}'s earnings withdrawn (all it had)`, { ...where, providerId }, provider.earnings, amount);
        provider.earnings = 0n;
      }
      tx.expectedOut.push({ party: getAddress(payout), value: amount, what: `EarningsWithdrawn ${amount} for provider ${providerId}`, where: { ...where, providerId } });
      return;
    }
    case "ProtocolFeesCollected": {
      findings.compare("event_mismatch", "protocol fees collected (all that had accrued)", where, ledger.protocolFees, event.args.amount);
      ledger.protocolFees = 0n;
      tx.expectedOut.push({ party: getAddress(event.args.treasury), value: event.args.amount, what: `ProtocolFeesCollected ${event.args.amount}`, where });
      return;
    }
    case "ProtocolFeeChanged":
      ledger.feeBps = event.args.feeBps;
      return;
    case "CreditPlanDefined": {
      const { planId, providerId, pricePerCredit, valuePerCredit, modelMask, expiresAt } = event.args;
      ledger.plans.set(planId, { planId, providerId, pricePerCredit, valuePerCredit, modelMask, expiresAt: Number(expiresAt) });
      return;
    }
    case "CreditsPurchased": {
      const { planId, amount, paid, fee } = event.args;
      const payer = getAddress(event.args.payer);
      const recipient = getAddress(event.args.recipient);
      const at = { ...where, buyer: payer, planId };
      const plan = ledger.plans.get(planId);
      if (!plan) return findings.add("event_mismatch", `credits bought of plan ${planId}, which was never defined`, at);
      findings.compare("event_mismatch", `the price of ${amount} credits of plan ${planId}`, at, amount * plan.pricePerCredit, paid);
      findings.compare("fee_mismatch", `the protocol fee on a credit purchase of ${paid} at ${ledger.feeBps} bps`, at, protocolFeeOn(paid, ledger.feeBps), fee);
      if (!tx.claimInbound(payer, paid)) {
        const account = buyerOf(ledger, payer);
        if (account.balance < paid) findings.add("event_mismatch", `${payer} bought credits for ${paid} from a balance of ${account.balance} by the events before`, at, { expected: account.balance, found: paid });
        account.balance -= paid;
      }
      const provider = providerOf(plan.providerId, at);
      if (provider) provider.earnings += paid - fee;
      ledger.protocolFees += fee;
      tx.expectedMints.push({ party: recipient, value: amount, what: `CreditsPurchased of ${amount} credits for ${recipient}`, where: at });
      return;
    }
    case "ShortfallRecorded": {
      const { buyer, signer, firstSequence, shortfall } = event.args;
      tx.shortfalls.push({ buyer: getAddress(buyer), signer: getAddress(signer), firstSequence, shortfall, log });
      return;
    }
    case "BondPosted": {
      const provider = providerOf(event.args.providerId, where);
      if (provider) provider.bond.available += event.args.amount;
      tx.expectedIn.push({ party: getAddress(event.args.payer), value: event.args.amount, what: `BondPosted ${event.args.amount} for provider ${event.args.providerId}`, where: { ...where, providerId: event.args.providerId } });
      return;
    }
    case "BondWithdrawalRequested": {
      const { providerId, amount, pending, withdrawableAt } = event.args;
      const provider = providerOf(providerId, where);
      if (!provider) return;
      const at = { ...where, providerId };
      if (amount > provider.bond.available) findings.add("event_mismatch", `provider ${providerId} asked to withdraw ${amount} of a bond of ${provider.bond.available}`, at, { expected: provider.bond.available, found: amount });
      provider.bond.available -= amount;
      provider.bond.pending += amount;
      findings.compare("event_mismatch", `provider ${providerId}'s pending bond withdrawal`, at, provider.bond.pending, pending);
      provider.bond.withdrawableAt = withdrawableAt;
      return;
    }
    case "BondWithdrawalCancelled": {
      const provider = providerOf(event.args.providerId, where);
      if (!provider) return;
      findings.compare("event_mismatch", `provider ${event.args.providerId}'s cancelled bond withdrawal`, { ...where, providerId: event.args.providerId }, provider.bond.pending, event.args.amount);
      provider.bond.available += event.args.amount;
      provider.bond.pending -= event.args.amount;
      provider.bond.withdrawableAt = 0n;
      return;
    }
    case "BondWithdrawn": {
      const { providerId, payout, amount } = event.args;
      const provider = providerOf(providerId, where);
      if (provider) {
        findings.compare("event_mismatch", `provider ${providerId}'s bond withdrawn (its pending withdrawal)`, { ...where, providerId }, provider.bond.pending, amount);
        provider.bond.pending -= amount;
        if (provider.bond.pending <= 0n) provider.bond.withdrawableAt = 0n;
      }
      tx.expectedOut.push({ party: getAddress(payout), value: amount, what: `BondWithdrawn ${amount} for provider ${providerId}`, where: { ...where, providerId } });
      return;
    }
    case "GatewayFraudProven": {
      // The refund and the penalty move from the provider's bond into award buckets, credited by the
      // DisputeAwarded events that follow in the same transaction: no tokens move, no balance changes.
      const { providerId, refund, penalty } = event.args;
      const provider = providerOf(providerId, where);
      if (provider) {
        let owed = refund + penalty;
        const fromAvailable = owed < provider.bond.available ? owed : provider.bond.available;
        provider.bond.available -= fromAvailable;
        owed -= fromAvailable;
        if (owed > provider.bond.pending) findings.add("event_mismatch", `provider ${providerId}'s bond cannot pay a fraud refund and penalty of ${refund + penalty}`, { ...where, providerId }, { expected: provider.bond.available + provider.bond.pending, found: refund + penalty });
        provider.bond.pending -= owed;
      }
      const at = { ...where, providerId };
      if (refund !== 0n) tx.expectedAwards.push({ party: getAddress(event.args.refundedBuyer), value: refund, what: `GatewayFraudProven refunded ${refund}`, where: at });
      if (penalty !== 0n) tx.expectedAwards.push({ party: getAddress(event.args.penalizedTo), value: penalty, what: `GatewayFraudProven paid a penalty of ${penalty}`, where: at });
      return;
    }
    case "DisputeAwarded": {
      const { amount, total, claimableAt } = event.args;
      const beneficiary = getAddress(event.args.beneficiary);
      const at = { ...where, buyer: beneficiary };
      if (!tx.claimAward(beneficiary, amount)) findings.add("event_mismatch", `DisputeAwarded of ${amount} to ${beneficiary} with no GatewayFraudProven paying it in its transaction`, at, { expected: 0n, found: amount });
      const award = ledger.awards.get(beneficiary) ?? { amount: 0n, claimableAt: 0n };
      findings.compare("event_mismatch", `${beneficiary}'s award bucket after an award of ${amount}`, at, award.amount + amount, total);
      ledger.awards.set(beneficiary, { amount: award.amount + amount, claimableAt });
      ledger.awardees.add(beneficiary);
      return;
    }
    case "DisputeAwardClaimed": {
      const { amount } = event.args;
      const beneficiary = getAddress(event.args.beneficiary);
      const at = { ...where, buyer: beneficiary };
      const award = ledger.awards.get(beneficiary);
      findings.compare("event_mismatch", `${beneficiary}'s claimed award bucket`, at, award?.amount ?? 0n, amount);
      if (award && BigInt(time) < award.claimableAt) {
        findings.add("event_mismatch", `${beneficiary} claimed its awards at ${time}, before they were claimable at ${award.claimableAt}`, at, { expected: award.claimableAt, found: BigInt(time) });
      }
      ledger.awards.delete(beneficiary);
      tx.expectedOut.push({ party: beneficiary, value: amount, what: `DisputeAwardClaimed ${amount} by ${beneficiary}`, where: at });
      return;
    }
    default:
      // Ownership, pause, treasury, model metadata and BatchDataPublished change no balance the audit rebuilds.
      return;
  }
}
