/**
 * Gas of each fraud proof against a lying gateway, beside the gas of settling the batch it names, measured in
 * one run: proving a settled record wrong costs about what settling a one-record batch did (its award writes a
 * fresh slot), and an ever smaller share of the settlement as the batch grows.
 *
 *   npm run bench:disputes
 */
import hre, { ethers } from "hardhat";
import type { Interface } from "ethers";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toHex, type Address, type Hex, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { deployMarketplace, SMALL_PRICES, USD } from "../scripts/lib/marketplace-fixtures";
import { merkleProof } from "../server/chain/merkle";
import { recordCost } from "../server/chain/pricing";
import { signedUsageBatch, signUsageReceipt } from "../server/chain/sign-batch";
import { hashReceipt, usageBatchHeader, type UsageReceipt, type UsageRecord } from "../server/chain/usage-batch";

const BATCH_SIZES = [1, 100, 1_000];
const BUYERS = 10;

async function main() {
  const market = await deployMarketplace();
  const { tollgate, token, provider, providerId, smallModel } = market;
  const deployment = { chainId: market.chainId, address: (await tollgate.getAddress()) as Address };
  const buyers = market.buyers.slice(0, BUYERS).map((b) => b.address as Address);
  for (const buyer of market.buyers.slice(0, BUYERS)) await tollgate.connect(buyer).deposit(buyer.address, USD(500));
  await token.mint(provider.address, USD(100_000));
  await token.connect(provider).approve(deployment.address, ethers.MaxUint256);
  await tollgate.connect(provider).postBond(providerId, USD(100_000));
  await time.increase(3_600);

  /** A fresh gateway key: a proof compromises the key it convicts, so each row convicts its own. */
  async function newGateway(): Promise<LocalAccount> {
    const key = privateKeyToAccount(generatePrivateKey());
    await tollgate.connect(provider).setSignerAuthorization(providerId, key.address, true);
    return key;
  }

  /** `size` real receipts from `gateway`, and the batch it settles: honest but for the last record (`lie`). */
  async function lyingBatch(gateway: LocalAccount, size: number, lie: (record: UsageRecord, receipt: UsageReceipt) => UsageRecord) {
    const now = (await ethers.provider.getBlock("latest"))!.timestamp;
    const receipts: UsageReceipt[] = [];
    const records: UsageRecord[] = [];
    for (let i = 0; i < size; i++) {
      const counts = { inputTokens: 200 + ((i * 7919) % 3_800), cachedInputTokens: 0, outputTokens: 50 + ((i * 104_729) % 950) };
      const receipt: UsageReceipt = {
        sequence: BigInt(i),
        buyer: buyers[i % buyers.length],
        modelId: Number(smallModel),
        ...counts,
        servedAt: now - 600 + Math.floor((i * 600) / size),
        inputPrice: SMALL_PRICES.input,
        cachedInputPrice: SMALL_PRICES.cachedInput,
        outputPrice: SMALL_PRICES.output,
        cost: recordCost(counts, SMALL_PRICES),
        contentHash: keccak256(toHex(`response ${i}`)),
      };
      const record: UsageRecord = { ...receipt, priceEpoch: 0, receiptHash: hashReceipt(receipt) };
      receipts.push(receipt);
      records.push(i === size - 1 ? lie(record, receipt) : record);
    }
    const { batch, signature } = await signedUsageBatch(gateway, deployment, records);
    const settled = await (await tollgate.connect(provider).settleBatch(batch, signature)).wait();
    const last = receipts[size - 1];
    return { batch, records, receipts, last, lastSignature: await signUsageReceipt(gateway, deployment, last), settleGas: settled!.gasUsed };
  }

  const rows: { proof: string; records: number | string; calldata: number; gas: bigint; settleGas?: bigint }[] = [];
  const gasOf = async (sent: Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>) => (await (await sent).wait())!.gasUsed;
  const calldataOf = (fn: "proveSettledRecordMismatch" | "proveContentMismatch" | "proveEquivocation", args: unknown[]) =>
    ((tollgate.interface as Interface).encodeFunctionData(fn, args).length - 2) / 2;

  // Warm-up: the provider's earnings, the protocol fees and every buyer's account have been written before, so
  // each settlement below is priced as in steady state (as bench:gas does).
  await lyingBatch(await newGateway(), BUYERS, (r) => r);

  for (const size of BATCH_SIZES) {
    process.stderr.write(`${size} record(s)...\n`);
    // Kind 0: the gateway settled 10x the output tokens it told the buyer.
    {
      const gateway = await newGateway();
      const { batch, last, lastSignature, settleGas, receipts } = await lyingBatch(gateway, size, (r) => ({ ...r, outputTokens: r.outputTokens * 10 }));
      const args = [last, lastSignature, batch];
      rows.push({ proof: "settled record differs (kind 0)", records: size, calldata: calldataOf("proveSettledRecordMismatch", args), settleGas, gas: await gasOf(tollgate.proveSettledRecordMismatch(last, lastSignature, batch)) });
      if (size > 1) {
        // A second proof against the same, now compromised, key in the same 256-sequence bitmap word.
        const other = { ...receipts[size - 2], outputTokens: receipts[size - 2].outputTokens - 1 };
        const otherSignature = await signUsageReceipt(gateway, deployment, other);
        rows.push({
          proof: "kind 0 again, same key (signer already compromised, bitmap word warm)",
          records: size,
          calldata: calldataOf("proveSettledRecordMismatch", [other, otherSignature, batch]),
          settleGas,
          gas: await gasOf(tollgate.proveSettledRecordMismatch(other, otherSignature, batch)),
        });
      }
    }
    // Kind 1: the content root commits to another response for the last sequence.
    {
      const gateway = await newGateway();
      let swapped: UsageReceipt | undefined;
      const { batch, records, last, lastSignature, settleGas } = await lyingBatch(gateway, size, (r, receipt) => {
        swapped = { ...receipt, contentHash: keccak256(toHex("another response")) };
        return { ...r, receiptHash: hashReceipt(swapped) };
      });
      const proof = merkleProof(records.map((r) => r.receiptHash), size - 1) as Hex[];
      const header = usageBatchHeader(batch);
      const args = [last, lastSignature, header, swapped!, proof];
      rows.push({
        proof: `content root differs (kind 1), ${proof.length}-hash Merkle proof`,
        records: size,
        calldata: calldataOf("proveContentMismatch", args),
        settleGas,
        gas: await gasOf(tollgate.proveContentMismatch(last, lastSignature, header, swapped!, proof)),
      });
    }
  }
  // Kind 2: two receipts for one sequence; no batch involved.
  {
    const gateway = await newGateway();
    const now = (await ethers.provider.getBlock("latest"))!.timestamp;
    const counts = { inputTokens: 1_000, cachedInputTokens: 0, outputTokens: 500 };
    const a: UsageReceipt = {
      sequence: 0n, buyer: buyers[0], modelId: Number(smallModel), ...counts, servedAt: now - 10,
      inputPrice: SMALL_PRICES.input, cachedInputPrice: SMALL_PRICES.cachedInput, outputPrice: SMALL_PRICES.output,
      cost: recordCost(counts, SMALL_PRICES), contentHash: keccak256(toHex("a")),
    };
    const b: UsageReceipt = { ...a, buyer: buyers[1], contentHash: keccak256(toHex("b")) };
    const [sigA, sigB] = [await signUsageReceipt(gateway, deployment, a), await signUsageReceipt(gateway, deployment, b)];
    rows.push({ proof: "two receipts, one sequence (kind 2)", records: "–", calldata: calldataOf("proveEquivocation", [a, sigA, b, sigB]), gas: await gasOf(tollgate.proveEquivocation(a, sigA, b, sigB)) });
  }

  const floorNote =
    "Calldata floor (EIP-7623, in force since Prague): a transaction pays at least 10 gas per calldata token (a zero byte is 1 token, " +
    "any other 4), so a proof carrying a 1,000-record batch is priced by its calldata, whatever its execution saves.";
  const lines = [
    `Fraud proof gas (Hardhat network, hardfork ${hre.config.networks.hardhat.hardfork}; gas includes the 21,000 base and calldata; ${BUYERS} buyers per batch)`,
    "",
    "| proof | records in the batch | proof calldata (bytes) | gas of the proof | gas of settling the batch | proof / settlement |",
    "|:---|---:|---:|---:|---:|---:|",
    ...rows.map((row) => {
      const ratio = row.settleGas ? (Number((row.gas * 1000n) / row.settleGas) / 1000).toFixed(2) : "–";
      return `| ${row.proof} | ${row.records} | ${row.calldata} | ${row.gas} | ${row.settleGas ?? "–"} | ${ratio} |`;
    }),
    "",
    floorNote,
  ];
  console.log(lines.join("\n"));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
