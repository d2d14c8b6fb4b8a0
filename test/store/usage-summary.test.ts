/**
 * The usage summary over the store (issue 13): totals that agree to the unit with the records (costs beyond
 * int64 included), grouping by each dimension and by several, the half-open range, tags counted under each,
 * filters, the retry tail and first-try success on a crafted set of runs, outcomes priced with failed runs
 * included, and outcomes refused (unknown trace, another buyer's, a repeat) without a write.
 */
import { expect } from "chai";
import type { Address } from "viem";
import type { CallAttribution } from "../../server/store/call-attribution";
import { costPer, ratio, type UsageStore, type UsageRecordInput } from "../../server/store/usage-store";
import { ALICE, BOB, closeStores, removeTempDirs, sign, storeWithKeys, usage } from "../helpers/store-fixtures";

/** 2026-01-31T00:00:00Z: the last day of a month, so day and month groups both split. */
const JAN_31 = 1_769_817_600;
const FEB_1 = JAN_31 + 86_400;
/** 10^30 base units: an amount an 18-decimal token reaches and int64 cannot hold. */
const HUGE = 10n ** 30n;

const ALICE_TAGS = ["team:search", "workflow:nightly"];

function append(store: UsageStore, fields: Partial<UsageRecordInput>, attribution?: CallAttribution) {
  const [outcome] = store.appendRecords([{ input: usage(fields), sign, attribution }]);
  if ("error" in outcome) throw outcome.error;
  return outcome.record;
}

function sumOf(store: UsageStore, buyer: Address, filter: Parameters<UsageStore["recordsOf"]>[1] = {}): bigint {
  return store.recordsOf(buyer, filter).reduce((total, record) => total + record.cost, 0n);
}

