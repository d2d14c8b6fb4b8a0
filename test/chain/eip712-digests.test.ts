/**
 * Every EIP-712 digest the chain audit relies on, computed by two independent implementations (viem, which
 * the audit uses, and ethers' TypedDataEncoder) for random domains and messages, and by the contract itself
 * (`hashUsageBatch`, `hashUsageReceipt`, `eip712Domain`) for the deployed domain: they must agree on every
 * one. A batch signed by ethers must recover, through the audit's own digest, to the signing key.
 */
import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { concat, getAddress, hashTypedData, toHex, type Address, type Hex } from "viem";
import { batchCommitment, recoverBatchSigner, tollgateDomainSeparator, typedDataDigest } from "../../client/audit/replay/batch-signature";
import { deployLocalTollgate } from "../../scripts/lib/marketplace-fixtures";
import { TOLLGATE_DOMAIN_NAME, TOLLGATE_DOMAIN_VERSION, tollgateDomain, usageBatchTypes, usageReceiptTypes, type UsageBatch, type UsageReceipt } from "../../server/chain/eip712";
import { hashReceipt } from "../../server/chain/usage-batch";
import type { Tollgate } from "../../typechain-types";

const hex = (bytes: Uint8Array): Hex => toHex(bytes);
const uint = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((bytes) => getAddress(hex(bytes)));
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hex);
/** Sections of whole entries, as a batch carries them (any bytes hash the same way). */
const section = (entry: number, max: number) =>
  fc.array(fc.uint8Array({ minLength: entry, maxLength: entry }), { minLength: 1, maxLength: max }).map((entries) => concat(entries.map(hex)));

const batchArbitrary: fc.Arbitrary<UsageBatch> = fc.record({
  firstSequence: uint(64),
  baseTime: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  buyers: section(24, 8),
  models: section(8, 8),
  records: section(18, 64),
  contentRoot: bytes32,
});

const receiptArbitrary: fc.Arbitrary<UsageReceipt> = fc.record({
  sequence: uint(64),
  buyer: address,
  modelId: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  inputTokens: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  cachedInputTokens: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  outputTokens: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  servedAt: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  inputPrice: uint(72),
  cachedInputPrice: uint(72),
  outputPrice: uint(72),
  cost: uint(256),
  contentHash: bytes32,
});

const domainArbitrary = fc.record({ chainId: fc.integer({ min: 1, max: 2 ** 48 }), verifyingContract: address });

/** ethers wants mutable field arrays; the tables are the same ones viem hashes with. */
const ethersTypes = <T extends Record<string, readonly { name: string; type: string }[]>>(types: T) =>
  Object.fromEntries(Object.entries(types).map(([name, fields]) => [name, fields.map((field) => ({ ...field }))]));

describe("EIP-712 digests: viem, ethers and the contract agree", function () {
  let tollgate: Tollgate;
  let chainId: number;
  let address_: Address;

  before(async function () {
    const local = await deployLocalTollgate();
    tollgate = local.tollgate;
    chainId = Number(local.chainId);
    address_ = getAddress(await tollgate.getAddress());
  });

  it("agree on the domain separator of any chain and address, and read the deployed one from the contract", async function () {
    fc.assert(
      fc.property(domainArbitrary, ({ chainId: id, verifyingContract }) => {
        const ours = tollgateDomainSeparator(id, verifyingContract);
        const theirs = ethers.TypedDataEncoder.hashDomain({ name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, chainId: id, verifyingContract });
        expect(ours).to.equal(theirs);
      }),
      { numRuns: 200 },
    );
    const domain = await tollgate.eip712Domain();
    expect([domain.name, domain.version, Number(domain.chainId), getAddress(domain.verifyingContract)]).to.deep.equal([TOLLGATE_DOMAIN_NAME, TOLLGATE_DOMAIN_VERSION, chainId, address_]);
  });

  it("agree on every batch's commitment and digest, and the contract's hashUsageBatch gives the same", async function () {
    await fc.assert(
      fc.asyncProperty(batchArbitrary, domainArbitrary, async (batch, domain) => {
        const commitment = batchCommitment(batch);
        expect(commitment).to.equal(ethers.TypedDataEncoder.from(ethersTypes(usageBatchTypes)).hash(batch));
        const digest = typedDataDigest(tollgateDomainSeparator(domain.chainId, domain.verifyingContract), commitment);
        expect(digest).to.equal(hashTypedData({ domain: tollgateDomain(domain.chainId, domain.verifyingContract), types: usageBatchTypes, primaryType: "UsageBatch", message: batch }));
        expect(digest).to.equal(ethers.TypedDataEncoder.hash({ name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, ...domain }, ethersTypes(usageBatchTypes), batch));
        const deployed = typedDataDigest(tollgateDomainSeparator(chainId, address_), commitment);
        expect(await tollgate.hashUsageBatch(batch)).to.equal(deployed);
      }),
      { numRuns: 60 },
    );
  });

  it("agree on every receipt's digest, and the contract's hashUsageReceipt gives the same", async function () {
    await fc.assert(
      fc.asyncProperty(receiptArbitrary, domainArbitrary, async (receipt, domain) => {
        const structHash = hashReceipt(receipt);
        expect(structHash).to.equal(ethers.TypedDataEncoder.from(ethersTypes(usageReceiptTypes)).hash(receipt));
        const digest = typedDataDigest(tollgateDomainSeparator(domain.chainId, domain.verifyingContract), structHash);
        expect(digest).to.equal(ethers.TypedDataEncoder.hash({ name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, ...domain }, ethersTypes(usageReceiptTypes), receipt));
        expect(await tollgate.hashUsageReceipt(receipt)).to.equal(typedDataDigest(tollgateDomainSeparator(chainId, address_), structHash));
      }),
      { numRuns: 60 },
    );
  });

  it("recovers the key that signed a batch with ethers, through the audit's own digest", async function () {
    await fc.assert(
      fc.asyncProperty(batchArbitrary, async (batch) => {
        const wallet = ethers.Wallet.createRandom();
        const signature = (await wallet.signTypedData({ name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, chainId, verifyingContract: address_ }, ethersTypes(usageBatchTypes), batch)) as Hex;
        const separator = tollgateDomainSeparator(chainId, address_);
        expect(await recoverBatchSigner(separator, batchCommitment(batch), signature)).to.equal(getAddress(wallet.address));
        // The same signature over another batch recovers to someone else (step down at uint64's maximum).
        const other = { ...batch, firstSequence: batch.firstSequence === 2n ** 64n - 1n ? batch.firstSequence - 1n : batch.firstSequence + 1n };
        expect(await recoverBatchSigner(separator, batchCommitment(other), signature)).to.not.equal(getAddress(wallet.address));
      }),
      { numRuns: 20 },
    );
  });
});
