/**
 * Pins the EIP-712 types of `server/chain/eip712.ts` to `contracts/libraries/UsageTypes.sol`: the
 * TypeScript signer and the Solidity verifier must hash every batch and receipt identically, and a
 * hard-coded vector catches any change of type string, field order or batch encoding.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, takeSnapshot } from "@nomicfoundation/hardhat-network-helpers";
import {
  concat,
  encodeAbiParameters,
  hashStruct,
  hashTypedData,
  keccak256,
  recoverTypedDataAddress,
  toHex,
  type Address,
  type Hex,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deployLocalTollgate } from "../../scripts/lib/marketplace-fixtures";
import {
  TOLLGATE_DOMAIN_NAME,
  TOLLGATE_DOMAIN_VERSION,
  USAGE_BATCH_TYPE,
  USAGE_RECEIPT_TYPE,
  tollgateDomain,
  usageBatchTypes,
  usageReceiptTypes,
} from "../../server/chain/eip712";
import { encodeUsageBatch, hashReceipt, type UsageBatch, type UsageReceipt, type UsageRecord } from "../../server/chain/usage-batch";
import { merkleRoot } from "../../server/chain/merkle";
import { signUsageBatch, signUsageReceipt } from "../../server/chain/sign-batch";

const EIP712_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";

function domainSeparator(chainId: bigint, verifyingContract: Address, name = "Tollgate", version = "1"): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }, { type: "uint256" }, { type: "address" }],
      [keccak256(toHex(EIP712_DOMAIN_TYPE)), keccak256(toHex(name)), keccak256(toHex(version)), chainId, verifyingContract],
    ),
  );
}

/** The batch struct hash built by hand from a type string, as `UsageTypes.hash(UsageBatch)` does. */
function batchStructHash(typeString: string, batch: UsageBatch): Hex {
  return keccak256(
    encodeAbiParameters(
      [
        { type: "bytes32" },
        { type: "uint64" },
        { type: "uint32" },
        { type: "bytes32" },
        { type: "bytes32" },
        { type: "bytes32" },
        { type: "bytes32" },
      ],
      [
        keccak256(toHex(typeString)),
        batch.firstSequence,
        batch.baseTime,
        keccak256(batch.buyers),
        keccak256(batch.models),
        keccak256(batch.records),
        batch.contentRoot,
      ],
    ),
  );
}

function receiptStructHash(typeString: string, r: UsageReceipt): Hex {
  return keccak256(
    encodeAbiParameters(
      [
        { type: "bytes32" },
        { type: "uint64" },
        { type: "address" },
        { type: "uint32" },
        { type: "uint32" },
        { type: "uint32" },
        { type: "uint32" },
        { type: "uint32" },
        { type: "uint72" },
        { type: "uint72" },
        { type: "uint72" },
        { type: "uint256" },
        { type: "bytes32" },
      ],
      [
        keccak256(toHex(typeString)),
        r.sequence,
        r.buyer,
        r.modelId,
        r.inputTokens,
        r.cachedInputTokens,
        r.outputTokens,
        r.servedAt,
        r.inputPrice,
        r.cachedInputPrice,
        r.outputPrice,
        r.cost,
        r.contentHash,
      ],
    ),
  );
}

const digestOf = (separator: Hex, structHash: Hex): Hex => keccak256(concat(["0x1901", separator, structHash]));

// ---- the pinned vector: nothing below may depend on the chain or on randomness ----

const PINNED_KEY: Hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PINNED_CHAIN_ID = 31337;
const PINNED_CONTRACT: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const PINNED_BUYER_A: Address = "0x1111111111111111111111111111111111111111";
const PINNED_BUYER_B: Address = "0x00000000000000000000000000000000000000bB";

