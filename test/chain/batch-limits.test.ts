/**
 * The batch limits are stated once in TypeScript (server/chain/batch-limits.ts) and once in Solidity. This
 * pins the two together from the contract sources, and holds the oracle's planner and the batch encoder to
 * the same limits at their boundaries: whatever the planner puts in a batch, the encoder can pack.
 */
import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { getAddress } from "viem";
import {
  BUYER_ENTRY_BYTES,
  isUint32,
  MAX_BATCH_BUYERS,
  MAX_BATCH_MODEL_EPOCHS,
  MAX_BATCH_RECORDS,
  MAX_SERVED_OFFSET,
  MAX_UINT32,
  MODEL_ENTRY_BYTES,
  RECORD_BYTES,
} from "../../server/chain/batch-limits";
import { BatchEncodingError, encodeUsageBatch } from "../../server/chain/usage-batch";
import { batchPrefix } from "../../server/oracle/batch-planner";
import { usageRecord as record } from "../helpers/usage-records";

const CONTRACTS = path.resolve(__dirname, "..", "..", "contracts");

/** The value of `uint256 ... constant NAME = <expr>;` in a contract source, where expr is a number or `a << b`. */
function solidityConstant(file: string, name: string): number {
  const source = fs.readFileSync(path.join(CONTRACTS, file), "utf8");
  const match = source.match(new RegExp(`constant\\s+${name}\\s*=\\s*([^;]+);`));
  if (!match) throw new Error(`${file} declares no constant ${name}`);
  const shift = match[1].trim().match(/^(\d+)\s*<<\s*(\d+)$/);
  return shift ? Number(shift[1]) * 2 ** Number(shift[2]) : Number(match[1].trim());
}


function buyer(i: number) {
  return getAddress(`0x${(i + 1).toString(16).padStart(40, "0")}`);
}

describe("batch limits: one module for the encoder, the planner and the contract", function () {
  it("match the constants of UsageSettlement.sol and UsageTypes.sol", function () {
    expect(MAX_BATCH_BUYERS).to.equal(solidityConstant("UsageSettlement.sol", "MAX_BUYERS"));
    expect(MAX_BATCH_MODEL_EPOCHS).to.equal(solidityConstant("UsageSettlement.sol", "MAX_MODELS"));
    expect(MAX_BATCH_RECORDS).to.equal(solidityConstant("UsageSettlement.sol", "MAX_RECORDS"));
    expect(BUYER_ENTRY_BYTES).to.equal(solidityConstant("libraries/UsageTypes.sol", "USAGE_BUYER_ENTRY_SIZE"));
    expect(MODEL_ENTRY_BYTES).to.equal(solidityConstant("libraries/UsageTypes.sol", "USAGE_MODEL_ENTRY_SIZE"));
    expect(RECORD_BYTES).to.equal(solidityConstant("libraries/UsageTypes.sol", "USAGE_RECORD_SIZE"));
  });

  it("isUint32 accepts 0 and 2^32 − 1, and refuses −1, 2^32 and fractions", function () {
    expect([0, 1, MAX_UINT32].map(isUint32)).to.deep.equal([true, true, true]);
    expect([-1, MAX_UINT32 + 1, 1.5, Number.NaN].map(isUint32)).to.deep.equal([false, false, false, false]);
  });

  describe("serving-time offsets", function () {
    it("fit at exactly MAX_SERVED_OFFSET from the earliest, in the planner and the encoder", function () {
      const records = [record(0, { servedAt: 500 }), record(1, { servedAt: 500 + MAX_SERVED_OFFSET })];
      expect(batchPrefix(records, 10)).to.have.length(2);
      expect(() => encodeUsageBatch(records)).to.not.throw();
    });

    it("one second more starts the next batch, and the encoder refuses it", function () {
      const records = [record(0, { servedAt: 500 }), record(1, { servedAt: 500 + MAX_SERVED_OFFSET + 1 })];
      expect(batchPrefix(records, 10)).to.have.length(1);
      expect(() => encodeUsageBatch(records)).to.throw(BatchEncodingError, /split the batch/);
    });
  });

  describe("model epochs", function () {
    const epochs = (count: number) => Array.from({ length: count }, (_, i) => record(i, { modelId: 1 + (i >> 4), priceEpoch: i & 15 }));

    it("fit at exactly MAX_BATCH_MODEL_EPOCHS distinct (model, epoch) pairs", function () {
      expect(batchPrefix(epochs(MAX_BATCH_MODEL_EPOCHS), 1_000)).to.have.length(MAX_BATCH_MODEL_EPOCHS);
      expect(() => encodeUsageBatch(epochs(MAX_BATCH_MODEL_EPOCHS))).to.not.throw();
    });

    it("one more is cut by the planner and refused by the encoder", function () {
      expect(batchPrefix(epochs(MAX_BATCH_MODEL_EPOCHS + 1), 1_000)).to.have.length(MAX_BATCH_MODEL_EPOCHS);
      expect(() => encodeUsageBatch(epochs(MAX_BATCH_MODEL_EPOCHS + 1))).to.throw(BatchEncodingError, /model epochs exceed 256/);
    });
  });

  describe("buyers", function () {
    this.timeout(60_000);
    const buyers = (count: number) => Array.from({ length: count }, (_, i) => record(i, { buyer: buyer(i) }));

    it("fit at exactly MAX_BATCH_BUYERS distinct buyers; one more is cut by the planner and refused by the encoder", function () {
      const all = buyers(MAX_BATCH_BUYERS + 1);
      expect(batchPrefix(all, all.length)).to.have.length(MAX_BATCH_BUYERS);
      expect(() => encodeUsageBatch(all.slice(0, MAX_BATCH_BUYERS))).to.not.throw();
      expect(() => encodeUsageBatch(all)).to.throw(BatchEncodingError, /buyers exceed 65536/);
    });
  });
});
