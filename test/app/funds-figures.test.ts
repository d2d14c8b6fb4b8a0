/**
 * The figures the Funds and Market pages compute themselves rather than read: a plan's bonus (never
 * overstated) and where a spending limit's window stands now (as the contract's `_remainingAllowance` does).
 */
import { expect } from "chai";
import type { SpendingLimitHolding } from "../../client";
import { limitWindowAt } from "../../app/src/views/funds/limit-window";
import { formatBonus } from "../../app/src/views/market/plan-terms";

describe("web app: figures the pages compute", function () {
  it("formatBonus says value over price to a tenth of a percent, truncated toward zero", function () {
    expect(formatBonus(9_000n, 10_000n)).to.equal("+11.1%"); // 11.11...%
    expect(formatBonus(2_000_000n, 2_500_000n)).to.equal("+25%");
    expect(formatBonus(10_000n, 10_000n)).to.equal("none");
    expect(formatBonus(10_000n, 9_500n)).to.equal("−5%");
    expect(formatBonus(0n, 1n)).to.equal("free");
    expect(formatBonus(3n, 4n)).to.equal("+33.3%");
  });

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
