/**
 * The one rule for which usage a credit plan pays for (server/chain/plan-eligibility.ts), at its
 * boundaries: the contract counts a record as eligible when its model's bit is in the mask and it was
 * served strictly before the plan expired, an expiry of 0 meaning never.
 */
import { expect } from "chai";
import {
  MAX_MODEL_LOCAL_INDEX,
  modelBit,
  planActiveAt,
  planCovers,
  planCoversModel,
  planExpiryOrder,
} from "../../server/chain/plan-eligibility";

describe("plan eligibility: one rule for the gateway, the oracle and the contract", function () {
  describe("the model mask", function () {
    it("covers a model when the bit at its local index is set", function () {
      const plan = { modelMask: 0b101n };
      expect([0, 1, 2, 3].map((i) => planCoversModel(plan, i))).to.deep.equal([true, false, true, false]);
    });

    it("reaches bit 255, the 256th model of a provider", function () {
      expect(MAX_MODEL_LOCAL_INDEX).to.equal(255);
      expect(modelBit(255)).to.equal(2n ** 255n);
      expect(planCoversModel({ modelMask: 2n ** 255n }, 255)).to.equal(true);
      expect(planCoversModel({ modelMask: 2n ** 255n }, 254)).to.equal(false);
      expect(planCoversModel({ modelMask: 2n ** 256n - 1n }, 255)).to.equal(true);
      expect(planCoversModel({ modelMask: 2n ** 255n - 1n }, 255)).to.equal(false);
    });

    it("refuses a local index no model can have, rather than never matching it", function () {
      for (const index of [-1, 256, 1.5, Number.NaN]) expect(() => modelBit(index), String(index)).to.throw(RangeError);
    });
  });

  describe("expiry", function () {
    it("covers usage served one second before expiry", function () {
      expect(planActiveAt({ expiresAt: 1_000 }, 999)).to.equal(true);
    });

    it("does not cover usage served exactly at the expiry time", function () {
      expect(planActiveAt({ expiresAt: 1_000 }, 1_000)).to.equal(false);
      expect(planActiveAt({ expiresAt: 1_000 }, 1_001)).to.equal(false);
    });

    it("never expires when expiresAt is 0", function () {
      expect(planActiveAt({ expiresAt: 0 }, 0)).to.equal(true);
      expect(planActiveAt({ expiresAt: 0 }, 2 ** 32 - 1)).to.equal(true);
    });

    it("orders a plan that never expires after every dated one", function () {
      expect(planExpiryOrder({ expiresAt: 0 })).to.be.greaterThan(planExpiryOrder({ expiresAt: 2 ** 32 - 1 }));
      expect(planExpiryOrder({ expiresAt: 5 })).to.equal(5);
    });
  });

  it("needs both: the model in the mask and the usage before expiry", function () {
    const plan = { modelMask: 0b10n, expiresAt: 1_000 };
    expect(planCovers(plan, 1, 999)).to.equal(true);
    expect(planCovers(plan, 1, 1_000)).to.equal(false);
    expect(planCovers(plan, 0, 999)).to.equal(false);
  });
});
