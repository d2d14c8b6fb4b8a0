/**
 * A small settled marketplace for the audit's loader and CLI tests: deposits, a credit purchase, and three
 * batches of five records, two sent by an account and one through BatchRelay (so its data is only in
 * BatchDataPublished), then a few empty blocks.
 */
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toHex, type Address, type Hex } from "viem";
import { buyCredits, defineCreditPlan, deposit } from "../../client";
import { deployMarketplace, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { signedUsageBatch } from "../../server/chain/sign-batch";
import type { UsageRecord } from "../../server/chain/usage-batch";

export interface SettledMarket {
  market: Marketplace;
  tollgate: Address;
  deployBlock: bigint;
  relay: Address;
  /** Settlement transactions in order, with how each was sent. */
  settlements: { hash: Hex; relayed: boolean }[];
}

/** Deposits, a credit purchase and three batches: two sent by an account, one through BatchRelay. */
export async function settledMarket(): Promise<SettledMarket> {
  const market = await deployMarketplace();
  const tollgate = (await market.tollgate.getAddress()) as Address;
  const deployBlock = BigInt((await market.tollgate.deploymentTransaction()!.wait())!.blockNumber);
  const [a, b] = market.buyers;
  await deposit(market.clientOf(a.address as Address), { amount: USD(100) });
  await deposit(market.clientOf(b.address as Address), { amount: USD(50) });
  const { planId } = await defineCreditPlan(market.clientOf(market.provider.address as Address), {
    providerId: Number(market.providerId),
    pricePerCredit: 9_000n,
    valuePerCredit: 10_000n,
    modelIds: [Number(market.smallModel)],
  });
  await buyCredits(market.clientOf(b.address as Address), { planId, count: 10n, payFrom: "wallet" });
  const relay = await (await ethers.getContractFactory("BatchRelay")).deploy();
  await time.increase(3_600); // calls are served after the listing, in the price epoch that began with it
  const settlements: SettledMarket["settlements"] = [];
  let sequence = 0n;
  for (const relayed of [false, true, false]) {
    const latest = (await ethers.provider.getBlock("latest"))!.timestamp;
    const records: UsageRecord[] = Array.from({ length: 5 }, (_, i) => ({
      sequence: sequence + BigInt(i),
      buyer: (i % 2 === 0 ? a.address : b.address) as Address,
      modelId: Number(i % 3 === 0 ? market.largeModel : market.smallModel),
      priceEpoch: 0,
      inputTokens: 1_000 + i,
      cachedInputTokens: i * 10,
      outputTokens: 200 + i,
      servedAt: latest - 30 + i,
      receiptHash: keccak256(toHex(`receipt ${sequence + BigInt(i)}`)),
    }));
    const { batch, signature } = await signedUsageBatch(market.gateway, { chainId: market.chainId, address: tollgate }, records, new Map([[b.address as Address, Number(planId)]]));
    const sent = relayed
      ? relay.connect(market.others[0]).relay(tollgate, [market.tollgate.interface.encodeFunctionData("settleBatch", [batch, signature])])
      : market.tollgate.connect(market.others[0]).settleBatch(batch, signature);
    const receipt = (await (await sent).wait())!;
    settlements.push({ hash: receipt.hash as Hex, relayed });
    sequence += BigInt(records.length);
  }
  // Blocks with no log of ours after the last batch, so the scan has empty chunks too.
  await hre.network.provider.send("hardhat_mine", ["0x5"]);
  return { market, tollgate, deployBlock, relay: (await relay.getAddress()) as Address, settlements };
}

