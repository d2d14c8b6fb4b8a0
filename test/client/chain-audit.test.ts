/**
 * The chain audit on Hardhat's in-process chain: a marketplace that used every money path (deposits, a permit
 * deposit, credits bought from the wallet and from the balance, credits resold, a spending cap that binds, a
 * shortfall, a withdrawal requested, cancelled, drawn on and executed, a price change with records on both
 * sides, a fee change, fee collection, an earnings withdrawal, two gateway signers, a batch relayed through a
 * contract) audits with no finding. Then each tampering is caught and named.
 *
 * Tamperings the real contract refuses to produce are made in the history the auditor reads (it is a pure
 * function of that history and the state): a revocation moved before a batch, a price epoch's start moved
 * before a record it did not price, a batch removed (gap) or replayed (overlap), a BatchSettled whose
 * buyerResults misreport a draw, a batch whose data is missing. A balance that disagrees with the events is
 * made on the real chain, with hardhat_setStorageAt on the buyer's account slot.
 */
import hre, { ethers } from "hardhat";
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import {
  decodeEventLog,
  encodeAbiParameters,
  encodeEventTopics,
  getAddress,
  keccak256,
  toHex,
  zeroHash,
  type AbiEvent,
  type Address,
  type Hash,
  type Hex,
  type LocalAccount,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  buyCredits,
  cancelWithdrawal,
  collectProtocolFees,
  defineCreditPlan,
  deposit,
  depositWithPermit,
  executeWithdrawal,
  mintTestTokens,
  postBond,
  claimDisputeAwards,
  proveEquivocation,
  requestBondWithdrawal,
  requestWithdrawal,
  scheduleModelPrice,
  setProtocolFee,
  setSignerAuthorization,
  setSpendingLimit,
  transferCredits,
  withdrawEarnings,
} from "../../client";
import { auditChain, type ChainAudit, type Finding, type FindingCode } from "../../client/audit/chain-audit";
import { batchKey, type ChainHistory, type ChainStateReader, type HistoryLog } from "../../client/audit/chain-history";
import { loadChainHistory } from "../../client/audit/load-chain-history";
import { rpcStateReader } from "../../client/audit/rpc-state-reader";
import { deployMarketplace, LARGE_PRICES, PRICE_NOTICE, USD, WITHDRAWAL_DELAY, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { testUsdAbi, tollgateAbi } from "../../server/chain/abis";
import { signedUsageBatch, signUsageBatch, signUsageReceipt } from "../../server/chain/sign-batch";
import { hashReceipt, type UsageReceipt, type UsageRecord } from "../../server/chain/usage-batch";
import { receiptToWire, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { TOLLGATE_DOMAIN_NAME, TOLLGATE_DOMAIN_VERSION } from "../../server/chain/eip712";

interface Settled {
  hash: Hash;
  signer: Address;
  firstSequence: bigint;
  relayed: boolean;
}

interface Scenario {
  market: Marketplace;
  tollgate: Address;
  deployBlock: bigint;
  gateway2: LocalAccount;
  buyers: { a: Address; b: Address; c: Address; d: Address; e: Address };
  /** In order: 1 direct (gateway), 2 relayed (gateway2), 3 direct across the price change (gateway), 4 direct (gateway2). */
  batches: Settled[];
  /** The record of batch 3 served under the old price, shortly before the new one began. */
  beforePriceChange: { sequence: bigint; servedAt: number };
  history: ChainHistory;
}

async function load(scenario: Pick<Scenario, "market" | "tollgate" | "deployBlock">): Promise<ChainHistory> {
  return loadChainHistory(scenario.market.clientOf(scenario.market.owner.address as Address).public, { tollgate: scenario.tollgate, deployBlock: scenario.deployBlock });
}

async function audit(scenario: Pick<Scenario, "market">, history: ChainHistory, options: Parameters<typeof auditChain>[2] = {}): Promise<ChainAudit> {
  const client = scenario.market.clientOf(scenario.market.owner.address as Address).public;
  return auditChain(history, rpcStateReader(client, history), options);
}

async function runMarketplace(): Promise<Scenario> {
  const market = await deployMarketplace();
  const tollgate = getAddress(await market.tollgate.getAddress());
  const deployBlock = BigInt((await market.tollgate.deploymentTransaction()!.wait())!.blockNumber);
  const [A, B, C, D, E] = market.buyers.map((signer) => getAddress(signer.address));
  const as = (who: Address) => market.clientOf(who);
  const providerId = Number(market.providerId);
  const seller = as(getAddress(market.provider.address));
  const gateway2 = privateKeyToAccount(generatePrivateKey());
  await setSignerAuthorization(seller, { providerId, signer: gateway2.address, authorized: true });

  await deposit(as(A), { amount: USD(100) });
  await depositWithPermit(as(B), { amount: USD(50) });
  await deposit(as(C), { amount: 1_000n }); // too little for its usage: a shortfall
  await deposit(as(E), { amount: 10_000n });
  const { planId } = await defineCreditPlan(seller, { providerId, pricePerCredit: 9_000n, valuePerCredit: 10_000n, modelIds: [Number(market.smallModel)] });
  await buyCredits(as(B), { planId, count: 10n, payFrom: "wallet" });
  await buyCredits(as(A), { planId, count: 5n, payFrom: "balance" });
  await transferCredits(as(B), { to: D, planId, count: 3n });
  await setSpendingLimit(as(A), { providerId, limitPerPeriod: 3_000n, periodSeconds: 600 });
  await requestWithdrawal(as(E), { amount: 8_000n });
  await cancelWithdrawal(as(E));
  await requestWithdrawal(as(E), { amount: 8_000n }); // settlement will draw on it
  const relay = await (await ethers.getContractFactory("BatchRelay")).deploy();
  await time.increase(3_600);

  const next = new Map<Address, bigint>();
  const batches: Settled[] = [];
  const settle = async (signer: LocalAccount, parts: Omit<UsageRecord, "sequence" | "receiptHash">[], plans: [Address, bigint][], relayed = false) => {
    const first = next.get(signer.address) ?? 0n;
    const records: UsageRecord[] = parts.map((part, i) => ({ ...part, sequence: first + BigInt(i), receiptHash: keccak256(toHex(`${signer.address} ${first + BigInt(i)}`)) }));
    const { batch, signature } = await signedUsageBatch(signer, { chainId: market.chainId, address: tollgate }, records, new Map(plans.map(([buyer, plan]) => [buyer, Number(plan)])));
    const sender = market.others[0];
    const sent = relayed
      ? relay.connect(sender).relay(tollgate, [market.tollgate.interface.encodeFunctionData("settleBatch", [batch, signature])])
      : market.tollgate.connect(sender).settleBatch(batch, signature);
    const receipt = (await (await sent).wait())!;
    batches.push({ hash: receipt.hash as Hash, signer: signer.address, firstSequence: first, relayed });
    next.set(signer.address, first + BigInt(records.length));
  };
  const now = async () => (await ethers.provider.getBlock("latest"))!.timestamp;
  const large = Number(market.largeModel);
  const small = Number(market.smallModel);
  const call = (buyer: Address, modelId: number, servedAt: number, priceEpoch = 0, inputTokens = 1_000, outputTokens = 200) => ({
    buyer,
    modelId,
    priceEpoch,
    inputTokens,
    cachedInputTokens: inputTokens / 10,
    outputTokens,
    servedAt,
  });

  let t = (await now()) - 60;
  // Batch 1: A's cap binds, B and D pay with credits, C falls short, E's pending withdrawal pays.
  await settle(market.gateway, [call(A, large, t), call(A, large, t + 1), call(B, small, t + 2), call(C, large, t + 3), call(D, small, t + 4, 0, 40_000), call(E, large, t + 5, 0, 1_000, 400), call(B, large, t + 6)], [[B, planId], [D, planId]]);
  await setProtocolFee(as(getAddress(market.owner.address)), { feeBps: 500n });
  await time.increase(700); // A's cap starts a new window
  t = (await now()) - 30;
  // Batch 2, relayed through a contract: A's credits, B's balance.
  await settle(gateway2, [call(A, small, t), call(B, large, t + 1), call(A, small, t + 2)], [[A, planId]], true);
  const { effectiveFrom } = await scheduleModelPrice(seller, { modelId: large, prices: { input: LARGE_PRICES.input * 2n, cachedInput: LARGE_PRICES.cachedInput * 2n, output: LARGE_PRICES.output * 2n } });
  await time.increase(PRICE_NOTICE + 100n);
  const servedBefore = Number(effectiveFrom) - 600;
  t = (await now()) - 10;
  // Batch 3: the same model on both sides of its price change, each record at the epoch in force when served.
  await settle(market.gateway, [call(A, large, servedBefore, 0), call(B, large, servedBefore + 1, 0), call(A, large, t, 1), call(B, large, t + 1, 1)], []);
  const beforePriceChange = { sequence: next.get(market.gateway.address)! - 4n, servedAt: servedBefore };
  await collectProtocolFees(as(getAddress(market.others[1].address)));
  await withdrawEarnings(seller, { providerId });
  await time.increase(WITHDRAWAL_DELAY);
  await executeWithdrawal(as(E));
  t = (await now()) - 5;
  await settle(gateway2, [call(B, small, t), call(C, small, t + 1)], [[B, planId]]);
  // Revoked after its last batch, as a provider retiring a key does.
  await setSignerAuthorization(seller, { providerId, signer: gateway2.address, authorized: false });

  const scenario = { market, tollgate, deployBlock };
  return { ...scenario, gateway2, buyers: { a: A, b: B, c: C, d: D, e: E }, batches, beforePriceChange, history: await load(scenario) };
}

const codes = (result: ChainAudit): FindingCode[] => [...new Set(result.findings.map((finding) => finding.code))].sort();
const only = (result: ChainAudit, code: FindingCode): Finding[] => result.findings.filter((finding) => finding.code === code);
const describe_ = (result: ChainAudit) => result.findings.map((finding) => `${finding.code}: ${finding.message}`).join("\n");

/** A copy of the history the test may edit, the original left alone. */
function copyOf(history: ChainHistory): ChainHistory & { logs: HistoryLog[]; batches: Map<ReturnType<typeof batchKey>, NonNullable<ReturnType<ChainHistory["batches"]["get"]>>> } {
  return { ...history, logs: history.logs.map((log) => ({ ...log })), batches: new Map(history.batches) };
}

function eventOf(name: string): AbiEvent {
  return tollgateAbi.find((item) => item.type === "event" && item.name === name) as AbiEvent;
}

/** The log's event, decoded with Tollgate's ABI, or undefined when it is not `name`. */
function decoded(log: HistoryLog, name: string): Record<string, unknown> | undefined {
  try {
    const event = decodeEventLog({ abi: tollgateAbi, topics: log.topics as [Hex, ...Hex[]], data: log.data });
    return event.eventName === name ? (event.args as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The log re-encoded with some of its event's arguments changed. */
function rewritten(log: HistoryLog, name: string, change: (args: Record<string, unknown>) => Record<string, unknown>): HistoryLog {
  const args = change({ ...decoded(log, name)! });
  const event = eventOf(name);
  const topics = encodeEventTopics({ abi: [event], eventName: name, args } as never) as Hex[];
  const plain = event.inputs.filter((input) => !input.indexed);
  return { ...log, topics, data: encodeAbiParameters(plain, plain.map((input) => args[input.name!])) };
}

/** A log of `abi`'s event `name` with these arguments, placed like `at` but in its own transaction. */
function synthetic(abi: readonly unknown[], name: string, args: Record<string, unknown>, at: HistoryLog, address: Address, tx: Hash, logIndex: number): HistoryLog {
  const event = (abi as AbiEvent[]).find((item) => item.type === "event" && item.name === name)!;
  const topics = encodeEventTopics({ abi: [event], eventName: name, args } as never) as Hex[];
  const plain = event.inputs.filter((input) => !input.indexed);
  return { ...at, address, transactionHash: tx, logIndex, topics, data: encodeAbiParameters(plain, plain.map((input) => args[input.name!])) };
}

const settledLogIndex = (history: ChainHistory, hash: Hash) => history.logs.findIndex((log) => log.transactionHash === hash && decoded(log, "BatchSettled"));

describe("auditChain: every charge rebuilt from chain data alone", function () {
  let scenario: Scenario;
  let clean: ChainAudit;

  before(async function () {
    scenario = await runMarketplace();
    clean = await audit(scenario, scenario.history);
  });

  it("audits a marketplace that used every money path with no finding", function () {
    expect(clean.findings, describe_(clean)).to.deep.equal([]);
    expect(clean.ok).to.equal(true);
    expect(clean.batches).to.have.length(4);
    expect(clean.unreadable).to.deep.equal([]);
    expect(clean.conservation.conserved).to.equal(true);
    expect(clean.conservation.vaultTokens).to.equal(clean.conservation.owed);
    expect(clean.conservation.vaultTokens).to.equal(clean.conservation.tokenFlow);
  });

  it("replays what each money path did: the cap, credits first, the pending withdrawal, the shortfall", function () {
    const { a, b, c, d, e } = scenario.buyers;
    const [first, second] = clean.batches;
    const drawOf = (batch: ChainAudit["batches"][number], buyer: Address) => batch.draws.find((draw) => draw.buyer === buyer)!;
    // A's cap of 3,000 per 10 minutes let through less than its two records cost; the rest is shortfall.
    expect(drawOf(first, a).chargeable).to.equal(3_000n);
    expect(drawOf(first, a).cost).to.be.greaterThan(3_000n);
    expect(drawOf(first, a).shortfall).to.equal(drawOf(first, a).cost - 3_000n);
    // B and D burned credits for the small model; B paid its large record from its balance.
    expect(drawOf(first, b).creditsBurned).to.be.greaterThan(0n);
    expect(drawOf(first, b).fromBalance).to.be.greaterThan(0n);
    expect(drawOf(first, d).coveredByCredits).to.equal(drawOf(first, d).cost);
    // C had 1,000 for a record dearer than that.
    expect(drawOf(first, c).fromBalance).to.equal(1_000n);
    expect(drawOf(first, c).shortfall).to.equal(drawOf(first, c).cost - 1_000n);
    // E's 2,000 of balance was not enough: the rest came out of its pending withdrawal.
    expect(drawOf(first, e).fromBalance).to.be.greaterThan(2_000n);
    expect(drawOf(first, e).shortfall).to.equal(0n);
    // In its cap's next window, A's credits bought from its balance paid for its small records in the relayed batch.
    expect(drawOf(second, a).coveredByCredits).to.equal(drawOf(second, a).cost);
    expect(clean.ledger.buyers.get(e)!.pendingWithdrawal).to.equal(0n);
  });

  it("reads a batch relayed through a contract from BatchDataPublished and audits it like any other", function () {
    const relayed = clean.batches.find((batch) => batch.txHash === scenario.batches[1].hash)!;
    expect(relayed.source).to.equal("event");
    expect(relayed.records).to.have.length(3);
    expect(relayed.rebuiltCost).to.equal(relayed.totalCost);
    expect(clean.batches.filter((batch) => batch.source === "calldata")).to.have.length(3);
  });

  it("prices each record at the epoch in force when it was served, on both sides of a price change", function () {
    const third = clean.batches[2];
    expect(third.records.map((record) => record.priceEpoch)).to.deep.equal([0, 0, 1, 1]);
    expect(third.records[2].cost).to.be.greaterThan(third.records[0].cost);
    expect(third.rebuiltCost).to.equal(third.totalCost);
  });

  it("sums the report per buyer, provider, model and day to the chain's own totals", function () {
    const report = clean.report;
    const sum = (pick: (batch: ChainAudit["batches"][number]) => bigint) => clean.batches.reduce((total, batch) => total + pick(batch), 0n);
    expect(report.totals.records).to.equal(16);
    expect(report.totals.cost).to.equal(sum((batch) => batch.totalCost));
    expect(report.totals.fromBalance).to.equal(sum((batch) => batch.drawnFromBalance));
    expect(report.totals.shortfall).to.equal(sum((batch) => batch.totalShortfall));
    expect(report.totals.cost).to.equal(report.totals.fromBalance + report.totals.coveredByCredits + report.totals.shortfall);
    for (const rows of [report.buyers, report.providers, report.models, report.days]) {
      expect((rows as { cost: bigint }[]).reduce((total, row) => total + row.cost, 0n)).to.equal(report.totals.cost);
      expect((rows as { coveredByCredits: bigint }[]).reduce((total, row) => total + row.coveredByCredits, 0n)).to.equal(report.totals.coveredByCredits);
    }
    expect(report.models.map((row) => row.name).sort()).to.deep.equal(["large-model", "small-model"]);
    expect(report.days.length).to.be.greaterThanOrEqual(2);
  });

  it("filters what it checks and reports, never what it replays", async function () {
    const { c } = scenario.buyers;
    const forC = await audit(scenario, scenario.history, { buyer: c });
    expect(forC.findings).to.deep.equal([]);
    expect(forC.batches.map((batch) => batch.txHash)).to.deep.equal([scenario.batches[0].hash, scenario.batches[3].hash]);
    expect(forC.report.buyers.map((row) => row.buyer)).to.deep.equal([c]);
    const bySigner = await audit(scenario, scenario.history, { signer: scenario.gateway2.address });
    expect(bySigner.batches.map((batch) => batch.signer)).to.deep.equal([scenario.gateway2.address, scenario.gateway2.address]);
    // The ledger is whole whatever the filter: its balances are those of the unfiltered audit.
    expect(bySigner.ledger.buyers.get(c)!.balance).to.equal(clean.ledger.buyers.get(c)!.balance);
  });

  it("names a batch signed by a key its provider had revoked", async function () {
    const history = copyOf(scenario.history);
    const revocation = history.logs.findIndex((log) => decoded(log, "SignerAuthorizationChanged")?.authorized === false);
    const [revoke] = history.logs.splice(revocation, 1);
    const lastBatch = scenario.batches[3];
    const at = history.logs.findIndex((log) => log.transactionHash === lastBatch.hash);
    // The revocation as if mined in the block before the batch: the batch now follows it.
    history.logs.splice(at, 0, { ...revoke, blockNumber: history.logs[at].blockNumber });
    const result = await audit(scenario, history);
    expect(codes(result), describe_(result)).to.deep.equal(["signer_not_authorized"]);
    const [finding] = only(result, "signer_not_authorized");
    expect(finding.where).to.include({ signer: scenario.gateway2.address, batch: lastBatch.firstSequence, tx: lastBatch.hash });
    expect(finding.message).to.match(/revoked/);
  });

  it("names a record priced at an epoch that was no longer in force when it was served", async function () {
    const history = copyOf(scenario.history);
    const large = Number(scenario.market.largeModel);
    const index = history.logs.findIndex((log) => decoded(log, "PriceScheduled")?.modelId === large && decoded(log, "PriceScheduled")?.epochIndex === 1n);
    // The new price said to start before the record the batch priced at the old one was served.
    history.logs[index] = rewritten(history.logs[index], "PriceScheduled", (args) => ({ ...args, effectiveFrom: BigInt(scenario.beforePriceChange.servedAt - 1) }));
    const result = await audit(scenario, history);
    expect(codes(result), describe_(result)).to.deep.equal(["wrong_price_epoch"]);
    const findings = only(result, "wrong_price_epoch");
    expect(findings.map((finding) => finding.where.sequence)).to.deep.equal([scenario.beforePriceChange.sequence, scenario.beforePriceChange.sequence + 1n]);
    expect(findings[0]).to.include({ expected: 1n, found: 0n });
  });

  it("names a gap in a signer's sequence", async function () {
    const history = copyOf(scenario.history);
    const removed = scenario.batches[1];
    history.logs = history.logs.filter((log) => log.transactionHash !== removed.hash);
    const result = await audit(scenario, history);
    const [gap] = only(result, "sequence_gap");
    expect(gap, describe_(result)).to.not.equal(undefined);
    expect(gap.where).to.include({ signer: scenario.gateway2.address, batch: 3n, tx: scenario.batches[3].hash });
    expect(gap).to.include({ expected: 0n, found: 3n });
    expect(result.ok).to.equal(false);
  });

  it("names a batch settled over sequences already settled", async function () {
    const history = copyOf(scenario.history);
    const replayed = scenario.batches[0];
    const fake = keccak256(toHex("a second transaction settling batch 1 again")) as Hash;
    const last = history.logs[history.logs.length - 1];
    const copies = history.logs
      .filter((log) => log.transactionHash === replayed.hash)
      .map((log) => ({ ...log, transactionHash: fake, blockNumber: last.blockNumber, logIndex: last.logIndex + 1 + log.logIndex }));
    history.logs.push(...copies);
    const settled = copies.find((log) => decoded(log, "BatchSettled"))!;
    history.batches.set(batchKey(settled), scenario.history.batches.get(batchKey(history.logs[settledLogIndex(scenario.history, replayed.hash)]))!);
    const result = await audit(scenario, history);
    const [overlap] = only(result, "sequence_overlap");
    expect(overlap, describe_(result)).to.not.equal(undefined);
    expect(overlap.where).to.include({ signer: scenario.market.gateway.address, batch: 0n, tx: fake });
    expect(overlap).to.include({ expected: 11n, found: 0n });
  });

  it("names a draw and a shortfall the event misreports", async function () {
    const history = copyOf(scenario.history);
    const index = settledLogIndex(history, scenario.batches[0].hash);
    const c = scenario.buyers.c;
    const batch = clean.batches[0];
    const position = batch.draws.findIndex((draw) => draw.buyer === c);
    // buyerResults says C paid one unit more, and fell one unit less short, than the rules give.
    history.logs[index] = rewritten(history.logs[index], "BatchSettled", (args) => {
      const word = (fromBalance: bigint, shortfall: bigint) => toHex((fromBalance << 128n) | shortfall, { size: 32 }).slice(2);
      const results = batch.draws.map((draw, j) => (j === position ? word(draw.fromBalance + 1n, draw.shortfall - 1n) : word(draw.fromBalance, draw.shortfall)));
      return { ...args, buyerResults: `0x${results.join("")}` as Hex };
    });
    const result = await audit(scenario, history);
    expect(codes(result), describe_(result)).to.deep.equal(["draw_mismatch", "shortfall_mismatch"]);
    const [draw] = only(result, "draw_mismatch");
    expect(draw.where).to.include({ buyer: c, batch: 0n, tx: scenario.batches[0].hash });
    expect(draw).to.include({ expected: 1_000n, found: 1_001n });
  });

  it("names a batch whose data it cannot read, and still audits the rest", async function () {
    const history = copyOf(scenario.history);
    const missing = settledLogIndex(history, scenario.batches[2].hash);
    history.batches.set(batchKey(history.logs[missing]), { kind: "unavailable", reason: "no calldata, no BatchDataPublished, no trace (test)" });
    const result = await audit(scenario, history);
    const [unavailable] = only(result, "batch_data_unavailable");
    expect(unavailable, describe_(result)).to.not.equal(undefined);
    expect(unavailable.where).to.include({ signer: scenario.market.gateway.address, batch: scenario.batches[2].firstSequence });
    expect(unavailable.message).to.match(/no calldata, no BatchDataPublished/);
    expect(result.unreadable.map((batch) => batch.txHash)).to.deep.equal([scenario.batches[2].hash]);
    expect(result.batches).to.have.length(3);
    // The balances the batch drew stay unexplained; the rest of the chain still adds up.
    expect(result.ledger.unattributedDraws).to.equal(clean.batches[2].drawnFromBalance);
    expect(result.conservation.conserved).to.equal(true);
    expect(only(result, "balance_mismatch").map((finding) => finding.where.buyer).sort()).to.deep.equal([scenario.buyers.a, scenario.buyers.b].sort());
  });

  it("names a balance that disagrees with the events", async function () {
    const snapshot = await hre.network.provider.send("evm_snapshot", []);
    try {
      const { a } = scenario.buyers;
      // Find A's account slot: keccak256(A . p) for the slot p of the accounts mapping, holding a non-zero word.
      let slot: Hex | undefined;
      let word = 0n;
      for (let p = 0n; p < 64n && !slot; p++) {
        const candidate = keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [a, p]));
        const value = BigInt(await ethers.provider.getStorage(scenario.tollgate, candidate));
        if ((value & ((1n << 112n) - 1n)) === clean.ledger.buyers.get(a)!.balance && value !== 0n) {
          slot = candidate;
          word = value;
        }
      }
      expect(slot, "A's account slot").to.not.equal(undefined);
      await hre.network.provider.send("hardhat_setStorageAt", [scenario.tollgate, slot, toHex(word + 7n, { size: 32 })]);
      await hre.network.provider.send("hardhat_mine", ["0x1"]);
      const result = await audit(scenario, await load(scenario));
      expect(codes(result), describe_(result)).to.deep.equal(["balance_mismatch", "not_conserved"]);
      const [balance] = only(result, "balance_mismatch");
      expect(balance.where.buyer).to.equal(a);
      expect(balance).to.include({ expected: clean.ledger.buyers.get(a)!.balance, found: clean.ledger.buyers.get(a)!.balance + 7n });
    } finally {
      await hre.network.provider.send("evm_revert", [snapshot]);
    }
  });

  it("replays provider bonds, a proven fraud's penalty into its award bucket, and its claim, checking them against bondOf and disputeAwardOf", async function () {
    const snapshot = await hre.network.provider.send("evm_snapshot", []);
    try {
      const { market } = scenario;
      const providerId = Number(market.providerId);
      const seller = market.clientOf(getAddress(market.provider.address));
      await mintTestTokens(seller, { amount: USD(1_000) });
      await postBond(seller, { providerId, amount: USD(1_000) });
      await requestBondWithdrawal(seller, { providerId, amount: USD(400) });
      // The gateway key signs two different receipts for sequence 0: an equivocation anyone can prove.
      const { d } = scenario.buyers;
      const servedAt = (await ethers.provider.getBlock("latest"))!.timestamp - 10;
      const receipt: UsageReceipt = {
        sequence: 0n, buyer: d, modelId: Number(market.smallModel), inputTokens: 100, cachedInputTokens: 0, outputTokens: 10, servedAt,
        inputPrice: 0n, cachedInputPrice: 0n, outputPrice: 0n, cost: 0n, contentHash: keccak256(toHex("one response")),
      };
      const envelope = async (r: UsageReceipt): Promise<ReceiptEnvelope> => ({
        domain: { name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, chainId: Number(market.chainId), verifyingContract: scenario.tollgate },
        signer: market.gateway.address,
        primaryType: "UsageReceipt",
        receipt: receiptToWire(r),
        receiptHash: hashReceipt(r),
        signature: await signUsageReceipt(market.gateway, { chainId: market.chainId, address: scenario.tollgate }, r),
        content: { salt: zeroHash, requestHash: zeroHash, responseHash: zeroHash },
        model: "small",
        reasoningTokens: 0,
        countSource: "upstream",
      });
      const proven = await proveEquivocation(market.clientOf(d), {
        first: await envelope(receipt),
        second: await envelope({ ...receipt, contentHash: keccak256(toHex("another response")) }),
      });
      expect(proven.penalty).to.be.greaterThan(0n);

      const history = await load(scenario);
      const result = await audit(scenario, history);
      expect(result.findings, describe_(result)).to.deep.equal([]);
      const bond = result.ledger.providers.get(providerId)!.bond;
      // The penalty comes out of the available bond first; the requested withdrawal stays pending.
      expect([bond.available, bond.pending]).to.deep.equal([USD(600) - proven.penalty, USD(400)]);
      expect(result.conservation.bonds).to.equal(USD(1_000) - proven.penalty);
      // The penalty waits in d's award bucket, not its balance, and counts in conservation there.
      expect(result.ledger.buyers.get(d)?.balance ?? 0n).to.equal(clean.ledger.buyers.get(d)?.balance ?? 0n);
      const [awarded] = proven.awards;
      expect(result.ledger.awards.get(d)).to.deep.equal({ amount: proven.penalty, claimableAt: awarded.claimableAt });
      expect(result.conservation.disputeAwards).to.equal(proven.penalty);

      // A bond the contract reports otherwise than its events is named.
      const real = rpcStateReader(market.clientOf(market.owner.address as Address).public, history);
      const lying: ChainStateReader = { ...real, bond: async (id) => ({ ...(await real.bond!(id)), available: bond.available - 1n }) };
      const wrong = await auditChain(history, lying);
      expect(codes(wrong), describe_(wrong)).to.deep.include("bond_mismatch");
      expect(only(wrong, "bond_mismatch")[0]).to.include({ expected: bond.available, found: bond.available - 1n });
      // So is an award bucket that disagrees.
      const lyingAward: ChainStateReader = { ...real, disputeAward: async (who) => ({ ...(await real.disputeAward!(who)), claimableAt: awarded.claimableAt + 1n }) };
      const wrongAward = await auditChain(history, lyingAward);
      expect(only(wrongAward, "award_mismatch"), describe_(wrongAward)).to.have.length(1);
      expect(only(wrongAward, "award_mismatch")[0]).to.include({ expected: awarded.claimableAt, found: awarded.claimableAt + 1n });

      // After BOND_WITHDRAWAL_DELAY, d claims: the tokens leave the vault to d's wallet, matched by DisputeAwardClaimed.
      await time.increaseTo(awarded.claimableAt);
      const claimed = await claimDisputeAwards(market.clientOf(d));
      expect(claimed.amount).to.equal(proven.penalty);
      const after = await audit(scenario, await load(scenario));
      expect(after.findings, describe_(after)).to.deep.equal([]);
      expect(after.ledger.awards.has(d)).to.equal(false);
      expect(after.conservation.disputeAwards).to.equal(0n);
      expect(after.conservation.vaultTokens).to.equal(result.conservation.vaultTokens - proven.penalty);
    } finally {
      await hre.network.provider.send("evm_revert", [snapshot]);
    }
  });

  it("names tokens sent to the vault that no deposit accounts for", async function () {
    const snapshot = await hre.network.provider.send("evm_snapshot", []);
    try {
      const [donor] = scenario.market.others;
      await scenario.market.token.connect(scenario.market.owner).mint(donor.address, 5n);
      const sent = await (await scenario.market.token.connect(donor).transfer(scenario.tollgate, 5n)).wait();
      const result = await audit(scenario, await load(scenario));
      expect(codes(result), describe_(result)).to.deep.equal(["not_conserved", "unmatched_token_transfer"]);
      expect(only(result, "unmatched_token_transfer")[0]).to.deep.include({ found: 5n, where: { tx: sent!.hash, block: BigInt(sent!.blockNumber), logIndex: 0 } });
      expect(result.conservation.vaultTokens).to.equal(result.conservation.owed + 5n);
    } finally {
      await hre.network.provider.send("evm_revert", [snapshot]);
    }
  });

  it("names a batch signature that does not recover to the signer the event names", async function () {
    const history = copyOf(scenario.history);
    const key = batchKey(history.logs[settledLogIndex(history, scenario.batches[2].hash)]);
    const source = history.batches.get(key)!;
    if (source.kind === "unavailable") throw new Error("batch 3 was read");
    // The same batch, signed by a key no provider ever authorized.
    const stranger = privateKeyToAccount(generatePrivateKey());
    const forged = await signUsageBatch(stranger, { chainId: scenario.market.chainId, address: scenario.tollgate }, source.batch);
    history.batches.set(key, { ...source, signature: forged });
    const result = await audit(scenario, history);
    expect(codes(result), describe_(result)).to.deep.equal(["bad_batch_signature"]);
    expect(only(result, "bad_batch_signature")[0]).to.include({ expected: scenario.market.gateway.address, found: stranger.address });
  });

  it("names batch data that does not hash to the commitment, and does not replay it", async function () {
    const history = copyOf(scenario.history);
    const key = batchKey(history.logs[settledLogIndex(history, scenario.batches[0].hash)]);
    const source = history.batches.get(key)!;
    if (source.kind === "unavailable") throw new Error("batch 1 was read");
    // One more output token on the first record than was signed and settled.
    const records = source.batch.records;
    const output = { from: 2 + 11 * 2, to: 2 + 15 * 2 }; // bytes 11-14 of the record, after "0x"
    const altered = `${records.slice(0, output.from)}${(parseInt(records.slice(output.from, output.to), 16) + 1).toString(16).padStart(8, "0")}${records.slice(output.to)}` as Hex;
    history.batches.set(key, { ...source, batch: { ...source.batch, records: altered } });
    const result = await audit(scenario, history);
    const [mismatch] = only(result, "commitment_mismatch");
    expect(mismatch, describe_(result)).to.not.equal(undefined);
    expect(mismatch.where).to.include({ tx: scenario.batches[0].hash, batch: 0n });
    expect(result.unreadable.map((batch) => batch.txHash)).to.deep.equal([scenario.batches[0].hash]);
    // The altered data is not replayed: nothing in that batch is blamed on its buyers.
    expect(result.findings.filter((finding) => finding.where.tx === scenario.batches[0].hash).map((finding) => finding.code)).to.deep.equal(["commitment_mismatch"]);
  });
});
