/**
 * The gateway's fast receipt signer hand-encodes the EIP-712 struct from the receipt table; this holds it to
 * viem's generic typed-data code, at the edges of every field's type, so the two cannot drift.
 */
import { expect } from "chai";
import { getAddress, recoverTypedDataAddress, type Hex } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { tollgateDomain, usageReceiptTypes, type UsageReceipt } from "../../server/chain/eip712";
import { hashReceipt } from "../../server/chain/usage-batch";
import { ReceiptSigner } from "../../server/gateway/metering/receipt-signer";

const KEY: Hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const TOLLGATE = getAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3");

function receipt(fields: Partial<UsageReceipt> = {}): UsageReceipt {
  return {
    sequence: 7n,
    buyer: getAddress("0x00000000000000000000000000000000000a11ce"),
    modelId: 3,
    inputTokens: 1_000,
    cachedInputTokens: 200,
    outputTokens: 50,
    servedAt: 1_700_000_000,
    inputPrice: 3_000_000n,
    cachedInputPrice: 300_000n,
    outputPrice: 15_000_000n,
    cost: 3_810n,
    contentHash: `0x${"cd".repeat(32)}`,
    ...fields,
  };
}

/** Each field at the largest value of its EIP-712 type, read off the table so a new field is covered too. */
function maxima(): UsageReceipt {
  const max = ({ type }: { type: string }): unknown => {
    if (type === "address") return getAddress(`0x${"ff".repeat(20)}`);
    if (type === "bytes32") return `0x${"ff".repeat(32)}`;
    const bits = Number(type.slice(4));
    return bits > 48 ? 2n ** BigInt(bits) - 1n : 2 ** bits - 1;
  };
  return Object.fromEntries(usageReceiptTypes.UsageReceipt.map((field) => [field.name, max(field)])) as UsageReceipt;
}

const EDGES: Record<string, UsageReceipt> = {
  "typical values": receipt(),
  zeros: receipt({ sequence: 0n, modelId: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, servedAt: 0, inputPrice: 0n, cachedInputPrice: 0n, outputPrice: 0n, cost: 0n, contentHash: `0x${"00".repeat(32)}` }),
  "every field at its type's maximum": maxima(),
};

describe("ReceiptSigner: the fast path agrees with viem", function () {
  for (const chainId of [31337, 2 ** 40 + 1]) {
    const signer = new ReceiptSigner(KEY, chainId, TOLLGATE);
    for (const [name, message] of Object.entries(EDGES)) {
      it(`hashes and signs ${name} as viem does (chain ${chainId})`, async function () {
        const signed = signer.sign(message);
        expect(signed.receiptHash).to.equal(hashReceipt(message));
        const typedData = { domain: tollgateDomain(chainId, TOLLGATE), types: usageReceiptTypes, primaryType: "UsageReceipt", message } as const;
        const recovered = await recoverTypedDataAddress({ ...typedData, signature: signed.signature });
        expect(recovered).to.equal(privateKeyToAddress(KEY));
      });
    }
  }

  it("names its signer's address", function () {
    expect(new ReceiptSigner(KEY, 1, TOLLGATE).address).to.equal(privateKeyToAddress(KEY));
  });
});
