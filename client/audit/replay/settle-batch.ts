/**
 * One `BatchSettled` checked and replayed: the batch's data against its commitment and signature, its signer's
 * authorization and sequence against the registry's events, every record priced at the epoch in force when it
 * was served, then each buyer's draw by settlement's rules, compared with what the event, the
 * `ShortfallRecorded` logs and the credit burns of the transaction report. The ledger follows the rules,
 * not the event, so a misreported number is named once, where it was reported. A batch whose data cannot be
 * read is named, and the ledger then follows the event's own totals (flagged as unattributed draws).
 */
import { getAddress, type Address, type Hash, type Hex } from "viem";
import { priceEpochAt, type CreditPlanTerms, type PriceEpoch } from "../../../server/chain/marketplace-reader";
import { recordCost } from "../../../server/chain/pricing";
import { usageBatchHeader } from "../../../server/chain/usage-batch";
import type { BatchSource, HistoryLog } from "../chain-history";
import type { AuditedBatch, AuditedRecord, UnreadableBatch } from "./audited-batch";
import { batchCommitment, recoverBatchSigner } from "./batch-signature";
import { readBatchTables, type BatchTables } from "./batch-tables";
import { drawBuyer, remainingAllowance } from "./draw-rules";
import { describeIncludedDraw, drawIncludedUsage } from "./included-usage";
import type { FindingList, FindingLocation } from "./findings";
import { buyerOf, type Ledger, type SignerState } from "./ledger";
import { attributeDraw, type ReportBuilder } from "./report";
import type { TransactionFlows } from "./transaction-flows";

export interface BatchSettledArgs {
  signer: Address;
  providerId: number;
  firstSequence: bigint;
  recordCount: bigint;
  commitment: Hash;
  contentRoot: Hash;
  totalCost: bigint;
  providerEarnings: bigint;
  protocolFee: bigint;
  totalShortfall: bigint;
  buyerResults: Hex;
}

export interface SettleContext {
  ledger: Ledger;
  /** Where this batch's findings go: a list that discards them when the filters leave the batch out. */
  findings: FindingList;
  domainSeparator: Hash;
  flows: TransactionFlows;
  /** Gets each record's share of its buyer's draw, when the batch is in the report. */
  report?: ReportBuilder;
  /** The report is for this buyer only. */
  reportBuyer?: Address;
}

const UINT128 = (1n << 128n) - 1n;

/** `buyerResults`: 32 bytes per buyer entry, uint128 fromBalance | uint128 shortfall. */
function readBuyerResults(buyerResults: Hex): { fromBalance: bigint; shortfall: bigint }[] {
  const body = buyerResults.slice(2);
  const out: { fromBalance: bigint; shortfall: bigint }[] = [];
  for (let i = 0; i + 64 <= body.length; i += 64) {
    out.push({ fromBalance: BigInt(`0x${body.slice(i, i + 32)}`), shortfall: BigInt(`0x${body.slice(i + 32, i + 64)}`) });
  }
  return out;
}

function describeAuthorization(state: SignerState | undefined, providerId: number): string {
  if (!state || state.history.length === 0) return "it was never authorized by any provider";
  const last = state.history[state.history.length - 1];
  if (last.providerId !== providerId) return `it belongs to provider ${last.providerId}`;
  return `provider ${providerId} revoked it at block ${last.block}`;
}

/** Checks the signer and the sequence from the event alone: both hold whether or not the data is readable. */
function checkSignerAndSequence(context: SettleContext, event: BatchSettledArgs, where: FindingLocation): void {
  const { ledger, findings } = context;
  let state = ledger.signers.get(event.signer);
  if (!state?.authorized || state.providerId !== event.providerId) {
    findings.add("signer_not_authorized", `${event.signer} settled a batch for provider ${event.providerId} at block ${where.block}, but ${describeAuthorization(state, event.providerId)}`, where, {
      expected: true,
      found: false,
    });
  }
  if (!state) {
    state = { signer: event.signer, providerId: event.providerId, authorized: false, nextSequence: 0n, history: [] };
    ledger.signers.set(event.signer, state);
  }
  if (event.firstSequence > state.nextSequence) {
    findings.add("sequence_gap", `${event.signer}'s batch starts at sequence ${event.firstSequence}, but its last batch ended at ${state.nextSequence - 1n}: records ${state.nextSequence}..${event.firstSequence - 1n} were never settled`, where, {
      expected: state.nextSequence,
      found: event.firstSequence,
    });
  } else if (event.firstSequence < state.nextSequence) {
    findings.add("sequence_overlap", `${event.signer}'s batch starts at sequence ${event.firstSequence}, but sequences up to ${state.nextSequence - 1n} were already settled`, where, {
      expected: state.nextSequence,
      found: event.firstSequence,
    });
  }
  state.nextSequence = event.firstSequence + event.recordCount;
}

