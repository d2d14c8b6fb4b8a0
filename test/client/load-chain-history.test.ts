/**
 * `loadChainHistory` over Hardhat's chain: every log the auditor needs, each block's time, and each settled
 * batch's data from wherever it is (the transaction's calldata, or BatchDataPublished for a relayed batch).
 */
import hre, { ethers } from "hardhat";
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { createPublicClient, custom, keccak256, toHex, type Address, type PublicClient } from "viem";
import { buyCredits, defineCreditPlan, deposit } from "../../client";
import { batchKey } from "../../client/audit/chain-history";
import { loadChainHistory } from "../../client/audit/load-chain-history";
import { deployMarketplace, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { tollgateAbi } from "../../server/chain/abis";
import { signedUsageBatch } from "../../server/chain/sign-batch";
import type { UsageRecord } from "../../server/chain/usage-batch";
import { decodeEventLog, type Hex } from "viem";

interface SettledMarket {
  market: Marketplace;
  tollgate: Address;
  /** Settlement transactions in order, with how each was sent. */
  settlements: { hash: Hex; relayed: boolean }[];
}

/** Deposits, a credit purchase and three batches: two sent by an account, one through BatchRelay. */
async function settledMarket(): Promise<SettledMarket> {
  const market = await deployMarketplace();
  const tollgate = (await market.tollgate.getAddress()) as Address;
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
  return { market, tollgate, settlements };
}

function inProcessClient(): PublicClient {
  return createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
}

describe("loadChainHistory", function () {
  let market: SettledMarket;

  before(async function () {
    market = await settledMarket();
  });

  it("gathers every log in chain order, each block's time, and each batch from its calldata or its event", async function () {
    const client = inProcessClient();
    const history = await loadChainHistory(client, { tollgate: market.tollgate });
    expect(history.tollgate).to.equal(market.tollgate);
    expect(history.credits).to.equal(await market.market.tollgate.credits());
    expect(history.paymentToken).to.equal(await market.market.token.getAddress());
    expect(history.auditBlock).to.equal(await client.getBlockNumber());
    for (let i = 1; i < history.logs.length; i++) {
      const [p, q] = [history.logs[i - 1], history.logs[i]];
      expect(p.blockNumber < q.blockNumber || (p.blockNumber === q.blockNumber && p.logIndex < q.logIndex), `log ${i} in order`).to.equal(true);
    }
    for (const log of history.logs) {
      const block = await client.getBlock({ blockNumber: log.blockNumber });
      expect(history.blockTimes.get(log.blockNumber)).to.equal(Number(block.timestamp));
    }
    const settledLogs = history.logs.filter((log) => {
      try {
        return decodeEventLog({ abi: tollgateAbi, topics: log.topics as [Hex], data: log.data }).eventName === "BatchSettled";
      } catch {
        return false;
      }
    });
    expect(settledLogs.map((log) => log.transactionHash)).to.deep.equal(market.settlements.map((s) => s.hash));
    expect(history.batches.size).to.equal(3);
    for (const [i, log] of settledLogs.entries()) {
      const source = history.batches.get(batchKey(log))!;
      expect(source.kind).to.equal(market.settlements[i].relayed ? "event" : "calldata");
      if (source.kind === "unavailable") throw new Error(source.reason);
      expect(source.batch.firstSequence).to.equal(BigInt(i * 5));
    }
  });
});
