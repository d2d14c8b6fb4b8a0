/** What goes into one batch, and which credit plan each buyer's usage is drawn from. */
import { expect } from "chai";
import type { Address } from "viem";
import { batchPrefix, chooseCreditPlans } from "../../server/oracle/batch-planner";
import type { CreditPlanTerms, HeldCredits } from "../../server/chain/marketplace-reader";
import { ALICE, BOB, usageRecord as record } from "../helpers/usage-records";

function plan(planId: number, fields: Partial<CreditPlanTerms> = {}): CreditPlanTerms {
  return { planId: BigInt(planId), providerId: 1, expiresAt: 0, pricePerCredit: 10n, valuePerCredit: 10n, modelMask: 0b1n, ...fields };
}

function holding(p: CreditPlanTerms, credits: bigint): HeldCredits {
  return { plan: p, credits, change: 0n };
}

describe("oracle: batch planning", function () {
  describe("batchPrefix", function () {
    it("takes at most maxRecords, in order", function () {
      const records = Array.from({ length: 10 }, (_, i) => record(i));
      expect(batchPrefix(records, 4).map((r) => r.sequence)).to.deep.equal([0n, 1n, 2n, 3n]);
      expect(batchPrefix(records, 50)).to.have.length(10);
    });

    it("ends the batch before a 257th model epoch", function () {
      const records = Array.from({ length: 300 }, (_, i) => record(i, { modelId: i + 1 }));
      expect(batchPrefix(records, 1_000)).to.have.length(256);
    });

    it("ends the batch before a serving time more than 2^24 s from the earliest", function () {
      const records = [record(0, { servedAt: 100 }), record(1, { servedAt: 100 + 2 ** 24 - 1 }), record(2, { servedAt: 99 })];
      expect(batchPrefix(records, 10)).to.have.length(2);
      const late = [record(0, { servedAt: 100 }), record(1, { servedAt: 100 + 2 ** 24 })];
      expect(batchPrefix(late, 10)).to.have.length(1);
    });
  });

  describe("chooseCreditPlans", function () {
    const localIndexOf = (modelId: number) => modelId - 1; // model 1 → bit 0, model 2 → bit 1

    it("names, per buyer, the plan that can pay for the most of its usage", function () {
      const smallOnly = plan(1, { modelMask: 0b01n });
      const bothModels = plan(2, { modelMask: 0b11n });
      const records = [record(0, { modelId: 1, cost: 100n }), record(1, { modelId: 2, cost: 500n }), record(2, { buyer: BOB, modelId: 1, cost: 50n })];
      const holdings = new Map<Address, HeldCredits[]>([
        [ALICE, [holding(smallOnly, 1_000n), holding(bothModels, 1_000n)]],
        [BOB, [holding(bothModels, 0n)]],
      ]);
      const choice = chooseCreditPlans({ records, holdings, localIndexOf });
      expect(choice.get(ALICE)).to.equal(2); // covers 600 vs 100
      expect(choice.has(BOB), "no credits held: balance only").to.equal(false);
    });

    it("caps a plan's use at what the buyer holds of it", function () {
      const big = plan(1, { modelMask: 0b11n, valuePerCredit: 10n });
      const other = plan(2, { modelMask: 0b01n, valuePerCredit: 10n });
      const records = [record(0, { modelId: 1, cost: 300n }), record(1, { modelId: 2, cost: 300n })];
      // Plan 1 covers 600 but only 5 credits (50) are held; plan 2 covers 300 and 100 credits are held.
      const choice = chooseCreditPlans({ records, holdings: new Map([[ALICE, [holding(big, 5n), holding(other, 100n)]]]), localIndexOf });
      expect(choice.get(ALICE)).to.equal(2);
    });

    it("ignores usage served at or after a plan expires, and prefers the plan expiring first on a tie", function () {
      const expired = plan(1, { expiresAt: 1_000 });
      const soon = plan(2, { expiresAt: 5_000 });
      const later = plan(3, { expiresAt: 9_000 });
      const never = plan(4, { expiresAt: 0 });
      const records = [record(0, { servedAt: 1_000, cost: 40n })];
      const holdings = new Map([[ALICE, [holding(never, 100n), holding(later, 100n), holding(expired, 100n), holding(soon, 100n)]]]);
      expect(chooseCreditPlans({ records, holdings, localIndexOf }).get(ALICE)).to.equal(2);
      const onlyExpired = new Map([[ALICE, [holding(expired, 100n)]]]);
      expect(chooseCreditPlans({ records, holdings: onlyExpired, localIndexOf }).has(ALICE)).to.equal(false);
    });
  });
});