const PINNED_RECORDS: UsageRecord[] = [
  {
    sequence: 42n,
    buyer: PINNED_BUYER_A,
    modelId: 1,
    priceEpoch: 0,
    inputTokens: 1_200,
    cachedInputTokens: 200,
    outputTokens: 350,
    servedAt: 1_700_000_000,
    receiptHash: keccak256(toHex("pinned receipt 42")),
  },
  {
    sequence: 43n,
    buyer: PINNED_BUYER_B,
    modelId: 2,
    priceEpoch: 3,
    inputTokens: 4_000_000,
    cachedInputTokens: 0,
    outputTokens: 1,
    servedAt: 1_700_000_090,
    receiptHash: keccak256(toHex("pinned receipt 43")),
  },
  {
    sequence: 44n,
    buyer: PINNED_BUYER_A,
    modelId: 2,
    priceEpoch: 3,
    inputTokens: 0,
    cachedInputTokens: 0,
    outputTokens: 4_294_967_295,
    servedAt: 1_700_000_005,
    receiptHash: keccak256(toHex("pinned receipt 44")),
  },
];
const PINNED_PLANS = new Map<Address, number>([[PINNED_BUYER_A, 7]]);

const PINNED_RECEIPT: UsageReceipt = {
  sequence: 42n,
  buyer: PINNED_BUYER_A,
  modelId: 1,
  inputTokens: 1_200,
  cachedInputTokens: 200,
  outputTokens: 350,
  servedAt: 1_700_000_000,
  inputPrice: 150_000n,
  cachedInputPrice: 75_000n,
  outputPrice: 600_000n,
  cost: 375n,
  contentHash: keccak256(toHex("pinned response body")),
};

// Computed once from the code above and hard-coded: a change to the type strings, the field order,
// the packed encoding, the Merkle tree or the domain changes one of these.
const PINNED_BUYERS: Hex = "0x00000000000000000000000000000000000000bb00000000111111111111111111111111111111111111111100000007";
const PINNED_MODELS: Hex = "0x00000001000000000000000200000003";
const PINNED_RECORDS_HEX: Hex =
  "0x000100000004b0000000c80000015e000000000001003d0900000000000000000100005a0001010000000000000000ffffffff000005";
const PINNED_CONTENT_ROOT: Hex = "0xfbd4d2eb5f1ca16c7f95f31d8ae2fd30b133297b4886f4a1e3c58f9140aea33b";
const PINNED_BATCH_DIGEST: Hex = "0x0b2dc1bde90ebe99eb963bb6dd1fb24d7fe755b2c4270c850d464fe30039b0ad";
const PINNED_BATCH_SIGNATURE: Hex =
  "0xa210b9701f9981a0a91509361c1608c3043867844879c219954779dc97b44d2a7bbf50844bc69b91f0397335e4de3c2a8cf96ffd9f131e1715810e2322ad0b9b1b";
const PINNED_RECEIPT_DIGEST: Hex = "0xa43b1aabc94a8e8f67aab83332d771149a609ebcd6dea185e544ebe0227aef8e";

function pinnedBatch(): UsageBatch {
  return encodeUsageBatch(PINNED_RECORDS, PINNED_PLANS);
}

