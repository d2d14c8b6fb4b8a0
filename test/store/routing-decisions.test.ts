/**
 * Routing decisions beside the usage records (migration 6): written in the record's own savepoint, read back
 * with the buyer's records, and summed into what routing saved as exact bigints.
 */
import { expect } from "chai";
import { ALICE, BOB, closeStores, removeTempDirs, sign, storeWithKeys, usage } from "../helpers/store-fixtures";
import type { RoutingDecision } from "../../server/store/usage-store";

const decision = (overrides: Partial<RoutingDecision> = {}): RoutingDecision => ({
  alias: "auto",
  reason: "default",
  dearestModel: "large-chat",
  dearestCost: 5_000n,
  fallbacks: 0,
  ...overrides,
});

describe("usage store: routing decisions and savings", function () {
  afterEach(() => {
    closeStores();
    removeTempDirs();
  });

  it("keeps a routed record's decision and reads it back with the record; a record that names its model has none", function () {
    const store = storeWithKeys();
    const [routed, named] = store.appendRecords([
      { input: usage({ cost: 1_000n }), sign, routing: decision({ reason: "tools", fallbacks: 1 }) },
      { input: usage({ cost: 2_000n }), sign },
    ]);
    expect("record" in routed && routed.record.routing).to.deep.equal(decision({ reason: "tools", fallbacks: 1 }));
    const records = store.recordsOf(ALICE);
    expect(records.map((record) => record.routing)).to.deep.equal([decision({ reason: "tools", fallbacks: 1 }), undefined]);
    expect("record" in named).to.equal(true);
  });

  it("writes a decision only with its record: a refused record leaves no decision and takes no sequence, and a bad decision refuses its record", function () {
    const store = storeWithKeys();
    const outcomes = store.appendRecords([
      // Bob's key on Alice's record: the store refuses the record, and its decision with it.
      { input: usage({ keyId: "key-bob" }), sign, routing: decision() },
      { input: usage(), sign, routing: decision({ fallbacks: -1 }) },
      { input: usage(), sign, routing: decision({ dearestCost: -1n }) },
      { input: usage({ cost: 700n }), sign, routing: decision({ dearestCost: 900n }) },
    ]);
    expect(outcomes.map((outcome) => "error" in outcome)).to.deep.equal([true, true, true, false]);
    expect(String((outcomes[1] as { error: Error }).error.message)).to.include("fallbacks must be a non-negative integer");
    expect(store.recordCount()).to.equal(1);
    expect(store.nextSequence()).to.equal(1n);
    expect(store.routingSavings(ALICE)).to.deep.equal({ routedCalls: 1n, cost: 700n, dearestCost: 900n, saved: 200n });
  });

  it("sums savings per buyer over a half-open period as exact integers, past what a float or an int64 holds", function () {
    const store = storeWithKeys();
    const huge = 2n ** 70n + 1n;
    store.appendRecords([
      { input: usage({ servedAt: 100, cost: huge }), sign, routing: decision({ dearestCost: huge * 3n }) },
      { input: usage({ servedAt: 200, cost: 3n }), sign, routing: decision({ dearestCost: 10n }) },
      { input: usage({ servedAt: 300, cost: 5n }), sign, routing: decision({ dearestCost: 5n }) },
      { input: usage({ servedAt: 200, cost: 1_000n }), sign },
      { input: usage({ servedAt: 200, buyer: BOB, keyId: "key-bob", cost: 1n }), sign, routing: decision({ dearestCost: 99n }) },
    ]);
    expect(store.routingSavings(ALICE)).to.deep.equal({ routedCalls: 3n, cost: huge + 8n, dearestCost: huge * 3n + 15n, saved: huge * 2n + 7n });
    expect(store.routingSavings(ALICE, 200, 300)).to.deep.equal({ routedCalls: 1n, cost: 3n, dearestCost: 10n, saved: 7n });
    expect(store.routingSavings(ALICE, 301)).to.deep.equal({ routedCalls: 0n, cost: 0n, dearestCost: 0n, saved: 0n });
    expect(store.routingSavings(BOB)).to.deep.equal({ routedCalls: 1n, cost: 1n, dearestCost: 99n, saved: 98n });
  });
});
