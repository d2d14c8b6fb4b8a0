/**
 * The local marketplace, end to end on Hardhat's in-process network: deploy, a provider lists two models
 * and a credit plan, a buyer deposits and buys credits, the gateway key signs a batch of metered calls,
 * anyone settles it, and an auditor rebuilds every charge from chain data alone.
 *
 *   npm run demo
 *
 * (The metered HTTP gateway and the oracle come in later issues; here the calls are generated.)
 */
import hre, { ethers } from "hardhat";
import { deployTollgate } from "./lib/deploy-tollgate";
import { permitTypesForEthers } from "../server/chain/permit";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { keccak256, toHex, type Address, type Hex } from "viem";
import { encodeUsageBatch, decodeUsageBatch, hashReceipt, type UsageRecord } from "../server/chain/usage-batch";
import { signUsageBatch } from "../server/chain/sign-batch";
import { recordCost, type ModelPrices } from "../server/chain/pricing";
import type { Tollgate, TestUSD } from "../typechain-types";

const usd = (units: bigint) => `${ethers.formatUnits(units, 6)} tUSD`;
const step = (message: string) => console.log(`\n▸ ${message}`);

async function main() {
  const [operator, provider, buyer, relayer] = await ethers.getSigners();
  step("deploying TestUSD and Tollgate with Ignition (3-day withdrawal delay, 1-day price notice, 2.5% fee)");
  // The same deployment as `npm run deploy`: the defaults, the operator as owner and treasury.
  const deployment = await deployTollgate(hre, { treasury: operator.address as Address, owner: operator.address as Address });
  const token = (await ethers.getContractAt("TestUSD", deployment.paymentToken)) as unknown as TestUSD;
  const tollgate = (await ethers.getContractAt("Tollgate", deployment.tollgate)) as unknown as Tollgate;
  const address = deployment.tollgate;
  const { chainId } = await ethers.provider.getNetwork();
  console.log(`  Tollgate at ${address} on chain ${chainId}`);

  step("provider registers, lists two models, defines a credit plan and authorizes its gateway key");
  const prices: Record<number, ModelPrices> = {
    1: { input: 150_000n, cachedInput: 75_000n, output: 600_000n },
    2: { input: 2_500_000n, cachedInput: 1_250_000n, output: 10_000_000n },
  };
  await tollgate.connect(provider).registerProvider(provider.address, "https://provider.example/metadata.json");
  await tollgate.connect(provider).listModel(1, "mini-model", prices[1]);
  await tollgate.connect(provider).listModel(1, "large-model", prices[2]);
  // 1 credit = $0.01 of usage on the small model, sold at $0.009.
  await tollgate.connect(provider).defineCreditPlan(1, 9_000, 10_000, [1], 0);
  const gateway = privateKeyToAccount(generatePrivateKey());
  await tollgate.connect(provider).setSignerAuthorization(1, gateway.address, true);
  for (const [id, p] of Object.entries(prices)) {
    console.log(`  model ${id}: ${usd(p.input)} in / ${usd(p.cachedInput)} cached / ${usd(p.output)} out per million tokens`);
  }

  step("buyer deposits 20 tUSD with a permit and buys 100 credits from its balance");
  await token.mint(buyer.address, 20_000_000n);
  const deadline = (await time.latest()) + 3600;
  const permit = await buyer.signTypedData(
    { name: "Tollgate Test USD", version: "1", chainId, verifyingContract: await token.getAddress() },
    permitTypesForEthers,
    { owner: buyer.address, spender: address, value: 20_000_000n, nonce: 0n, deadline },
  );
  const { v, r, s } = ethers.Signature.from(permit);
  await tollgate.connect(buyer).depositWithPermit(buyer.address, 20_000_000n, deadline, v, r, s);
  await tollgate.connect(buyer).buyCreditsWithBalance(1, 100, buyer.address);
  const before = await tollgate.accountOf(buyer.address);
  const credits = await ethers.getContractAt("TollgateCredits", await tollgate.credits());
  const creditsBefore = await credits.balanceOf(buyer.address, 1);
  console.log(`  balance ${usd(before.balance)}, credits ${creditsBefore}`);

  step("gateway serves 40 calls; its key signs them as one batch; a relayer submits it");
  await time.increase(600);
  const now = await time.latest();
  const records: UsageRecord[] = Array.from({ length: 40 }, (_, i) => {
    const inputTokens = 300 + ((i * 977) % 2_500);
    const counts = { inputTokens, cachedInputTokens: i % 4 === 0 ? Math.floor(inputTokens / 3) : 0, outputTokens: 80 + ((i * 331) % 700) };
    const modelId = i % 3 === 0 ? 2 : 1;
    const servedAt = now - 300 + i * 5;
    const receipt = {
      sequence: BigInt(i), buyer: buyer.address as Address, modelId, ...counts, servedAt,
      inputPrice: prices[modelId].input, cachedInputPrice: prices[modelId].cachedInput, outputPrice: prices[modelId].output,
      cost: recordCost(counts, prices[modelId]), contentHash: keccak256(toHex(`request+response ${i}`)) as Hex,
    };
    return { sequence: BigInt(i), buyer: buyer.address as Address, modelId, priceEpoch: 0, ...counts, servedAt, receiptHash: hashReceipt(receipt) };
  });
  const batch = encodeUsageBatch(records, new Map([[buyer.address as Address, 1]]));
  const signature = await signUsageBatch(gateway, { chainId, address }, batch);
  const settled = await (await tollgate.connect(relayer).settleBatch(batch, signature)).wait();
  console.log(`  settled in tx ${settled!.hash} (block ${settled!.blockNumber}, ${settled!.gasUsed} gas, ${settled!.gasUsed / 40n} per call)`);

  step("auditor rebuilds the bill from the transaction's calldata and the price events");
  const tx = await ethers.provider.getTransaction(settled!.hash);
  const parsed = tollgate.interface.parseTransaction({ data: tx!.data })!;
  const onChain = parsed.args[0];
  const decoded = decodeUsageBatch({
    firstSequence: onChain.firstSequence, baseTime: Number(onChain.baseTime), buyers: onChain.buyers,
    models: onChain.models, records: onChain.records, contentRoot: onChain.contentRoot,
  });
  const perModel = new Map<number, { calls: number; input: number; output: number; cost: bigint }>();
  for (const record of decoded) {
    const epoch = await tollgate.priceEpochOf(record.modelId, record.priceEpoch);
    const cost = recordCost(record, { input: epoch.input, cachedInput: epoch.cachedInput, output: epoch.output });
    const row = perModel.get(record.modelId) ?? { calls: 0, input: 0, output: 0, cost: 0n };
    perModel.set(record.modelId, { calls: row.calls + 1, input: row.input + record.inputTokens, output: row.output + record.outputTokens, cost: row.cost + cost });
  }
  const event = settled!.logs.map((log) => { try { return tollgate.interface.parseLog(log); } catch { return null; } })
    .find((log) => log?.name === "BatchSettled")!;
  let rebuilt = 0n;
  for (const [modelId, row] of perModel) {
    console.log(`  model ${modelId}: ${row.calls} calls, ${row.input} tokens in, ${row.output} out, ${usd(row.cost)}`);
    rebuilt += row.cost;
  }
  console.log(`  rebuilt total ${usd(rebuilt)}; the contract charged ${usd(event.args.totalCost)}: ${rebuilt === event.args.totalCost ? "match" : "MISMATCH"}`);

  step("summary");
  const after = await tollgate.accountOf(buyer.address);
  console.log(`  buyer balance  ${usd(before.balance)} -> ${usd(after.balance)}`);
  console.log(
    `  buyer credits  ${creditsBefore} -> ${await credits.balanceOf(buyer.address, 1)}` +
      ` (+ ${usd(await tollgate.creditChangeOf(buyer.address, 1))} change left from the last one)`,
  );
  console.log(`  provider earnings ${usd(await tollgate.earningsOf(1))}, protocol fees ${usd(await tollgate.protocolFeesAccrued())}`);
  console.log(`  shortfall ${usd(event.args.totalShortfall)}, next sequence of the gateway key ${(await tollgate.signerOf(gateway.address)).nextSequence}`);
  const held = await token.balanceOf(address);
  const owed = after.balance + after.pendingWithdrawal + (await tollgate.earningsOf(1)) + (await tollgate.protocolFeesAccrued());
  console.log(`  vault holds ${usd(held)}, owes ${usd(owed)}: ${held === owed ? "conserved" : "NOT CONSERVED"}`);
  if (rebuilt !== event.args.totalCost || held !== owed) process.exitCode = 1;
}

main().catch((error) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
});
