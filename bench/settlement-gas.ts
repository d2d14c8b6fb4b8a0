/**
 * Gas per settled record, by batch size and buyer count, beside the gas of the simplest per-call
 * settlement (a buyer-signed EIP-3009 transfer per call, as x402 pays), measured in one run; and the same
 * batches from buyers who hold a subscription covering the models (every record drawn from included value),
 * side by side with the buyers who do not.
 *
 *   npm run bench:gas
 */
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import { keccak256, toHex, type Address } from "viem";
import { buyCredits, defineCreditPlan, defineSubscriptionPlan, deposit, mintTestTokens, subscribe } from "../client";
import { deployMarketplace, USD } from "../scripts/lib/marketplace-fixtures";
import { signedUsageBatch } from "../server/chain/sign-batch";
import type { UsageRecord } from "../server/chain/usage-batch";

const BATCH_SIZES = [1, 10, 100, 1_000];
const BUYER_COUNTS = [1, 10, 100];

/** Deterministic, realistic-looking counts: prompts of 200-4,000 tokens, a third partly cached. */
function countsFor(i: number) {
  const inputTokens = 200 + ((i * 7919) % 3_800);
  const cachedInputTokens = i % 3 === 0 ? Math.floor(inputTokens / 2) : 0;
  const outputTokens = 50 + ((i * 104_729) % 950);
  return { inputTokens, cachedInputTokens, outputTokens };
}

