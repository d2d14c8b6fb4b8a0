/**
 * The chain audit of a deployment with subscribed buyers (test/helpers/subscribed-market.ts: a BILL_BALANCE and a
 * REFUSE plan, settled across two periods, a renewal the buyer cannot pay, a cancellation): zero findings, the
 * vault conserved, every included draw replayed. Then a tampered draw, a misreported renewal and a subscription
 * payment removed from the history are each named.
 */
import { expect } from "chai";
import { decodeEventLog, encodeAbiParameters, encodeEventTopics, type AbiEvent, type Address, type Hex } from "viem";
import { auditDeployment } from "../../client";
import { auditChain, type ChainAudit, type FindingCode } from "../../client/audit/chain-audit";
import type { ChainHistory, HistoryLog } from "../../client/audit/chain-history";
import { loadChainHistory } from "../../client/audit/load-chain-history";
import { rpcStateReader } from "../../client/audit/rpc-state-reader";
import { FEE_BPS } from "../../scripts/lib/marketplace-fixtures";
import { tollgateSubscriptionsAbi } from "../../server/chain/abis";
import { CALL_COST, INCLUDED, PLAN_PRICE, subscribedMarket, type SubscribedMarket } from "../helpers/subscribed-market";

const describe_ = (result: ChainAudit) => result.findings.map((finding) => `${finding.code}: ${finding.message}`).join("\n");
const codes = (result: ChainAudit): FindingCode[] => [...new Set(result.findings.map((finding) => finding.code))].sort();

