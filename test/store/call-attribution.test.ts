/**
 * The store's side of call attribution (issue 13): a call's trace, step, user, metadata and idempotency key
 * are written in the record's own savepoint, and a retry points at the first try even when both finish in the
 * same group commit; a record the store refuses leaves no attribution behind.
 */
import { expect } from "chai";
import { keccak256, toHex } from "viem";
import { ALICE, BOB, closeStores, removeTempDirs, sign, storeWithKeys, tempDb, usage } from "../helpers/store-fixtures";

describe("usage store: call attribution", function () {
  afterEach(closeStores);
  after(removeTempDirs);

  const attributionRows = (store: ReturnType<typeof storeWithKeys>, buyer = ALICE) => store.recordsOf(buyer).map((r) => [r.sequence, r.attribution?.retryOf ?? null]);

  it("points a retry at the first try when both are written in one group, and by idempotency key across traces", function () {
    const store = storeWithKeys(tempDb());
    const sameRequest = keccak256(toHex("the same request"));
    const outcomes = store.appendRecords([
      { input: usage({ requestHash: sameRequest }), sign, attribution: { traceId: "run-1", step: "classify" } },
      { input: usage({ requestHash: sameRequest }), sign, attribution: { traceId: "run-1", step: "classify" } },
      { input: usage(), sign, attribution: { traceId: "run-1", step: "classify" } },
      { input: usage(), sign, attribution: { traceId: "run-1", step: "reply" } },
      { input: usage({ requestHash: sameRequest }), sign, attribution: { traceId: "run-2" } },
      { input: usage(), sign, attribution: { idempotencyKey: "job-9" } },
      { input: usage(), sign, attribution: { traceId: "run-3", idempotencyKey: "job-9" } },
      { input: usage(), sign },
    ]);
    expect(outcomes.every((o) => "record" in o)).to.equal(true);
    expect(attributionRows(store)).to.deep.equal([
      [0n, null],
      [1n, 0n], // the same bytes in the same trace
      [2n, 0n], // the same step in the same trace
      [3n, null], // another step
      [4n, null], // the same bytes in another trace
      [5n, null],
      [6n, 5n], // the same idempotency key, whatever the trace
      [7n, null], // no attribution at all: no row, so undefined
    ]);
    expect(store.recordsOf(ALICE)[7].attribution).to.equal(undefined);
    expect(store.recordsOf(ALICE, { traceId: "run-1" }).map((r) => r.sequence)).to.deep.equal([0n, 1n, 2n, 3n]);
  });

  it("keeps one buyer's traces and idempotency keys apart from another's", function () {
    const store = storeWithKeys(tempDb());
    store.appendRecords([
      { input: usage(), sign, attribution: { traceId: "shared", step: "a", idempotencyKey: "k" } },
      { input: usage({ keyId: "key-bob", buyer: BOB }), sign, attribution: { traceId: "shared", step: "a", idempotencyKey: "k" } },
    ]);
    expect(store.recordsOf(BOB)[0].attribution).to.deep.include({ traceId: "shared", retryOf: null });
    expect(store.recordsOf(ALICE, { traceId: "shared" })).to.have.length(1);
  });

  it("writes no attribution for a record the store refuses, and the next call is a first try", function () {
    const store = storeWithKeys(tempDb());
    const outcomes = store.appendRecords([
      // Refused: the key belongs to Alice, the record names Bob.
      { input: usage({ buyer: BOB }), sign, attribution: { traceId: "run-9", step: "s" } },
      { input: usage(), sign, attribution: { traceId: "run-9", step: "s" } },
    ]);
    expect("error" in outcomes[0]).to.equal(true);
    expect(store.recordsOf(ALICE).map((r) => [r.sequence, r.attribution?.retryOf])).to.deep.equal([[0n, null]]);
  });
});