async function main() {
  const market = await deployMarketplace();
  const { tollgate, token, provider, gateway, providerId } = market;
  const [funder] = await ethers.getSigners();
  const tollgateAddress = await tollgate.getAddress();
  const funderClient = market.clientOf(funder.address as Address);

  const maxBuyers = Math.max(...BUYER_COUNTS);
  process.stderr.write(`funding ${maxBuyers} buyers...\n`);
  const buyers: Address[] = [];
  await mintTestTokens(funderClient, { amount: USD(10_000_000) });
  // One standing allowance for the 200 deposits and purchases below, instead of an exact approve before each.
  await token.connect(funder).approve(tollgateAddress, ethers.MaxUint256);
  for (let i = 0; i < maxBuyers; i++) {
    const buyer = privateKeyToAccount(generatePrivateKey()).address;
    await deposit(funderClient, { amount: USD(1_000), buyer });
    buyers.push(buyer);
  }

  // A credit plan on both models; every bench buyer holds credits of it for the "credits" rows.
  const { planId } = await defineCreditPlan(market.clientOf(provider.address as Address), {
    providerId: Number(providerId),
    pricePerCredit: 9_000n,
    valuePerCredit: 10_000n,
    modelIds: [Number(market.smallModel), Number(market.largeModel)],
  });
  for (const buyer of buyers) await buyCredits(funderClient, { planId, count: 100_000n, payFrom: "wallet", recipient: buyer });

  // As many buyers again, each subscribed to a plan on both models whose included value covers every record below.
  process.stderr.write(`subscribing ${maxBuyers} other buyers...\n`);
  const { planId: subscriptionPlanId } = await defineSubscriptionPlan(market.clientOf(provider.address as Address), {
    providerId: Number(providerId),
    periodSeconds: 30 * 24 * 3600,
    price: USD(1),
    includedValue: USD(1_000_000),
    modelIds: [Number(market.smallModel), Number(market.largeModel)],
    overage: "billBalance",
  });
  const subscribers: Address[] = [];
  for (let i = 0; i < maxBuyers; i++) {
    const account = privateKeyToAccount(generatePrivateKey());
    await hre.network.provider.request({ method: "hardhat_setBalance", params: [account.address, toHex(10n ** 18n)] });
    await deposit(funderClient, { amount: USD(1_000), buyer: account.address });
    await subscribe(market.clientOf(account), { planId: subscriptionPlanId });
    subscribers.push(account.address);
  }
  await time.increase(3_600); // calls below are served within the last 10 minutes, after the listing
  let sequence = 0n;
  // Warm-up batch so every buyer's account has been charged before (steady state, not first use).
  const rows: { records: number; buyers: number; credits: boolean; relayed: boolean; subscribed: boolean; gas: bigint }[] = [];
  const plain = BATCH_SIZES.flatMap((size) => BUYER_COUNTS.filter((b) => b <= size).map((b) => ({ size, buyerCount: b, credits: false, relayed: false, subscribed: false })));
  const scenarios = [
    ...plain,
    // The same batches from subscribed buyers: settlement asks TollgateSubscriptions to draw each one's included value.
    ...plain.map((scenario) => ({ ...scenario, subscribed: true })),
    { size: 1_000, buyerCount: 100, credits: true, relayed: false, subscribed: false },
    // Through a relaying contract, the batch's data is published in BatchDataPublished for the auditor:
    // these rows price that against the same batches sent by an account directly (above).
    ...[1, 100, 1_000].map((size) => ({ size, buyerCount: Math.min(size, 100), credits: false, relayed: true, subscribed: false })),
  ];
  const relay = await (await ethers.getContractFactory("BatchRelay")).deploy();
  for (const warm of [true, false]) {
    for (const { size, buyerCount, credits, relayed, subscribed } of scenarios) {
      {
        const latest = (await ethers.provider.getBlock("latest"))!.timestamp;
        const records: UsageRecord[] = Array.from({ length: size }, (_, i) => ({
          sequence: sequence + BigInt(i),
          buyer: (subscribed ? subscribers : buyers)[i % buyerCount],
          modelId: i % 2 === 0 ? 1 : 2,
          priceEpoch: 0,
          ...countsFor(i),
          servedAt: latest - 600 + Math.floor((i * 600) / size),
          receiptHash: keccak256(toHex(`receipt ${sequence + BigInt(i)}`)),
        }));
        const plans = new Map<Address, number>(credits ? buyers.map((b) => [b, Number(planId)] as [Address, number]) : []);
        const { batch, signature } = await signedUsageBatch(gateway, { chainId: market.chainId, address: tollgateAddress as Address }, records, plans);
        const sent = relayed
          ? relay.connect(provider).relay(tollgateAddress, [tollgate.interface.encodeFunctionData("settleBatch", [batch, signature])])
          : tollgate.connect(provider).settleBatch(batch, signature);
        const receipt = await (await sent).wait();
        sequence += BigInt(size);
        if (!warm) rows.push({ records: size, buyers: buyerCount, credits, relayed, subscribed, gas: receipt!.gasUsed });
        process.stderr.write(".");
      }
    }
  }
  process.stderr.write("\n");

  // Baseline: one on-chain transfer per call, authorized by the buyer's signature (EIP-3009).
  const payer = privateKeyToAccount(generatePrivateKey());
  await token.mint(payer.address, USD(1_000));
  const { chainId } = await ethers.provider.getNetwork();
  const baselineGas: bigint[] = [];
  for (let i = 0; i < 5; i++) {
    const nonce = keccak256(toHex(`x402 call ${i}`));
    const message = {
      from: payer.address,
      to: provider.address as Address,
      value: 1_234n,
      validAfter: 0n,
      validBefore: 2n ** 40n,
      nonce,
    };
    const signature = await payer.signTypedData({
      domain: { name: "Tollgate Test USD", version: "1", chainId: Number(chainId), verifyingContract: (await token.getAddress()) as Address },
      types: {
        TransferWithAuthorization: [
          { name: "from", type: "address" },
          { name: "to", type: "address" },
          { name: "value", type: "uint256" },
          { name: "validAfter", type: "uint256" },
          { name: "validBefore", type: "uint256" },
          { name: "nonce", type: "bytes32" },
        ],
      },
      primaryType: "TransferWithAuthorization",
      message,
    });
    const { v, r, s } = ethers.Signature.from(signature);
    const tx = await token
      .connect(funder)
      .transferWithAuthorization(message.from, message.to, message.value, message.validAfter, message.validBefore, nonce, v, r, s);
    baselineGas.push((await tx.wait())!.gasUsed);
  }
  const baseline = baselineGas.reduce((a, b) => a + b) / BigInt(baselineGas.length);

  const lines = [
    `Settlement gas per record (Hardhat network, hardfork ${hre.config.networks.hardhat.hardfork}, provider ${providerId}; gas includes the 21,000 base and calldata)`,
    "",
    "| records per batch | buyers | paid from | submitted | gas per batch | gas per record | x below per-call baseline |",
    "|---:|---:|:---|:---|---:|---:|---:|",
    ...rows.filter((row) => !row.subscribed).map((row) => {
      const perRecord = row.gas / BigInt(row.records);
      const ratio = Number((baseline * 100n) / perRecord) / 100;
      const via = row.relayed ? "via a relay contract" : "by an account";
      return `| ${row.records} | ${row.buyers} | ${row.credits ? "credits first" : "balance"} | ${via} | ${row.gas} | ${perRecord} | ${ratio.toFixed(1)} |`;
    }),
    "",
    ...[1, 100, 1_000].map((size) => {
      const direct = rows.find((row) => row.records === size && row.buyers === Math.min(size, 100) && !row.credits && !row.relayed && !row.subscribed)!;
      const relayedRow = rows.find((row) => row.records === size && row.relayed)!;
      const extra = (relayedRow.gas - direct.gas) / BigInt(size);
      return `Relayed, ${size} record(s) over ${Math.min(size, 100)} buyer(s): ${extra} gas per record more than sent directly (the relay's own call included).`;
    }),
    "",
    `Baseline: one EIP-3009 transferWithAuthorization per call (x402 style): ${baseline} gas per call.`,
    "",
    "Subscribed buyers (every record drawn from a subscription's included value) beside the same batches from buyers without one:",
    "",
    "| records per batch | buyers | gas per record, no subscription | gas per record, subscribed | more per record | more per batch | subscribed / not |",
    "|---:|---:|---:|---:|---:|---:|---:|",
    ...plain.map(({ size, buyerCount }) => {
      const find = (subscribed: boolean) => rows.find((row) => row.records === size && row.buyers === buyerCount && !row.credits && !row.relayed && row.subscribed === subscribed)!;
      const without = find(false);
      const with_ = find(true);
      const ratio = Number((with_.gas * 1000n) / without.gas) / 1000;
      return `| ${size} | ${buyerCount} | ${without.gas / BigInt(size)} | ${with_.gas / BigInt(size)} | ${(with_.gas - without.gas) / BigInt(size)} | ${with_.gas - without.gas} | ${ratio.toFixed(3)} |`;
    }),
  ];
  console.log(lines.join("\n"));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