/** The ledger follows the event's own numbers: used when the batch cannot be read. */
function applyUnreadable(context: SettleContext, event: BatchSettledArgs, log: HistoryLog): void {
  const { ledger, flows } = context;
  const provider = ledger.providers.get(event.providerId);
  if (provider) provider.earnings += event.providerEarnings;
  ledger.protocolFees += event.protocolFee;
  ledger.unattributedDraws += readBuyerResults(event.buyerResults).reduce((sum, result) => sum + result.fromBalance, 0n);
  for (const burn of flows.burns) {
    const holder = buyerOf(ledger, burn.holder);
    holder.credits.set(burn.planId, (holder.credits.get(burn.planId) ?? 0n) - burn.amount);
  }
  flows.burns = [];
  flows.shortfalls = flows.shortfalls.filter((s) => !(s.signer === event.signer && s.firstSequence === event.firstSequence && s.log.logIndex < log.logIndex));
  // What the subscriptions contract says it drew is all there is to go on: the ledger takes it.
  for (const draw of flows.includedDraws) {
    let periods = ledger.includedUsed.get(draw.subscriptionId);
    if (!periods) ledger.includedUsed.set(draw.subscriptionId, (periods = new Map()));
    periods.set(Number(draw.periodIndex), draw.usedInPeriod);
  }
  flows.includedDraws = [];
}

interface ModelEntry {
  modelId: number;
  epoch?: PriceEpoch;
  from: number;
  until: number;
  localIndex: number;
  providerId: number;
  name: string;
}

interface BuyerEntry {
  buyer: Address;
  planId: bigint;
  plan?: CreditPlanTerms;
  otherCost: bigint;
  eligibleCost: bigint;
  records: number[];
}

/** The batch as audited, or, when its data could not be read, what its event says and why. */
export type SettledBatch = { readable: true; batch: AuditedBatch } | { readable: false; batch: UnreadableBatch };