describe("EIP-712 typehashes: server/chain/eip712.ts and UsageTypes.sol agree", function () {
  async function deployed() {
    const base = await deployLocalTollgate();
    const address = (await base.tollgate.getAddress()) as Address;
    return { ...base, address };
  }

  function sampleBatch(): UsageBatch {
    return pinnedBatch();
  }

  describe("type strings", function () {
    it("the TS batch type string hashes to the typehash the contract digests batches with", async function () {
      const { tollgate, chainId, address } = await loadFixture(deployed);
      const batch = sampleBatch();
      const expected = digestOf(domainSeparator(chainId, address), batchStructHash(USAGE_BATCH_TYPE, batch));
      expect(await tollgate.hashUsageBatch(batch)).to.equal(expected);
    });

    it("a batch digest built from any other type string differs from the contract's (the comparison discriminates)", async function () {
      const { tollgate, chainId, address } = await loadFixture(deployed);
      const batch = sampleBatch();
      const onChain = await tollgate.hashUsageBatch(batch);
      const variants = [
        USAGE_BATCH_TYPE.replace("uint64 firstSequence", "uint256 firstSequence"),
        USAGE_BATCH_TYPE.replace("UsageBatch(", "Batch("),
        USAGE_BATCH_TYPE.replace(",", ", "),
      ];
      for (const variant of variants) {
        expect(variant).to.not.equal(USAGE_BATCH_TYPE);
        expect(digestOf(domainSeparator(chainId, address), batchStructHash(variant, batch))).to.not.equal(onChain);
      }
    });

    it("the TS receipt type string hashes to the typehash the contract digests receipts with", async function () {
      const { tollgate, chainId, address } = await loadFixture(deployed);
      const expected = digestOf(domainSeparator(chainId, address), receiptStructHash(USAGE_RECEIPT_TYPE, PINNED_RECEIPT));
      expect(await tollgate.hashUsageReceipt(PINNED_RECEIPT)).to.equal(expected);
      const wrong = USAGE_RECEIPT_TYPE.replace("uint72 inputPrice", "uint256 inputPrice");
      expect(digestOf(domainSeparator(chainId, address), receiptStructHash(wrong, PINNED_RECEIPT))).to.not.equal(expected);
    });

    it("viem's struct hashes from usageBatchTypes / usageReceiptTypes equal the ones built from the Solidity type strings", function () {
      const batch = sampleBatch();
      expect(hashStruct({ data: batch, primaryType: "UsageBatch", types: usageBatchTypes })).to.equal(
        batchStructHash(USAGE_BATCH_TYPE, batch),
      );
      expect(hashReceipt(PINNED_RECEIPT)).to.equal(receiptStructHash(USAGE_RECEIPT_TYPE, PINNED_RECEIPT));
    });
  });

  describe("digests", function () {
    it("hashUsageBatch equals viem hashTypedData of the same batch under tollgateDomain(chainId, address)", async function () {
      const { tollgate, chainId, address } = await loadFixture(deployed);
      for (const batch of [
        sampleBatch(),
        { ...sampleBatch(), firstSequence: 2n ** 64n - 1n, baseTime: 2 ** 32 - 1 },
        { firstSequence: 0n, baseTime: 0, buyers: "0x", models: "0x", records: "0x", contentRoot: `0x${"00".repeat(32)}` } as UsageBatch,
      ]) {
        const viemDigest = hashTypedData({
          domain: tollgateDomain(chainId, address),
          types: usageBatchTypes,
          primaryType: "UsageBatch",
          message: batch,
        });
        expect(await tollgate.hashUsageBatch(batch)).to.equal(viemDigest);
      }
    });

    it("hashUsageReceipt equals viem hashTypedData of the same receipt under tollgateDomain(chainId, address)", async function () {
      const { tollgate, chainId, address } = await loadFixture(deployed);
      const extreme: UsageReceipt = {
        ...PINNED_RECEIPT,
        sequence: 2n ** 64n - 1n,
        modelId: 2 ** 32 - 1,
        inputTokens: 2 ** 32 - 1,
        cachedInputTokens: 2 ** 32 - 1,
        outputTokens: 2 ** 32 - 1,
        servedAt: 2 ** 32 - 1,
        inputPrice: 2n ** 72n - 1n,
        cachedInputPrice: 2n ** 72n - 1n,
        outputPrice: 2n ** 72n - 1n,
        cost: 2n ** 256n - 1n,
      };
      for (const receipt of [PINNED_RECEIPT, extreme]) {
        const viemDigest = hashTypedData({
          domain: tollgateDomain(chainId, address),
          types: usageReceiptTypes,
          primaryType: "UsageReceipt",
          message: receipt,
        });
        expect(await tollgate.hashUsageReceipt(receipt)).to.equal(viemDigest);
      }
    });

    it("a batch signed with the TS signer recovers, over the contract's digest, to the signing key", async function () {
      const { tollgate, chainId, address } = await loadFixture(deployed);
      const key = privateKeyToAccount(PINNED_KEY);
      const batch = sampleBatch();
      const signature = await signUsageBatch(key, { chainId, address }, batch);
      const digest = (await tollgate.hashUsageBatch(batch)) as Hex;
      expect(ethers.recoverAddress(digest, signature)).to.equal(key.address);
    });

    it("eip712Domain() (ERC-5267) reports the name, version, chainId and address the TS domain uses", async function () {
      const { tollgate, chainId, address } = await loadFixture(deployed);
      const domain = await tollgate.eip712Domain();
      const ts = tollgateDomain(chainId, address);
      expect(domain.fields).to.equal("0x0f"); // name, version, chainId, verifyingContract; no salt
      expect(domain.name).to.equal(ts.name).and.to.equal(TOLLGATE_DOMAIN_NAME).and.to.equal("Tollgate");
      expect(domain.version).to.equal(ts.version).and.to.equal(TOLLGATE_DOMAIN_VERSION).and.to.equal("1");
      expect(domain.chainId).to.equal(BigInt(ts.chainId!));
      expect(domain.chainId).to.equal(chainId);
      expect(domain.verifyingContract).to.equal(ts.verifyingContract);
      expect(domain.salt).to.equal(ethers.ZeroHash);
      expect(domain.extensions).to.deep.equal([]);
    });
  });

  describe("pinned vector", function () {
    it("the pinned batch encodes to the pinned sections and content root", function () {
      const batch = pinnedBatch();
      expect(batch.firstSequence).to.equal(42n);
      expect(batch.baseTime).to.equal(1_700_000_000);
      expect(batch.buyers).to.equal(PINNED_BUYERS);
      expect(batch.models).to.equal(PINNED_MODELS);
      expect(batch.records).to.equal(PINNED_RECORDS_HEX);
      expect(batch.contentRoot).to.equal(PINNED_CONTENT_ROOT);
      expect(merkleRoot(PINNED_RECORDS.map((r) => r.receiptHash))).to.equal(PINNED_CONTENT_ROOT);
    });

    it("the pinned batch has the pinned digest under chainId 31337 and 0x5FbDB…0aa3", function () {
      const digest = hashTypedData({
        domain: tollgateDomain(PINNED_CHAIN_ID, PINNED_CONTRACT),
        types: usageBatchTypes,
        primaryType: "UsageBatch",
        message: pinnedBatch(),
      });
      expect(digest).to.equal(PINNED_BATCH_DIGEST);
      expect(digestOf(domainSeparator(BigInt(PINNED_CHAIN_ID), PINNED_CONTRACT), batchStructHash(USAGE_BATCH_TYPE, pinnedBatch()))).to.equal(
        PINNED_BATCH_DIGEST,
      );
    });

    it("the pinned key signs the pinned batch to the pinned signature, which recovers to the key's address", async function () {
      const key = privateKeyToAccount(PINNED_KEY);
      expect(key.address).to.equal("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
      const signature = await signUsageBatch(key, { chainId: PINNED_CHAIN_ID, address: PINNED_CONTRACT }, pinnedBatch());
      expect(signature).to.equal(PINNED_BATCH_SIGNATURE);
      const recovered = await recoverTypedDataAddress({
        domain: tollgateDomain(PINNED_CHAIN_ID, PINNED_CONTRACT),
        types: usageBatchTypes,
        primaryType: "UsageBatch",
        message: pinnedBatch(),
        signature,
      });
      expect(recovered).to.equal(key.address);
    });

    it("the pinned receipt has the pinned digest, and its signature recovers to the key", async function () {
      const digest = hashTypedData({
        domain: tollgateDomain(PINNED_CHAIN_ID, PINNED_CONTRACT),
        types: usageReceiptTypes,
        primaryType: "UsageReceipt",
        message: PINNED_RECEIPT,
      });
      expect(digest).to.equal(PINNED_RECEIPT_DIGEST);
      const key = privateKeyToAccount(PINNED_KEY);
      const signature = await signUsageReceipt(key, { chainId: PINNED_CHAIN_ID, address: PINNED_CONTRACT }, PINNED_RECEIPT);
      expect(ethers.recoverAddress(digest, signature)).to.equal(key.address);
    });

    it("the contract's bytecode, placed at the pinned address on chain 31337, yields the pinned digests", async function () {
      const { chainId, address } = await loadFixture(deployed);
      expect(chainId).to.equal(BigInt(PINNED_CHAIN_ID));
      const snapshot = await takeSnapshot();
      try {
        // The domain separator is rebuilt from address(this) when the code runs elsewhere.
        await network.provider.send("hardhat_setCode", [PINNED_CONTRACT, await ethers.provider.getCode(address)]);
        const atPinned = await ethers.getContractAt("Tollgate", PINNED_CONTRACT);
        expect(await atPinned.hashUsageBatch(pinnedBatch())).to.equal(PINNED_BATCH_DIGEST);
        expect(await atPinned.hashUsageReceipt(PINNED_RECEIPT)).to.equal(PINNED_RECEIPT_DIGEST);
        const domain = await atPinned.eip712Domain();
        expect(domain.verifyingContract).to.equal(PINNED_CONTRACT);
      } finally {
        await snapshot.restore();
      }
    });
  });
});
