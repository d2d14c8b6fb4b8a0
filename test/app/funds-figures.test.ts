/**
 * Where a spending limit's window stands now, as the Funds page computes it (the contract's `_remainingAllowance`).
 * A plan's bonus, shown by the Funds, Market and Provider pages alike, is tested with the provider page's logic.
 */
import { expect } from "chai";
import type { SpendingLimitHolding } from "../../client";
import { limitWindowAt } from "../../app/src/views/funds/limit-window";

describe("web app: figures the pages compute", function () {
  it("limitWindowAt tiles windows from the first one, and an ended window counts nothing spent", function () {
    const limit: SpendingLimitHolding = { providerId: 1, limitPerPeriod: 100n, periodSeconds: 3_600, windowStart: 10_000, spentInWindow: 30n };
    expect(limitWindowAt(limit, 10_500n)).to.deep.equal({ windowStart: 10_000n, resetsAt: 13_600n, spent: 30n, remaining: 70n });
    // Two and a half periods later: the third window since the first, nothing spent in it yet.
    expect(limitWindowAt(limit, 10_000n + 9_000n)).to.deep.equal({ windowStart: 17_200n, resetsAt: 20_800n, spent: 0n, remaining: 100n });
    // Exactly at the boundary the next window has begun.
    expect(limitWindowAt(limit, 13_600n).windowStart).to.equal(13_600n);
    expect(limitWindowAt({ ...limit, spentInWindow: 150n }, 10_500n).remaining).to.equal(0n);
  });
});