export async function settleBatch(context: SettleContext, log: HistoryLog, event: BatchSettledArgs, source: BatchSource | undefined, blockTime: number): Promise<SettledBatch> {
  const { ledger, findings, flows } = context;
  const where: FindingLocation = { tx: log.transactionHash, block: log.blockNumber, signer: event.signer, batch: event.firstSequence, providerId: event.providerId };
  const reported = readBuyerResults(event.buyerResults);
  const fromEvent = {
    txHash: log.transactionHash,
    blockNumber: log.blockNumber,
    logIndex: log.logIndex,
    signer: event.signer,
    providerId: event.providerId,
    firstSequence: event.firstSequence,
    recordCount: event.recordCount,
    commitment: event.commitment,
    contentRoot: event.contentRoot,
    totalCost: event.totalCost,
    providerEarnings: event.providerEarnings,
    protocolFee: event.protocolFee,
    totalShortfall: event.totalShortfall,
    drawnFromBalance: reported.reduce((sum, result) => sum + result.fromBalance, 0n),
  };
  checkSignerAndSequence(context, event, where);

  if (!source || source.kind === "unavailable") {
    const reason = source?.reason ?? "the history holds no entry for it";
    findings.add("batch_data_unavailable", `the data of ${event.signer}'s batch from sequence ${event.firstSequence} (${event.recordCount} records) could not be read: ${reason}; its charges are unverified and the ledger takes the event's totals`, where);
    applyUnreadable(context, event, log);
    return { readable: false, batch: { ...fromEvent, reason } };
  }
  const { batch, signature } = source;
  const commitment = batchCommitment(batch);
  if (commitment !== event.commitment) {
    // Not the batch that was settled: replaying it would blame buyers for numbers the chain never used.
    const reason = `the batch read from ${source.kind} does not hash to the commitment BatchSettled reports`;
    findings.add("commitment_mismatch", `${reason}; the ledger takes the event's totals`, where, { expected: event.commitment, found: commitment });
    applyUnreadable(context, event, log);
    return { readable: false, batch: { ...fromEvent, reason } };
  }
  let tables: BatchTables;
  try {
    tables = readBatchTables(batch);
  } catch (error) {
    // The signed, settled data itself is malformed: the contract would have reverted, so this is no Tollgate's batch.
    const reason = `the batch read from ${source.kind} does not decode: ${(error as Error).message}`;
    findings.add("batch_data_malformed", `${reason}; the ledger takes the event's totals`, where);
    applyUnreadable(context, event, log);
    return { readable: false, batch: { ...fromEvent, reason } };
  }
  const audited: AuditedBatch = {
    ...fromEvent,
    header: usageBatchHeader(batch),
    sections: { buyers: batch.buyers, models: batch.models, records: batch.records },
    source: source.kind,
    records: [],
    rebuiltCost: 0n,
    draws: [],
  };
  if (batch.firstSequence !== event.firstSequence) findings.compare("event_mismatch", "the batch's firstSequence differs from the event's", where, event.firstSequence, batch.firstSequence);
  if (batch.contentRoot !== event.contentRoot) findings.compare("event_mismatch", "the batch's contentRoot differs from the event's", where, event.contentRoot, batch.contentRoot);
  const recovered = await recoverBatchSigner(context.domainSeparator, commitment, signature);
  if (recovered !== event.signer) {
    findings.add("bad_batch_signature", `the batch's EIP-712 signature recovers to ${recovered ?? "no address"}, not to the signer BatchSettled names`, where, { expected: event.signer, found: recovered ?? "none" });
  }
  findings.compare("record_count_mismatch", "records in the batch vs recordCount in BatchSettled", where, event.recordCount, BigInt(tables.records.length));

  // The model table: each entry's terms as the registry's events define them at this block.
  const models: ModelEntry[] = tables.models.map(({ modelId, epoch: epochIndex }) => {
    const model = ledger.models.get(modelId);
    const entry: ModelEntry = { modelId, from: 0, until: 0, localIndex: 0, providerId: 0, name: "" };
    if (!model) {
      findings.add("unknown_model", `the batch names model ${modelId}, which was never listed`, { ...where, modelId });
      return entry;
    }
    Object.assign(entry, { localIndex: model.localIndex, providerId: model.providerId, name: model.name });
    if (model.providerId !== event.providerId) {
      findings.add("model_not_of_provider", `the batch charges for model ${modelId} (${model.name}) of provider ${model.providerId} under provider ${event.providerId}'s signer`, { ...where, modelId }, { expected: event.providerId, found: model.providerId });
    }
    const epoch = model.epochs[epochIndex];
    if (!epoch) {
      findings.add("unknown_price_epoch", `the batch prices model ${modelId} at epoch ${epochIndex}; it has ${model.epochs.length}`, { ...where, modelId }, { expected: BigInt(model.epochs.length - 1), found: BigInt(epochIndex) });
      return entry;
    }
    entry.epoch = epoch;
    entry.from = epoch.effectiveFrom;
    entry.until = model.epochs[epochIndex + 1]?.effectiveFrom ?? Number.POSITIVE_INFINITY;
    return entry;
  });
  const buyers: BuyerEntry[] = tables.buyers.map(({ buyer, planId }) => {
    const entry: BuyerEntry = { buyer, planId: BigInt(planId), otherCost: 0n, eligibleCost: 0n, records: [] };
    if (planId !== 0) {
      const plan = ledger.plans.get(BigInt(planId));
      if (plan?.providerId !== event.providerId) {
        findings.add("plan_not_of_provider", `the batch names credit plan ${planId} for ${buyer}, ${plan ? `a plan of provider ${plan.providerId}` : "a plan never defined"}`, { ...where, buyer, planId: BigInt(planId) });
      } else entry.plan = plan;
    }
    return entry;
  });

  // Price every record at the epoch the batch names, checking that epoch was in force when it was served.
  let rebuiltCost = 0n;
  const costs: bigint[] = new Array(tables.records.length);
  const eligible = new Uint8Array(tables.records.length);
  for (let n = 0; n < tables.records.length; n++) {
    const record = tables.records[n];
    const model = models[tables.modelIndex[n]];
    const buyer = buyers[tables.buyerIndex[n]];
    buyer.records.push(n);
    if (!model.epoch) {
      costs[n] = 0n;
      continue;
    }
    if (record.servedAt > blockTime) {
      findings.add("served_in_future", `record ${record.sequence} claims to be served at ${record.servedAt}, after its settlement block's time ${blockTime}`, { ...where, sequence: record.sequence, buyer: record.buyer, modelId: record.modelId }, { expected: BigInt(blockTime), found: BigInt(record.servedAt) });
    }
    if (record.servedAt < model.from || record.servedAt >= model.until) {
      const inForce = priceEpochAt(ledger.models.get(model.modelId)!.epochs, record.servedAt);
      findings.add("wrong_price_epoch", `record ${record.sequence} (model ${record.modelId}) was served at ${record.servedAt}, when epoch ${inForce?.index ?? "none"} was in force, but is priced at epoch ${record.priceEpoch}`, { ...where, sequence: record.sequence, buyer: record.buyer, modelId: record.modelId }, { expected: BigInt(inForce?.index ?? -1), found: BigInt(record.priceEpoch) });
    }
    const cost = recordCost(record, model.epoch);
    costs[n] = cost;
    rebuiltCost += cost;
    const plan = buyer.plan;
    if (plan && (plan.modelMask >> BigInt(model.localIndex)) & 1n && (plan.expiresAt === 0 || record.servedAt < plan.expiresAt)) {
      eligible[n] = 1;
      buyer.eligibleCost += cost;
    } else buyer.otherCost += cost;
    // The decoded record becomes the audited one in place: one object per record, not two.
    const auditedRecord = record as AuditedRecord;
    auditedRecord.epoch = model.epoch;
    auditedRecord.cost = cost;
    audited.records.push(auditedRecord);
  }
  audited.rebuiltCost = rebuiltCost;

  // Subscriptions' included usage comes out of each bucket before credits and balance (a REFUSE plan's excess too).
  const included = drawIncludedUsage(ledger, {
    providerId: event.providerId,
    firstSequence: event.firstSequence,
    buyers: buyers.map((entry) => entry.buyer),
    buyerIndex: tables.buyerIndex,
    modelIndex: tables.modelIndex,
    servedAt: (n) => tables.records[n].servedAt,
    costs,
    eligible,
    maskBits: models.map((model) => (model.epoch ? 1n << BigInt(model.localIndex) : undefined)),
  });
  const reportedDraws = flows.includedDraws;
  flows.includedDraws = [];
  for (let i = 0; i < Math.max(included.events.length, reportedDraws.length); i++) {
    const expected = included.events[i];
    const found = reportedDraws[i];
    findings.compare(
      "included_usage_mismatch",
      `IncludedUsageDrawn ${i + 1} of this batch, by the subscription rules vs as the subscriptions contract reported it`,
      { ...where, buyer: (expected ?? found)!.buyer, ...(found && { logIndex: found.log.logIndex }) },
      expected ? describeIncludedDraw(expected) : "none",
      found ? describeIncludedDraw(found) : "none",
    );
  }

  // Each buyer's draw, by the rules, against what the event and the transaction's logs report.
  const burnsReported = new Map<string, bigint>();
  for (const burn of flows.burns) burnsReported.set(`${burn.holder}:${burn.planId}`, (burnsReported.get(`${burn.holder}:${burn.planId}`) ?? 0n) + burn.amount);
  const shortfallsReported = new Map<Address, bigint>();
  flows.shortfalls = flows.shortfalls.filter((recordedShortfall) => {
    if (recordedShortfall.signer !== event.signer || recordedShortfall.firstSequence !== event.firstSequence) return true;
    shortfallsReported.set(recordedShortfall.buyer, (shortfallsReported.get(recordedShortfall.buyer) ?? 0n) + recordedShortfall.shortfall);
    return false;
  });
  if (reported.length !== buyers.length) {
    findings.compare("event_mismatch", "entries in buyerResults vs buyers in the batch", where, BigInt(buyers.length), BigInt(reported.length));
  }
  let paid = 0n;
  let fees = 0n;
  let shortfall = 0n;
  const provider = ledger.providers.get(event.providerId);
  for (let j = 0; j < buyers.length; j++) {
    const entry = buyers[j];
    const account = buyerOf(ledger, entry.buyer);
    const limit = account.limits.get(event.providerId);
    const allowance = remainingAllowance(limit, blockTime);
    const planKey = entry.planId;
    const covered = included.buyers[j];
    const drawn = drawBuyer({
      otherCost: entry.otherCost - covered.fromOther,
      eligibleCost: entry.eligibleCost - covered.fromEligible,
      allowance,
      credits: entry.plan ? account.credits.get(planKey) ?? 0n : 0n,
      creditValue: entry.plan?.valuePerCredit ?? 1n,
      creditChange: entry.plan ? account.creditChange.get(planKey) ?? 0n : 0n,
      balance: account.balance,
      pendingWithdrawal: account.pendingWithdrawal,
      feeBps: ledger.feeBps,
    });
    // The batch's cost counts what the subscription covered; what a REFUSE plan refused is shortfall, never charged.
    const result = { ...drawn, total: drawn.total + covered.included + covered.refused, shortfall: drawn.shortfall + covered.refused };
    account.balance = result.balance;
    account.pendingWithdrawal = result.pendingWithdrawal;
    if (entry.plan) account.creditChange.set(planKey, result.creditChange);
    if (limit && result.window) {
      limit.windowStart = result.window.windowStart;
      limit.spentInWindow = result.window.spent;
    }
    paid += result.fromBalance;
    fees += result.fee;
    shortfall += result.shortfall;
    const buyerWhere = { ...where, buyer: entry.buyer };
    const said = reported[j] ?? { fromBalance: 0n, shortfall: 0n };
    findings.compare("draw_mismatch", `what ${entry.buyer} paid from its balance for this batch (buyerResults[${j}])`, buyerWhere, result.fromBalance, said.fromBalance);
    findings.compare("shortfall_mismatch", `${entry.buyer}'s shortfall in this batch (buyerResults[${j}])`, buyerWhere, result.shortfall > UINT128 ? UINT128 : result.shortfall, said.shortfall);
    findings.compare("shortfall_event_mismatch", `ShortfallRecorded for ${entry.buyer} in this batch`, buyerWhere, result.shortfall, shortfallsReported.get(entry.buyer) ?? 0n);
    shortfallsReported.delete(entry.buyer);
    const burnKey = `${entry.buyer}:${planKey}`;
    findings.compare("credits_burned_mismatch", `credits of plan ${planKey} burned from ${entry.buyer} by this batch`, { ...buyerWhere, planId: planKey }, result.creditsBurned, burnsReported.get(burnKey) ?? 0n);
    burnsReported.delete(burnKey);
    audited.draws.push({
      buyer: entry.buyer,
      planId: planKey,
      cost: result.total,
      eligibleCost: entry.eligibleCost,
      coveredBySubscription: covered.included,
      refusedBySubscription: covered.refused,
      chargeable: result.chargeable,
      coveredByCredits: result.coveredByCredits,
      creditsBurned: result.creditsBurned,
      fromBalance: result.fromBalance,
      shortfall: result.shortfall,
      fee: result.fee,
      reportedFromBalance: said.fromBalance,
      reportedShortfall: said.shortfall,
    });
    if (context.report && (!context.reportBuyer || context.reportBuyer === entry.buyer)) {
      attributeDraw(context.report, event.providerId, entry.records.map((n) => tables.records[n]), entry.records.map((n) => ({ cost: costs[n], eligible: eligible[n] === 1, included: included.included[n], refused: included.refused[n] })), result.coveredByCredits, result.fromBalance);
    }
  }
  for (const [buyer, amount] of shortfallsReported) {
    findings.add("shortfall_event_mismatch", `ShortfallRecorded names ${buyer}, who is not in this batch`, { ...where, buyer }, { expected: 0n, found: amount });
  }
  for (const [key, amount] of burnsReported) {
    const [holder, planId] = key.split(":");
    findings.add("credits_burned_mismatch", `${amount} credits of plan ${planId} burned from ${holder}, whom this batch does not charge with that plan`, { ...where, buyer: getAddress(holder), planId: BigInt(planId) }, { expected: 0n, found: amount });
  }
  // The ERC-1155 balances follow the burns the token logged; a difference from the rules is named above.
  for (const burn of flows.burns) {
    const holder = buyerOf(ledger, burn.holder);
    holder.credits.set(burn.planId, (holder.credits.get(burn.planId) ?? 0n) - burn.amount);
  }
  flows.burns = [];

  findings.compare("totals_mismatch", "the batch's total cost, rebuilt from its records vs BatchSettled.totalCost", where, rebuiltCost, event.totalCost);
  findings.compare("totals_mismatch", "the batch's total shortfall vs BatchSettled.totalShortfall", where, shortfall, event.totalShortfall);
  findings.compare("fee_mismatch", "the protocol fee, taken per buyer on what its balance paid, vs BatchSettled.protocolFee", where, fees, event.protocolFee);
  findings.compare("totals_mismatch", "the provider's earnings (paid from balances minus the fee) vs BatchSettled.providerEarnings", where, paid - fees, event.providerEarnings);
  if (provider) provider.earnings += paid - fees;
  ledger.protocolFees += fees;
  return { readable: true, batch: audited };
}