function decodedSubscriptionEvent(log: HistoryLog, name: string): Record<string, unknown> | undefined {
  try {
    const event = decodeEventLog({ abi: tollgateSubscriptionsAbi, topics: log.topics as [Hex, ...Hex[]], data: log.data });
    return event.eventName === name ? (event.args as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The history with the first `name` log of the subscriptions contract re-encoded with some arguments changed. */
function tampered(history: ChainHistory, name: string, change: (args: Record<string, unknown>) => Record<string, unknown>): ChainHistory {
  const index = history.logs.findIndex((log) => decodedSubscriptionEvent(log, name));
  expect(index, `a ${name} log`).to.be.greaterThan(-1);
  const log = history.logs[index];
  const args = change({ ...decodedSubscriptionEvent(log, name)! });
  const event = tollgateSubscriptionsAbi.find((item) => item.type === "event" && item.name === name) as AbiEvent;
  const topics = encodeEventTopics({ abi: [event], eventName: name, args } as never) as Hex[];
  const plain = event.inputs.filter((input) => !input.indexed);
  const logs = [...history.logs];
  logs[index] = { ...log, topics, data: encodeAbiParameters(plain, plain.map((input) => args[input.name!])) };
  return { ...history, logs };
}

describe("auditChain with subscriptions: included usage, overage, renewals and ends replayed", function () {
  let scenario: SubscribedMarket;
  let history: ChainHistory;
  let clean: ChainAudit;
  const audit = (h: ChainHistory) => auditChain(h, rpcStateReader(scenario.market.clientOf(scenario.x).public, h));

  before(async function () {
    scenario = await subscribedMarket();
    const client = scenario.market.clientOf(scenario.x).public;
    clean = await auditDeployment(client, { tollgate: scenario.tollgate, deployBlock: Number(scenario.deployBlock) });
    history = await loadChainHistory(client, { tollgate: scenario.tollgate, deployBlock: scenario.deployBlock });
  });

  it("audits a deployment with subscribed buyers across two periods with zero findings, the vault conserved", function () {
    expect(clean.findings, describe_(clean)).to.deep.equal([]);
    expect(clean.ok).to.equal(true);
    expect(clean.batches).to.have.length(2);
    expect(clean.conservation.conserved).to.equal(true);
    expect(clean.conservation.vaultTokens).to.equal(clean.conservation.owed);
    expect(clean.conservation.vaultTokens).to.equal(clean.conservation.tokenFlow);
    expect(history.subscriptions, "the loader found the subscriptions contract").to.match(/^0x[0-9a-fA-F]{40}$/);
  });

  it("replays each draw: included value first, then the overage rule, and nothing rolls over into the next period", function () {
    const { x, y } = scenario;
    const [first, second] = clean.batches;
    const drawOf = (batch: ChainAudit["batches"][number], buyer: Address) => batch.draws.find((draw) => draw.buyer === buyer)!;
    // Period 0, BILL_BALANCE: 30,000 included, the 12,000 beyond it from X's one credit (10,000) and its balance.
    expect(drawOf(first, x).coveredBySubscription).to.equal(INCLUDED);
    expect(drawOf(first, x).refusedBySubscription).to.equal(0n);
    expect(drawOf(first, x).coveredByCredits).to.equal(10_000n);
    expect(drawOf(first, x).creditsBurned).to.equal(1n);
    expect(drawOf(first, x).shortfall).to.equal(0n);
    expect(drawOf(first, x).fromBalance).to.equal(drawOf(first, x).cost - INCLUDED - 10_000n);
    // Period 0, REFUSE: 30,000 included, 12,000 refused (shortfall), nothing from the balance.
    expect(drawOf(first, y)).to.include({ coveredBySubscription: INCLUDED, refusedBySubscription: 2n * CALL_COST - INCLUDED, fromBalance: 0n, shortfall: 2n * CALL_COST - INCLUDED });
    // Batch 2: X's late period-0 record finds period 0 used up and pays; its period-1 record draws a fresh included value.
    expect(drawOf(second, x)).to.include({ coveredBySubscription: CALL_COST, refusedBySubscription: 0n, fromBalance: CALL_COST, shortfall: 0n });
    // Y: its late period-0 record is refused; its record after the unpaid renewal is billed as without a subscription.
    expect(drawOf(second, y)).to.include({ coveredBySubscription: 0n, refusedBySubscription: CALL_COST, fromBalance: 5_000n, shortfall: CALL_COST + CALL_COST - 5_000n });
    const ledger = clean.ledger;
    const subX = ledger.subscriptions.get(`${x}:1`)!;
    const subY = ledger.subscriptions.get(`${y}:1`)!;
    expect(subX).to.include({ paidPeriods: 2, active: false, cancelled: true });
    expect(subY).to.include({ paidPeriods: 1, active: false, cancelled: false });
    expect([...ledger.includedUsed.get(subX.id)!]).to.deep.equal([[0, INCLUDED], [1, CALL_COST]]);
    expect([...ledger.includedUsed.get(subY.id)!]).to.deep.equal([[0, INCLUDED]]);
    // The report splits each record's cost exactly: subscription, credits, balance, shortfall.
    const totals = clean.report.totals;
    expect(totals.coveredBySubscription).to.equal(2n * INCLUDED + CALL_COST);
    expect(totals.cost).to.equal(totals.fromBalance + totals.coveredByCredits + totals.coveredBySubscription + totals.shortfall);
  });

  it("replays the period payments into the provider's earnings and the protocol fee", function () {
    // Three periods paid (X twice, Y once), the vault's fee on each, besides X's credit purchase and the usage.
    const fee = (PLAN_PRICE * FEE_BPS + 9_999n) / 10_000n;
    const usageFees = clean.batches.reduce((sum, batch) => sum + batch.protocolFee, 0n);
    const creditFee = (9_000n * FEE_BPS + 9_999n) / 10_000n;
    expect(clean.ledger.protocolFees).to.equal(3n * fee + usageFees + creditFee);
  });

  it("names an IncludedUsageDrawn that misreports a draw", async function () {
    const result = await audit(tampered(history, "IncludedUsageDrawn", (args) => ({ ...args, drawn: (args.drawn as bigint) - 1n })));
    expect(codes(result)).to.deep.equal(["included_usage_mismatch"]);
    expect(result.findings[0].message).to.contain(`drew ${INCLUDED - 1n}`);
  });

  it("names a renewal whose price is not the plan's, and the balances it leaves wrong", async function () {
    const result = await audit(tampered(history, "SubscriptionRenewed", (args) => ({ ...args, price: (args.price as bigint) - 1n })));
    expect(codes(result)).to.deep.equal(["balance_mismatch", "earnings_mismatch", "event_mismatch"]);
    expect(result.findings.find((finding) => finding.code === "event_mismatch")!.message).to.contain("period price");
  });

  it("names a subscription payment missing from the history: balances, earnings, fees and the subscription's draws disagree", async function () {
    const index = history.logs.findIndex((log) => decodedSubscriptionEvent(log, "Subscribed"));
    const result = await audit({ ...history, logs: history.logs.filter((_, i) => i !== index) });
    // The payment moved money inside the vault, so its tokens still add up; who holds them does not.
    expect(codes(result)).to.include.members(["balance_mismatch", "earnings_mismatch", "protocol_fees_mismatch", "included_usage_mismatch"]);
    expect(result.conservation.vaultTokens).to.equal(result.conservation.tokenFlow);
    expect(result.ok).to.equal(false);
  });

  it("names an unpaid end whose buyer could pay", async function () {
    const result = await audit(tampered(history, "SubscriptionEnded", (args) => ({ ...args, balance: PLAN_PRICE })));
    expect(result.findings.map((finding) => finding.message).join("\n")).to.contain("balance when its renewal could not be paid");
  });
});
