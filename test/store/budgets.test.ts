/**
 * Budgets in the usage store: the UTC calendar periods they count over, and their spend moved in each
 * record's own savepoint, so a record that rolls back counts nowhere, a restart starts from what was
 * committed, and each threshold crossing is one alert per period.
 */
import { expect } from "chai";
import { periodEnd, periodStart } from "../../server/store/budget-periods";
import { BudgetExistsError, type UsageStore } from "../../server/store/usage-store";
import { ALICE, budget, closeStores, open, removeTempDirs, sign, storeWithKeys, tempDb, usage } from "../helpers/store-fixtures";

const at = (iso: string) => Date.parse(iso) / 1000;
/** 2023-11-14T22:13:20Z, a Tuesday: the fixtures' servedAt. */
const SERVED = 1_700_000_000;

const append = (store: UsageStore, overrides: Parameters<typeof usage>[0] = {}, traceId?: string) =>
  store.appendRecords([{ input: usage(overrides), sign, attribution: traceId ? { traceId } : undefined }]);

describe("budget periods (UTC calendar)", function () {
  it("days start at 00:00 UTC, weeks on Monday, months on the 1st; the end is the next start", function () {
    // 2026-12-06 is a Sunday: its week began on Monday 2026-11-30.
    expect(periodStart("day", at("2026-12-06T17:53:27Z"))).to.equal(at("2026-12-06T00:00:00Z"));
    expect(periodEnd("day", at("2026-12-06T17:53:27Z"))).to.equal(at("2026-12-07T00:00:00Z"));
    expect(periodStart("week", at("2026-12-06T23:59:59Z"))).to.equal(at("2026-11-30T00:00:00Z"));
    expect(periodStart("week", at("2026-12-07T00:00:00Z"))).to.equal(at("2026-12-07T00:00:00Z"));
    expect(periodEnd("week", at("2026-11-30T00:00:00Z"))).to.equal(at("2026-12-07T00:00:00Z"));
    expect(periodStart("month", at("2026-12-31T23:59:59Z"))).to.equal(at("2026-12-01T00:00:00Z"));
    expect(periodEnd("month", at("2026-12-31T23:59:59Z"))).to.equal(at("2027-01-01T00:00:00Z"));
    expect(periodEnd("month", at("2028-02-29T12:00:00Z"))).to.equal(at("2028-03-01T00:00:00Z"));
    expect(periodStart("month", at("2027-01-01T00:00:00Z"))).to.equal(at("2027-01-01T00:00:00Z"));
  });
});