describe("usage summary (store)", function () {
  afterEach(() => closeStores());
  after(() => removeTempDirs());

  /** Five of Alice's calls over two keys, two models, two days across a month's end; one of Bob's. */
  function market(): UsageStore {
    const store = storeWithKeys();
    append(store, { servedAt: JAN_31, cost: HUGE, inputTokens: 100, cachedInputTokens: 10, outputTokens: 7, tags: ALICE_TAGS }, { traceId: "run-1" });
    append(store, { servedAt: JAN_31 + 3_600, cost: HUGE + 1n, inputTokens: 200, cachedInputTokens: 0, outputTokens: 9, tags: ALICE_TAGS, modelName: "big-chat" }, { traceId: "run-1", step: "b" });
    append(store, { servedAt: FEB_1, cost: 5n, inputTokens: 30, cachedInputTokens: 3, outputTokens: 1, tags: ALICE_TAGS });
    append(store, { servedAt: FEB_1 + 60, cost: 7n, inputTokens: 40, cachedInputTokens: 4, outputTokens: 2, keyId: "key-alice-2", tags: ["team:ads"] });
    append(store, { servedAt: FEB_1 + 120, cost: 11n, inputTokens: 50, cachedInputTokens: 5, outputTokens: 3, keyId: "key-alice-2", tags: [] });
    append(store, { servedAt: JAN_31, cost: 1_000n, buyer: BOB, keyId: "key-bob", tags: ["team:search"] }, { traceId: "run-1" });
    return store;
  }

  it("totals agree to the unit with the records, beyond int64, and count each call once", function () {
    const store = market();
    const { total, groups } = store.usageSummary(ALICE, []);
    expect(total).to.deep.equal({ calls: 5, inputTokens: 420, cachedInputTokens: 22, outputTokens: 22, cost: 2n * HUGE + 24n });
    expect(total.cost).to.equal(sumOf(store, ALICE));
    expect(groups).to.deep.equal([{ key: {}, totals: total }]);
  });

  it("groups by key, model, trace, day and month, each group's figures its records' own", function () {
    const store = market();
    const costs = (dimension: Parameters<UsageStore["usageSummary"]>[1][number]) =>
      store.usageSummary(ALICE, [dimension]).groups.map((g) => [g.key[dimension], g.totals.calls, g.totals.cost]);
    expect(costs("key")).to.deep.equal([
      ["key-alice", 3, 2n * HUGE + 6n],
      ["key-alice-2", 2, 18n],
    ]);
    expect(costs("model")).to.deep.equal([
      ["big-chat", 1, HUGE + 1n],
      ["tiny-chat", 4, HUGE + 23n],
    ]);
    // Calls without a trace form their own group (null), listed last.
    expect(costs("trace")).to.deep.equal([
      ["run-1", 2, 2n * HUGE + 1n],
      [null, 3, 23n],
    ]);
    expect(costs("day")).to.deep.equal([
      ["2026-01-31", 2, 2n * HUGE + 1n],
      ["2026-02-01", 3, 23n],
    ]);
    expect(costs("month")).to.deep.equal([
      ["2026-01", 2, 2n * HUGE + 1n],
      ["2026-02", 3, 23n],
    ]);
    const byKeyDay = store.usageSummary(ALICE, ["key", "day"]).groups;
    expect(byKeyDay.map((g) => [g.key.key, g.key.day, g.totals.inputTokens, g.totals.cachedInputTokens, g.totals.outputTokens])).to.deep.equal([
      ["key-alice", "2026-01-31", 300, 10, 16],
      ["key-alice", "2026-02-01", 30, 3, 1],
      ["key-alice-2", "2026-02-01", 90, 9, 5],
    ]);
  });

  it("counts a call with several tags once under each tag, says how many, and keeps the total counted once", function () {
    const store = market();
    const summary = store.usageSummary(ALICE, ["tag"]);
    expect(summary.groups.map((g) => [g.key.tag, g.totals.calls, g.totals.cost])).to.deep.equal([
      ["team:ads", 1, 7n],
      ["team:search", 3, 2n * HUGE + 6n],
      ["workflow:nightly", 3, 2n * HUGE + 6n],
      [null, 1, 11n],
    ]);
    expect(summary.recordsInSeveralGroups).to.equal(3);
    const groupSum = summary.groups.reduce((sum, g) => sum + g.totals.cost, 0n);
    expect(groupSum).to.equal(summary.total.cost + 2n * HUGE + 6n);
    expect(summary.total.cost).to.equal(sumOf(store, ALICE));
    expect(store.usageSummary(ALICE, ["key", "model"]).recordsInSeveralGroups).to.equal(0);
  });

  it("covers [from, to): a call served exactly at `to` belongs to the next period", function () {
    const store = market();
    const january = store.usageSummary(ALICE, [], { from: JAN_31, to: FEB_1 });
    expect(january.total.calls).to.equal(2);
    expect(january.total.cost).to.equal(sumOf(store, ALICE, { from: JAN_31, to: FEB_1 }));
    const february = store.usageSummary(ALICE, [], { from: FEB_1 });
    expect(february.total.calls).to.equal(3);
    expect(january.total.cost + february.total.cost).to.equal(store.usageSummary(ALICE, []).total.cost);
    expect(store.usageSummary(ALICE, [], { from: FEB_1 + 60, to: FEB_1 + 120 }).total).to.include({ calls: 1, cost: 7n });
  });

  it("filters by key, tag and model like the usage export", function () {
    const store = market();
    expect(store.usageSummary(ALICE, [], { keyId: "key-alice-2" }).total).to.include({ calls: 2, cost: 18n });
    expect(store.usageSummary(ALICE, [], { tag: "team:ads" }).total).to.include({ calls: 1, cost: 7n });
    expect(store.usageSummary(ALICE, [], { modelName: "big-chat" }).total).to.include({ calls: 1, cost: HUGE + 1n });
    for (const filter of [{ keyId: "key-alice" }, { tag: "team:search" }, { modelName: "tiny-chat" }]) {
      expect(store.usageSummary(ALICE, [], filter).total.cost).to.equal(sumOf(store, ALICE, filter));
    }
  });

  it("shows another buyer none of it: Bob's summary is his one call, though he used the same trace id", function () {
    const store = market();
    const bob = store.usageSummary(BOB, ["trace", "key"]);
    expect(bob.total).to.include({ calls: 1, cost: 1_000n });
    expect(bob.groups.map((g) => [g.key.trace, g.key.key])).to.deep.equal([["run-1", "key-bob"]]);
    expect(store.workflowCosts(BOB).map((w) => [w.workflow, w.cost])).to.deep.equal([["key:key-bob", 1_000n]]);
  });

  describe("retry tail and outcomes per workflow", function () {
    /**
     * workflow:nightly (key-alice): run-ok succeeds first try; run-retried succeeds after a retry of its step;
     * run-failed reports failure; run-silent reports nothing; one call belongs to no run. key-alice-2 has no
     * workflow tag: its run counts under the key.
     */
    function runs(): UsageStore {
      const store = storeWithKeys();
      const call = (cost: bigint, attribution?: CallAttribution, keyId = "key-alice") =>
        append(store, { cost, servedAt: JAN_31, keyId, tags: keyId === "key-alice" ? ALICE_TAGS : ["team:ads"] }, attribution);
      call(100n, { traceId: "run-ok", step: "classify" });
      call(200n, { traceId: "run-ok", step: "reply" });
      call(300n, { traceId: "run-retried", step: "classify" });
      const retry = call(300n, { traceId: "run-retried", step: "classify" });
      expect(typeof retry.attribution?.retryOf, "the store marks the repeated step a retry").to.equal("bigint");
      call(400n, { traceId: "run-failed", step: "classify" });
      call(50n, { traceId: "run-silent" });
      call(1_000n);
      call(70n, { traceId: "run-other-key" }, "key-alice-2");
      const outcome = (traceId: string, type: string, success: boolean, recordedAt = FEB_1) => {
        const result = store.recordOutcome({ buyer: ALICE, traceId, type, success, value: null, keyId: "key-alice", recordedAt });
        expect(result, `${traceId} ${type}`).to.have.property("outcome");
      };
      outcome("run-ok", "ticket_resolved", true, JAN_31);
      outcome("run-retried", "ticket_resolved", true);
      outcome("run-failed", "ticket_resolved", false);
      outcome("run-ok", "reply_sent", true);
      outcome("run-other-key", "ticket_resolved", true);
      return store;
    }

    it("gives the retries' cost and share, first-try success rate and cost per completed run, failed runs included", function () {
      const store = runs();
      const [other, nightly] = store.workflowCosts(ALICE);
      expect(nightly).to.deep.include({
        workflow: "workflow:nightly",
        calls: 7,
        cost: 2_350n,
        retryCalls: 1,
        retryCost: 300n,
        runs: 4,
        runsCost: 1_350n,
        successfulRuns: 2,
        firstTrySuccesses: 1,
      });
      expect(ratio(nightly.retryCost, nightly.cost)).to.equal("0.1277");
      expect(ratio(nightly.firstTrySuccesses, nightly.runs)).to.equal("0.2500");
      // (100 + 200) + (300 + 300) + 400 + 50, over the two runs that succeeded.
      expect(costPer(nightly.runsCost, nightly.successfulRuns)).to.equal(675n);
      expect(other).to.deep.include({ workflow: "key:key-alice-2", calls: 1, cost: 70n, retryCalls: 0, runs: 1, successfulRuns: 1, firstTrySuccesses: 1 });
    });

    it("prices each outcome type with its failed runs, and by the day it was recorded", function () {
      const store = runs();
      const nightly = store.workflowCosts(ALICE).find((w) => w.workflow === "workflow:nightly")!;
      const [replies, tickets] = nightly.outcomes;
      expect(replies).to.deep.include({ type: "reply_sent", outcomes: 1, successes: 1, failures: 0, cost: 300n });
      expect(tickets).to.deep.include({ type: "ticket_resolved", outcomes: 3, successes: 2, failures: 1, cost: 1_300n });
      expect(costPer(tickets.cost, tickets.successes)).to.equal(650n);
      expect(costPer(tickets.cost, tickets.outcomes)).to.equal(433n);
      expect(tickets.byDay).to.deep.equal([
        { day: "2026-01-31", outcomes: 1, successes: 1, failures: 0, cost: 300n },
        { day: "2026-02-01", outcomes: 2, successes: 1, failures: 1, cost: 1_000n },
      ]);
    });

    it("reads the summary and the workflows in one go that agree: the workflows' calls and cost are the total's", function () {
      const store = runs();
      const { summary, workflows } = store.usageReport(ALICE, ["key"]);
      expect(summary).to.deep.equal(store.usageSummary(ALICE, ["key"]));
      expect(workflows).to.deep.equal(store.workflowCosts(ALICE));
      // No key here has two workflow tags, so the workflows partition the calls.
      expect(workflows.reduce((sum, w) => sum + w.cost, 0n)).to.equal(summary.total.cost);
      expect(workflows.reduce((sum, w) => sum + w.calls, 0)).to.equal(summary.total.calls);
    });

    it("refuses an outcome for an unknown trace, another buyer's trace, or a repeat, writing nothing", function () {
      const store = runs();
      append(store, { cost: 9n, buyer: BOB, keyId: "key-bob", tags: ["team:search"] }, { traceId: "bob-run" });
      const before = store.outcomeCount();
      const post = (buyer: Address, traceId: string, type = "ticket_resolved") =>
        store.recordOutcome({ buyer, traceId, type, success: true, value: "1.5", keyId: "k", recordedAt: FEB_1 });
      expect(post(ALICE, "no-such-run")).to.deep.equal({ refused: "unknown_trace" });
      expect(post(ALICE, "bob-run")).to.deep.equal({ refused: "unknown_trace" });
      expect(post(BOB, "run-ok")).to.deep.equal({ refused: "unknown_trace" });
      expect(post(ALICE, "run-ok")).to.deep.equal({ refused: "duplicate" });
      expect(store.outcomeCount()).to.equal(before);
      const recorded = post(BOB, "bob-run");
      expect(recorded).to.have.nested.property("outcome.value", "1.5");
      expect(store.outcomesOf(BOB).map((o) => [o.traceId, o.type, o.success])).to.deep.equal([["bob-run", "ticket_resolved", true]]);
    });
  });

  it("rounds per-unit costs half up in base units and ratios to four places, and has none for zero", function () {
    expect(costPer(10n, 4)).to.equal(3n);
    expect(costPer(10n, 3)).to.equal(3n);
    expect(costPer(11n, 2)).to.equal(6n);
    expect(costPer(5n, 0)).to.be.null;
    expect(ratio(1, 3)).to.equal("0.3333");
    expect(ratio(2, 3)).to.equal("0.6667");
    expect(ratio(3, 3)).to.equal("1.0000");
    expect(ratio(HUGE, HUGE * 8n)).to.equal("0.1250");
    expect(ratio(1, 0)).to.equal(null);
  });
});
