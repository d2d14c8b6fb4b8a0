/**
 * The receipt and batch types, their run-time field lists and the Solidity type strings all come from the
 * EIP-712 tables in server/chain/eip712.ts. These pin what the derivations produce, so a change to a table
 * shows up here as a deliberate edit rather than a silent drift.
 */
import { expect } from "chai";
import { getAddress, type Address, type Hex } from "viem";
import {
  USAGE_BATCH_TYPE,
  USAGE_RECEIPT_FIELDS,
  USAGE_RECEIPT_TYPE,
  usageReceiptTypes,
  type UsageBatch,
  type UsageReceipt,
} from "../../server/chain/eip712";
import { receiptToWire, usageReceiptFromEnvelope, usageReceiptOf, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";

// Compile-time: the derived types are exactly the shapes the code was written against.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Flat<T> = { [K in keyof T]: T[K] };
const receiptShape: Equal<
  Flat<UsageReceipt>,
  {
    sequence: bigint;
    buyer: Address;
    modelId: number;
    inputTokens: number;
    cachedInputTokens: number;
    outputTokens: number;
    servedAt: number;
    inputPrice: bigint;
    cachedInputPrice: bigint;
    outputPrice: bigint;
    cost: bigint;
    contentHash: Hex;
  }
> = true;
const batchShape: Equal<Flat<UsageBatch>, { firstSequence: bigint; baseTime: number; buyers: Hex; models: Hex; records: Hex; contentRoot: Hex }> = true;

const RECEIPT: UsageReceipt = {
  sequence: 2n ** 63n + 5n,
  buyer: getAddress("0x00000000000000000000000000000000000a11ce"),
  modelId: 2 ** 32 - 1,
  inputTokens: 1_000,
  cachedInputTokens: 200,
  outputTokens: 50,
  servedAt: 1_700_000_000,
  inputPrice: 2n ** 72n - 1n,
  cachedInputPrice: 3n,
  outputPrice: 2n ** 70n,
  cost: 2n ** 255n + 1n,
  contentHash: `0x${"ab".repeat(32)}`,
};

describe("EIP-712 tables: the one definition of receipts and batches", function () {
  it("derives the type shapes from the tables (checked by the compiler)", function () {
    expect(receiptShape && batchShape).to.equal(true);
  });

  it("lists the receipt's fields at run time in the table's order", function () {
    expect([...USAGE_RECEIPT_FIELDS]).to.deep.equal(usageReceiptTypes.UsageReceipt.map((field) => field.name));
    expect([...USAGE_RECEIPT_FIELDS]).to.deep.equal(Object.keys(RECEIPT));
  });

  it("spells the type strings exactly as UsageTypes.sol does", function () {
    expect(USAGE_BATCH_TYPE).to.equal(
      "UsageBatch(uint64 firstSequence,uint32 baseTime,bytes buyers,bytes models,bytes records,bytes32 contentRoot)",
    );
    expect(USAGE_RECEIPT_TYPE).to.equal(
      "UsageReceipt(uint64 sequence,address buyer,uint32 modelId,uint32 inputTokens,uint32 cachedInputTokens," +
        "uint32 outputTokens,uint32 servedAt,uint72 inputPrice,uint72 cachedInputPrice,uint72 outputPrice," +
        "uint256 cost,bytes32 contentHash)",
    );
  });

  it("takes exactly the receipt's fields out of a larger record", function () {
    const stored = { ...RECEIPT, requestId: "req-1", priceEpoch: 3, signature: "0x01" as Hex };
    expect(usageReceiptOf(stored)).to.deep.equal(RECEIPT);
  });

  it("round-trips a receipt through its JSON wire form, bigints as decimal strings", function () {
    const wire = receiptToWire(RECEIPT);
    expect(wire.sequence).to.equal((2n ** 63n + 5n).toString());
    expect(wire.cost).to.equal((2n ** 255n + 1n).toString());
    expect(wire.modelId).to.equal(2 ** 32 - 1);
    const envelope = JSON.parse(JSON.stringify({ receipt: wire })) as ReceiptEnvelope;
    expect(usageReceiptFromEnvelope(envelope)).to.deep.equal(RECEIPT);
  });

  it("reads a lower-case buyer back checksummed", function () {
    const wire = { ...receiptToWire(RECEIPT), buyer: RECEIPT.buyer.toLowerCase() as Address };
    expect(usageReceiptFromEnvelope({ receipt: wire } as ReceiptEnvelope).buyer).to.equal(RECEIPT.buyer);
  });
});