describe("usage store: budgets", function () {
  afterEach(() => {
    closeStores();
    removeTempDirs();
  });

  it("charges a record to every budget of its tags and its trace in its own savepoint; a record that rolls back counts nowhere", function () {
    const store = storeWithKeys();
    store.createBudget(budget(), SERVED);
    store.createBudget(budget({ id: "bud_trace", scope: "trace", target: "run-1" }), SERVED);
    store.createBudget(budget({ id: "bud_ads", target: "team:ads" }), SERVED);
    const start = periodStart("day", SERVED);

    const outcomes = store.appendRecords([
      { input: usage({ cost: 1_000n }), sign, attribution: { traceId: "run-1" } },
      // Refused in its savepoint: no such key.
      { input: usage({ cost: 5_000n, keyId: "key-nobody" }), sign, attribution: { traceId: "run-1" } },
      { input: usage({ cost: 2_000n }), sign },
    ]);
    expect(outcomes.map((outcome) => "record" in outcome)).to.deep.equal([true, false, true]);
    expect(store.budgetSpent("bud_search", start)).to.equal(3_000n);
    expect(store.budgetSpent("bud_trace", start)).to.equal(1_000n);
    expect(store.budgetSpent("bud_ads", start)).to.equal(0n);
    // A key that repeats a tag counts once.
    append(store, { cost: 500n, tags: ["team:search", "team:search"] });
    expect(store.budgetSpent("bud_search", start)).to.equal(3_500n);
  });

  it("a new budget counts its current period's earlier records; the same scope, target and period twice is refused", function () {
    const file = tempDb();
    const store = storeWithKeys(file);
    append(store, { cost: 700n, servedAt: SERVED - 86_400 }); // yesterday: not this day's
    append(store, { cost: 1_200n });
    append(store, { cost: 300n }, "run-9");
    expect(store.createBudget(budget(), SERVED)).to.deep.equal({ periodStart: periodStart("day", SERVED), spent: 1_500n });
    expect(store.createBudget(budget({ id: "bud_run9", scope: "trace", target: "run-9", period: "month" }), SERVED).spent).to.equal(300n);
    expect(() => store.createBudget(budget({ id: "bud_again" }), SERVED)).to.throw(BudgetExistsError, "bud_search");
    expect(store.listBudgets(ALICE).map((b) => b.id)).to.deep.equal(["bud_search", "bud_run9"]);
  });

  it("survives a restart, starts a new period from zero, writes one alert per threshold per period, and stops counting once deleted", function () {
    const file = tempDb();
    let store = storeWithKeys(file);
    store.createBudget(budget(), SERVED);
    append(store, { cost: 4_000n });
    append(store, { cost: 1_000n }); // 50% crossed by this record
    append(store, { cost: 1_000n });
    const due = store.dueBudgetAlerts(Date.now());
    expect(due.map((alert) => [alert.thresholdBps, alert.spent, alert.sequence])).to.deep.equal([[5_000, 5_000n, 1n]]);
    expect(due[0].periodEnd).to.equal(periodEnd("day", SERVED));
    store.budgetAlertDelivered(due[0].id);

    store.close();
    store = open(file, 0n);
    const start = periodStart("day", SERVED);
    expect(store.budgetSpent("bud_search", start)).to.equal(6_000n);
    expect(store.dueBudgetAlerts(Date.now())).to.deep.equal([]);
    append(store, { cost: 4_000n }); // 100%
    expect(store.dueBudgetAlerts(Date.now()).map((alert) => alert.thresholdBps)).to.deep.equal([10_000]);

    // The next day: spend from zero, and the 50% alert again, for that day.
    const tomorrow = SERVED + 86_400;
    append(store, { cost: 6_000n, servedAt: tomorrow });
    expect(store.budgetSpent("bud_search", periodStart("day", tomorrow))).to.equal(6_000n);
    expect(store.budgetSpent("bud_search", start)).to.equal(0n); // memory holds the latest period only
    expect(store.dueBudgetAlerts(Date.now()).map((alert) => [alert.thresholdBps, alert.periodStart])).to.deep.equal([
      [10_000, start],
      [5_000, periodStart("day", tomorrow)],
    ]);

    // A failed attempt waits for its retry time.
    const [first] = store.dueBudgetAlerts(Date.now());
    store.budgetAlertFailed(first.id, 1, "HTTP 500", { nextAttemptAtMs: Date.now() + 60_000 });
    expect(store.dueBudgetAlerts(Date.now()).map((alert) => alert.id)).to.not.include(first.id);
    expect(store.dueBudgetAlerts(Date.now() + 61_000).find((alert) => alert.id === first.id)?.attempts).to.equal(1);

    expect(store.deleteBudget(ALICE, "bud_search", tomorrow)).to.equal(true);
    expect(store.deleteBudget(ALICE, "bud_search", tomorrow)).to.equal(false);
    expect(store.applicableBudgets(ALICE, ["team:search"], undefined)).to.deep.equal([]);
    append(store, { cost: 1_000n, servedAt: tomorrow });
    store.close();
    store = open(file, 0n);
    expect(store.listBudgets(ALICE)).to.deep.equal([]);
    expect(store.applicableBudgets(ALICE, ["team:search"], undefined)).to.deep.equal([]);
  });
});
