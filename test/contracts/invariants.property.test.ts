/**
 * Property test: random sequences of buyer, provider, gateway and attacker operations against a fresh
 * marketplace, checking after every single step that
 *  - (invariant 1) the vault's token balance equals every buyer's balance + pending withdrawal + unclaimed dispute
 *    award, plus every provider's earnings and bond (available + pending), plus the uncollected protocol fees;
 *  - (invariant 5) a buyer's balance + pending only ever goes down by its own withdraw / credit purchase from
 *    balance / subscription, a renewal of a subscription it took out (anyone may trigger it, at the plan's price,
 *    from the spendable balance only), or by a settlement signed by an authorized gateway key; adversarial batches (unknown key,
 *    revoked key, replay, wrong first sequence, tampered, cross-provider) revert and change nothing;
 *  - every settlement's BatchSettled event balances (earnings + fee == what left buyers' accounts) and the
 *    signer's sequence advances by exactly the record count;
 *  - bonds are posted by anyone, leave only after their delay, and pay a proof of equivocation (a gateway key
 *    signing two receipts for one sequence) once, compromising the key, into an award bucket that pays out in
 *    tokens only BOND_WITHDRAWAL_DELAY after the beneficiary's latest award (never into a spendable balance);
 *  - subscriptions (subscribe, cancel, renew across periods, included usage drawn in settlement before credits and
 *    balance, overage billed or refused as shortfall, no rollover) keep all of the above;
 *  - the whole state (accounts, credits, earnings, fees, bonds, wallets, limits, sequences, signer standing,
 *    subscriptions and the included usage drawn per period) matches a
 *    TypeScript model of the NatSpec (`test/helpers/model.ts`), including which operations revert and why.
 */
import { expect } from "chai";
import { permitTypesForEthers } from "../../server/chain/permit";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toHex, type Address, type Hex, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { Contract, type ContractTransactionReceipt, type ContractTransactionResponse } from "ethers";
import { deployMarketplace, FEE_BPS, LARGE_PRICES, PRICE_NOTICE, SMALL_PRICES, USD, WITHDRAWAL_DELAY } from "../../scripts/lib/marketplace-fixtures";
import { commitmentPrefix, encodeUsageBatch, type UsageBatch, type UsageRecord } from "../../server/chain/usage-batch";
import { signUsageBatch, signUsageReceipt } from "../../server/chain/sign-batch";
import type { UsageReceipt } from "../../server/chain/usage-batch";
import type { TollgateSubscriptions } from "../../typechain-types";
import { BOND_WITHDRAWAL_DELAY, DISPUTE_WINDOW, MarketModel, type SubscriptionState, type AwardState, type BondState, type ModelRecord, type Prices, type Revert, type SettlementResult } from "../helpers/model";

// ---------------------------------------------------------------------------------------------------------
// Configuration

// Hundreds of random operation sequences by default (about 2 s each here); INVARIANT_RUNS=n for more or fewer.
const NUM_RUNS = Number(process.env.INVARIANT_RUNS ?? 200);
// Not a speed check: only a bound on shrinking, which replays whole Hardhat runs after a failure.
const TIME_LIMIT_MS = Number(process.env.INVARIANT_TIME_LIMIT_MS ?? NUM_RUNS * 15_000);
const MIN_OPS = 10;
const MAX_OPS = 25;
const DAY = 24 * 3600;
/** Records are served at most this long before settlement (keeps offsets far below 2^24 seconds). */
const MAX_AGE = 150 * DAY;

const P2_PRICES: Prices = { input: 1_000_000n, cachedInput: 400_000n, output: 3_000_000n };
/** Plan 1: provider 1, both models, $0.90 for $1 of usage, never expires. */
const PLAN1 = { price: 900_000n, value: 1_000_000n };
/** Plan 2: provider 1, small model only, $0.45 for $0.50, expires two days after setup. */
const PLAN2 = { price: 450_000n, value: 500_000n };
/** Plan 3: provider 2's only model, $2 for $2.50. */
const PLAN3 = { price: 2_000_000n, value: 2_500_000n };
const PLAN_IDS = [1, 2, 3];
/** Subscription plan 1: provider 1, small model, $0.30 a 2-day period including $0.20, overage billed. */
const SUB1 = { providerId: 1, period: 2 * DAY, price: 300_000n, included: 200_000n, mask: 1n, refuse: false };
/** Subscription plan 2: provider 1, both models, $0.50 a 1-day period including $0.15, overage refused (short periods, so renewals, catch-ups and unpaid ends happen within a run). */
const SUB2 = { providerId: 1, period: DAY, price: 500_000n, included: 150_000n, mask: 3n, refuse: true };
/** Subscription plan 3: provider 2's model, $1 a 30-day period including $2, overage billed. */
const SUB3 = { providerId: 2, period: 30 * DAY, price: 1_000_000n, included: 2_000_000n, mask: 1n, refuse: false };
const SUB_PLANS = [SUB1, SUB2, SUB3];

// ---------------------------------------------------------------------------------------------------------
// Fixture: the shared marketplace plus a one-time setup the property runs start from.

async function invariantFixture() {
  const m = await deployMarketplace();
  // Served times must come after the models' listing.
  await time.increase(3600);
  const { tollgate, provider, others, buyers } = m;
  const now = await time.latest();

  const plan2Expiry = now + 2 * DAY;
  await tollgate.connect(provider).defineCreditPlan(1, PLAN1.price, PLAN1.value, [1, 2], 0);
  await tollgate.connect(provider).defineCreditPlan(1, PLAN2.price, PLAN2.value, [1], plan2Expiry);

  // A second provider with its own gateway key, model and plan; paid out to a separate address.
  const [provider2, unfunded, payout2] = others;
  await tollgate.connect(provider2).registerProvider(payout2.address, "ipfs://provider-2");
  await tollgate.connect(provider2).listModel(2, "p2-model", P2_PRICES);
  const gateway2 = privateKeyToAccount(generatePrivateKey());
  await tollgate.connect(provider2).setSignerAuthorization(2, gateway2.address, true);
  await tollgate.connect(provider2).defineCreditPlan(2, PLAN3.price, PLAN3.value, [3], 0);

  // A key of provider 1 that was authorized once and then revoked.
  const revoked = privateKeyToAccount(generatePrivateKey());
  await tollgate.connect(provider).setSignerAuthorization(1, revoked.address, true);
  await tollgate.connect(provider).setSignerAuthorization(1, revoked.address, false);

  // A key of provider 1 that never settles: the equivocation operations convict it.
  const disputed = privateKeyToAccount(generatePrivateKey());
  await tollgate.connect(provider).setSignerAuthorization(1, disputed.address, true);
  // Bonds behind both providers' keys, posted by others (anyone may).
  await tollgate.connect(buyers[0]).postBond(1, USD(40));
  await tollgate.connect(buyers[1]).postBond(2, USD(20));

  // Varied starting balances; the last fixture buyer starts with nothing in the vault.
  for (let i = 0; i < buyers.length - 1; i++) {
    await tollgate.connect(buyers[i]).deposit(buyers[i].address, USD(15 * (i + 1)));
  }
  // Some credits to start with, including for buyers with no balance to fall back on.
  await tollgate.connect(buyers[0]).buyCredits(1, 3, buyers[0].address);
  await tollgate.connect(buyers[0]).buyCredits(1, 2, buyers[7].address);
  await tollgate.connect(buyers[1]).buyCredits(3, 2, unfunded.address);
  await tollgate.connect(buyers[2]).buyCredits(2, 4, buyers[2].address);
  await tollgate.connect(buyers[3]).buyCreditsWithBalance(3, 3, buyers[3].address);
  // Spending caps, one on a buyer whose only money is credits.
  await tollgate.connect(buyers[1]).setSpendingLimit(1, USD(2), DAY);
  await tollgate.connect(buyers[4]).setSpendingLimit(1, 50_000, 3600);
  await tollgate.connect(buyers[7]).setSpendingLimit(1, 300_000, DAY);
  await tollgate.connect(buyers[3]).setSpendingLimit(2, USD(1), DAY);
  // Pending withdrawals, which settlement may still draw on.
  await tollgate.connect(buyers[5]).requestWithdrawal(USD(60));
  await tollgate.connect(buyers[6]).requestWithdrawal(USD(105));
  // Subscription plans, and subscriptions some buyers already hold (one of them with a credit plan and a cap too).
  const subs = (await ethers.getContractAt("TollgateSubscriptions", await tollgate.subscriptions())) as unknown as TollgateSubscriptions;
  for (const plan of SUB_PLANS) {
    const owner = plan.providerId === 1 ? provider : provider2;
    await subs.connect(owner).defineSubscriptionPlan(plan.providerId, plan.period, plan.price, plan.included, plan.providerId === 1 ? (plan.mask === 1n ? [1] : [1, 2]) : [3], plan.refuse ? 1 : 0);
  }
  await subs.connect(buyers[0]).subscribe(1);
  await subs.connect(buyers[2]).subscribe(2);
  await subs.connect(buyers[3]).subscribe(3);
  await subs.connect(buyers[4]).subscribe(1);
  // A price change already in force for the small model, and one still ahead for provider 2's model.
  await tollgate.connect(provider).scheduleModelPrice(1, { input: 200_000n, cachedInput: 50_000n, output: 800_000n });
  await time.increase(Number(PRICE_NOTICE) + 1);
  await tollgate.connect(provider2).scheduleModelPrice(3, { input: 900_000n, cachedInput: 300_000n, output: 2_700_000n });
  return { ...m, gateway2, revoked, disputed, provider2, unfunded, payout2, plan2Expiry, subs };
}

type Fixture = Awaited<ReturnType<typeof invariantFixture>>;
type Actor = Fixture["buyers"][number];

// ---------------------------------------------------------------------------------------------------------
// Operations

const N_BUYERS = 9; // the 8 fixture buyers + one account that never got tokens or approved the vault
const who = fc.integer({ min: 0, max: N_BUYERS - 1 });

type AgeSpec = { kind: "random"; permille: number } | { kind: "now" } | { kind: "epochStart"; epoch: number; minus: boolean };

interface RecordSpec {
  buyer: number;
  model: number;
  input: number;
  cachedPct: number;
  output: number;
  age: AgeSpec;
}

interface BatchSpec {
  provider: 1 | 2;
  records: RecordSpec[];
  /** Per buyer index: 0 = no plan named, else which of the provider's plans. */
  plans: number[];
}

type PermitVariant = "valid" | "frontRun" | "badSignature" | "expired";
type Attack = "unauthorized" | "revoked" | "replay" | "wrongSequence" | "tampered" | "crossPlan" | "crossModel";

type Op =
  | { kind: "deposit"; payer: number; buyer: number; amount: bigint }
  | { kind: "depositWithPermit"; payer: number; buyer: number; amount: bigint; permit: PermitVariant; frontRunner: number }
  | { kind: "approve"; owner: number; amount: bigint }
  | { kind: "setPaused"; paused: boolean; byOwner: boolean }
  | { kind: "requestWithdrawal"; buyer: number; amount: { pct: number } | { abs: bigint } }
  | { kind: "cancelWithdrawal"; buyer: number }
  | { kind: "withdraw"; buyer: number; wait: "none" | "delay" | "exact" | "justBefore" }
  | { kind: "buyCredits"; payer: number; recipient: number; plan: number; amount: bigint }
  | { kind: "buyCreditsWithBalance"; payer: number; recipient: number; plan: number; amount: bigint }
  | { kind: "transferCredits"; from: number; to: number; plan: number; pct: number; extra: bigint }
  | { kind: "setSpendingLimit"; buyer: number; provider: number; limit: bigint; period: number }
  | { kind: "clearSpendingLimit"; buyer: number; provider: number }
  | { kind: "schedulePrice"; model: number; byOwner: boolean; prices: Prices; advance: number }
  | { kind: "settle"; batch: BatchSpec }
  | { kind: "withdrawEarnings"; provider: 1 | 2; byOwner: boolean }
  | { kind: "collectProtocolFees"; caller: number }
  | { kind: "attack"; attack: Attack; batch: BatchSpec; pick: number; seqDelta: number }
  | { kind: "postBond"; payer: number; provider: 1 | 2 | 3; amount: bigint }
  | { kind: "requestBondWithdrawal"; provider: 1 | 2; byOwner: boolean; amount: { pct: number } | { abs: bigint } }
  | { kind: "cancelBondWithdrawal"; provider: 1 | 2; byOwner: boolean }
  | { kind: "withdrawBond"; provider: 1 | 2; byOwner: boolean; wait: "none" | "delay" | "exact" | "justBefore" }
  | { kind: "equivocate"; caller: number; a: number; b: number; sequence: number; age: number; forged: boolean }
  | { kind: "claimAwards"; caller: number; holder: boolean; wait: "none" | "delay" | "exact" | "justBefore" }
  | { kind: "subscribe"; buyer: number; plan: number }
  | { kind: "cancelSubscription"; buyer: number; provider: 1 | 2 }
  | { kind: "renew"; caller: number; buyer: number; provider: 1 | 2 }
  | { kind: "advanceTime"; seconds: number };

const smallAmount = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0n) },
  { weight: 3, arbitrary: fc.bigInt({ min: 1n, max: 10_000n }) },
  { weight: 6, arbitrary: fc.bigInt({ min: 1n, max: USD(200) }) },
  { weight: 1, arbitrary: fc.bigInt({ min: USD(900), max: USD(3_000) }) },
);

const tokenCount = fc.oneof(
  { weight: 2, arbitrary: fc.constant(0) },
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 30_000 }) },
  { weight: 4, arbitrary: fc.integer({ min: 30_000, max: 5_000_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 31, max: 2 ** 32 - 1 }) },
);

const ageSpec: fc.Arbitrary<AgeSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("random" as const), permille: fc.integer({ min: 0, max: 1000 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "now" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("epochStart" as const), epoch: fc.nat(6), minus: fc.boolean() }),
  },
);

const recordSpec: fc.Arbitrary<RecordSpec> = fc.record({
  buyer: who,
  model: fc.integer({ min: 0, max: 1 }),
  input: tokenCount,
  cachedPct: fc.oneof(fc.constant(0), fc.constant(100), fc.integer({ min: 0, max: 100 })),
  output: tokenCount,
  age: ageSpec,
});

const batchSpec: fc.Arbitrary<BatchSpec> = fc.record({
  provider: fc.oneof({ weight: 3, arbitrary: fc.constant(1 as const) }, { weight: 1, arbitrary: fc.constant(2 as const) }),
  records: fc.array(recordSpec, { minLength: 1, maxLength: 10 }),
  plans: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: N_BUYERS, maxLength: N_BUYERS }),
});

const priceArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0n) },
  { weight: 8, arbitrary: fc.bigInt({ min: 1n, max: 20_000_000n }) },
  { weight: 1, arbitrary: fc.constant((1n << 72n) - 1n) },
  { weight: 1, arbitrary: fc.constant(1n << 72n) },
);

const creditAmount = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0n) },
  { weight: 8, arbitrary: fc.bigInt({ min: 1n, max: 40n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 1_000n, max: 10_000n }) },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("deposit" as const), payer: who, buyer: who, amount: smallAmount }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("depositWithPermit" as const),
      payer: who,
      buyer: who,
      amount: smallAmount,
      permit: fc.constantFrom<PermitVariant>("valid", "frontRun", "badSignature", "expired"),
      frontRunner: who,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("approve" as const),
      owner: who,
      amount: fc.oneof({ weight: 3, arbitrary: fc.constant(ethers.MaxUint256) }, { weight: 1, arbitrary: smallAmount }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("setPaused" as const),
      paused: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 2, arbitrary: fc.constant(false) }),
      byOwner: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("requestWithdrawal" as const),
      buyer: who,
      amount: fc.oneof(
        { weight: 4, arbitrary: fc.record({ pct: fc.integer({ min: 0, max: 101 }) }) },
        { weight: 1, arbitrary: fc.record({ abs: smallAmount }) },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("cancelWithdrawal" as const), buyer: who }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("withdraw" as const),
      buyer: who,
      wait: fc.constantFrom("none" as const, "delay" as const, "exact" as const, "justBefore" as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("buyCredits" as const),
      payer: who,
      recipient: who,
      plan: fc.integer({ min: 1, max: 4 }),
      amount: creditAmount,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("buyCreditsWithBalance" as const),
      payer: who,
      recipient: who,
      plan: fc.integer({ min: 1, max: 4 }),
      amount: creditAmount,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("transferCredits" as const),
      from: who,
      to: who,
      plan: fc.constantFrom(...PLAN_IDS),
      pct: fc.integer({ min: 0, max: 100 }),
      extra: fc.oneof({ weight: 5, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 3n }) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("setSpendingLimit" as const),
      buyer: who,
      provider: fc.constantFrom(1, 2, 2, 3),
      limit: fc.oneof(
        fc.constant(0n),
        fc.bigInt({ min: 1n, max: 50_000n }),
        fc.bigInt({ min: USD(1), max: USD(100) }),
        fc.constant((1n << 96n) - 1n),
        fc.constant(1n << 96n),
      ),
      period: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 3600 }),
        fc.constant(DAY),
        fc.constant(30 * DAY),
        fc.constant(366 * DAY),
        fc.constant(366 * DAY + 1),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("clearSpendingLimit" as const), buyer: who, provider: fc.constantFrom(1, 2) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("schedulePrice" as const),
      model: fc.constantFrom(1, 2, 3),
      byOwner: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      prices: fc.record({ input: priceArb, cachedInput: priceArb, output: priceArb }),
      advance: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: Number(PRICE_NOTICE) - 1 }),
        fc.constant(Number(PRICE_NOTICE)),
        fc.integer({ min: Number(PRICE_NOTICE) + 1, max: 3 * Number(PRICE_NOTICE) }),
      ),
    }),
  },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant("settle" as const), batch: batchSpec }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("withdrawEarnings" as const),
      provider: fc.constantFrom(1 as const, 2 as const),
      byOwner: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("collectProtocolFees" as const), caller: who }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("attack" as const),
      attack: fc.constantFrom<Attack>("unauthorized", "revoked", "replay", "wrongSequence", "tampered", "crossPlan", "crossModel"),
      batch: batchSpec,
      pick: fc.nat(1_000_000),
      seqDelta: fc.oneof(fc.constant(1), fc.constant(-1), fc.integer({ min: 2, max: 1_000 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("postBond" as const),
      payer: who,
      provider: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1 as const, 2 as const) }, { weight: 1, arbitrary: fc.constant(3 as const) }),
      amount: fc.oneof({ weight: 6, arbitrary: smallAmount }, { weight: 1, arbitrary: fc.constant(0n) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("requestBondWithdrawal" as const),
      provider: fc.constantFrom(1 as const, 2 as const),
      byOwner: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      amount: fc.oneof(
        { weight: 4, arbitrary: fc.record({ pct: fc.integer({ min: 0, max: 101 }) }) },
        { weight: 1, arbitrary: fc.record({ abs: smallAmount }) },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("cancelBondWithdrawal" as const),
      provider: fc.constantFrom(1 as const, 2 as const),
      byOwner: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("withdrawBond" as const),
      provider: fc.constantFrom(1 as const, 2 as const),
      byOwner: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      wait: fc.constantFrom("none" as const, "delay" as const, "exact" as const, "justBefore" as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("equivocate" as const),
      caller: who,
      a: who,
      b: who,
      // A few sequences only, so the same one is proven twice now and then.
      sequence: fc.integer({ min: 0, max: 3 }),
      age: fc.oneof(fc.integer({ min: 0, max: 3_600 }), fc.constant(DISPUTE_WINDOW), fc.constant(DISPUTE_WINDOW + 1)),
      forged: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("claimAwards" as const),
      caller: who,
      // Mostly a buyer holding an award (when one does), else anyone.
      holder: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      wait: fc.constantFrom("none" as const, "delay" as const, "exact" as const, "justBefore" as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("subscribe" as const), buyer: who, plan: fc.integer({ min: 1, max: 4 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("cancelSubscription" as const), buyer: who, provider: fc.constantFrom(1 as const, 2 as const) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("renew" as const), caller: who, buyer: who, provider: fc.constantFrom(1 as const, 2 as const) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advanceTime" as const),
      seconds: fc.oneof(
        fc.integer({ min: 1, max: 3600 }),
        fc.constant(DAY),
        fc.constant(Number(WITHDRAWAL_DELAY) + 1),
        fc.constant(BOND_WITHDRAWAL_DELAY),
        fc.constant(30 * DAY),
      ),
    }),
  },
);

// ---------------------------------------------------------------------------------------------------------
// Chain snapshots

interface AccountSnap {
  balance: bigint;
  pending: bigint;
  withdrawableAt: number;
}

interface Snap {
  accounts: Record<string, AccountSnap>;
  credits: Record<string, bigint>;
  creditChange: Record<string, bigint>;
  limits: Record<string, { limit: bigint; period: number; windowStart: number; spent: bigint }>;
  earnings: Record<number, bigint>;
  fees: bigint;
  wallets: Record<string, bigint>;
  allowances: Record<string, bigint>;
  sequences: Record<string, bigint>;
  /** Each signer key's [authorized, compromised]. */
  standing: Record<string, [boolean, boolean]>;
  bonds: Record<number, BondState>;
  /** Each buyer's unclaimed dispute award. */
  awards: Record<string, AwardState>;
  paused: boolean;
  /** Each buyer's subscription to each provider (`buyer:provider`). */
  subscriptions: Record<string, SubscriptionState>;
  /** Included value drawn, by `subscriptionId:period`, for every paid period of those subscriptions. */
  included: Record<string, bigint>;
}

/** The ERC-1155 surface the test uses: Tollgate's own, or that of the token `credits()` points to. */
const ERC1155_ABI = [
  "function balanceOfBatch(address[] accounts, uint256[] ids) view returns (uint256[])",
  "function safeTransferFrom(address from, address to, uint256 id, uint256 value, bytes data)",
  "error ERC1155InsufficientBalance(address sender, uint256 balance, uint256 needed, uint256 tokenId)",
];

interface Ctx {
  f: Fixture;
  subs: TollgateSubscriptions;
  credits: Contract;
  model: MarketModel;
  buyers: Actor[];
  signerKeys: LocalAccount[];
  walletHolders: string[];
  settled: { batch: UsageBatch; signature: Hex; signer: LocalAccount }[];
  tollgateAddress: Address;
}

async function readChain(ctx: Ctx): Promise<Snap & { vault: bigint }> {
  const { tollgate, token } = ctx.f;
  const addrs = ctx.buyers.map((b) => b.address);
  const creditOwners = addrs.flatMap((a) => PLAN_IDS.map(() => a));
  const creditIds = addrs.flatMap(() => PLAN_IDS);
  const [accounts, credits, limits, e1, e2, fees, vault, wallets, sequences, allowances, paused, change] = await Promise.all([
    Promise.all(addrs.map((a) => tollgate.accountOf(a))),
    ctx.credits.balanceOfBatch(creditOwners, creditIds) as Promise<bigint[]>,
    Promise.all(addrs.flatMap((a) => [1, 2].map((p) => tollgate.spendingLimitOf(a, p)))),
    tollgate.earningsOf(1),
    tollgate.earningsOf(2),
    tollgate.protocolFeesAccrued(),
    token.balanceOf(ctx.tollgateAddress),
    Promise.all(ctx.walletHolders.map((a) => token.balanceOf(a))),
    Promise.all(ctx.signerKeys.map((k) => tollgate.signerOf(k.address))),
    Promise.all(addrs.map((a) => token.allowance(a, ctx.tollgateAddress))),
    tollgate.paused(),
    Promise.all(creditOwners.map((a, i) => tollgate.creditChangeOf(a, creditIds[i]))),
  ]);
  const bonds = await Promise.all([1, 2].map((p) => tollgate.bondOf(p)));
  const awards = await Promise.all(addrs.map((a) => tollgate.disputeAwardOf(a)));
  const subscriptions: Record<string, SubscriptionState> = {};
  const included: Record<string, bigint> = {};
  for (const a of addrs) {
    for (const p of [1, 2]) {
      const s = await ctx.subs.subscriptionOf(a, p);
      if (s.id === 0n) continue;
      const state = {
        id: Number(s.id),
        planId: Number(s.planId),
        startedAt: Number(s.startedAt),
        paidPeriods: Number(s.paidPeriods),
        active: s.active,
        cancelled: s.cancelled,
      };
      subscriptions[`${a}:${p}`] = state;
      for (let period = 0; period < state.paidPeriods; period++) {
        included[`${state.id}:${period}`] = await ctx.subs.includedUsedOf(state.id, period);
      }
    }
  }
  const snap: Snap & { vault: bigint } = {
    accounts: {},
    credits: {},
    creditChange: {},
    limits: {},
    earnings: { 1: e1, 2: e2 },
    fees,
    wallets: {},
    allowances: {},
    sequences: {},
    standing: {},
    bonds: {},
    awards: {},
    paused,
    subscriptions,
    included,
    vault,
  };
  addrs.forEach((a, i) => (snap.awards[a] = { amount: awards[i][0], claimableAt: Number(awards[i][1]) }));
  bonds.forEach(([available, pending, withdrawableAt], i) => (snap.bonds[i + 1] = { available, pending, withdrawableAt: Number(withdrawableAt) }));
  addrs.forEach((a, i) => {
    snap.allowances[a] = allowances[i];
    snap.accounts[a] = {
      balance: accounts[i].balance,
      pending: accounts[i].pendingWithdrawal,
      withdrawableAt: Number(accounts[i].withdrawableAt),
    };
    [1, 2].forEach((p, j) => {
      const l = limits[i * 2 + j];
      snap.limits[`${a}:${p}`] = {
        limit: l.limitPerPeriod,
        period: Number(l.period),
        windowStart: Number(l.windowStart),
        spent: l.spentInWindow,
      };
    });
  });
  creditOwners.forEach((a, i) => (snap.credits[`${a}:${creditIds[i]}`] = credits[i]));
  creditOwners.forEach((a, i) => (snap.creditChange[`${a}:${creditIds[i]}`] = change[i]));
  ctx.walletHolders.forEach((a, i) => (snap.wallets[a] = wallets[i]));
  ctx.signerKeys.forEach((k, i) => (snap.sequences[k.address] = sequences[i].nextSequence));
  ctx.signerKeys.forEach((k, i) => (snap.standing[k.address] = [sequences[i].authorized, sequences[i].compromised]));
  return snap;
}

function modelSnap(ctx: Ctx): Snap {
  const m = ctx.model;
  const snap: Snap = {
    accounts: {},
    credits: {},
    creditChange: {},
    limits: {},
    earnings: { 1: m.earningsOf(1), 2: m.earningsOf(2) },
    fees: m.fees,
    wallets: {},
    allowances: {},
    sequences: {},
    standing: {},
    bonds: { 1: { ...m.bond(1) }, 2: { ...m.bond(2) } },
    awards: {},
    paused: m.paused,
    subscriptions: {},
    included: {},
  };
  for (const b of ctx.buyers) {
    const a = m.account(b.address);
    snap.accounts[b.address] = { balance: a.balance, pending: a.pending, withdrawableAt: a.withdrawableAt };
    snap.allowances[b.address] = m.allowanceOf(b.address);
    snap.awards[b.address] = { ...m.awardOf(b.address) };
    for (const p of PLAN_IDS) snap.credits[`${b.address}:${p}`] = m.creditsOf(b.address, p);
    for (const p of PLAN_IDS) snap.creditChange[`${b.address}:${p}`] = m.creditChangeOf(b.address, p);
    for (const p of [1, 2]) snap.limits[`${b.address}:${p}`] = { ...m.limitOf(b.address, p) };
  }
  for (const b of ctx.buyers) {
    for (const p of [1, 2]) {
      const sub = m.subscriptionOf(b.address, p);
      if (!sub) continue;
      snap.subscriptions[`${b.address}:${p}`] = { ...sub };
      for (let period = 0; period < sub.paidPeriods; period++) snap.included[`${sub.id}:${period}`] = m.includedUsedOf(sub.id, period);
    }
  }
  for (const a of ctx.walletHolders) snap.wallets[a] = m.wallet(a);
  for (const k of ctx.signerKeys) snap.sequences[k.address] = m.signer(k.address).nextSequence;
  for (const k of ctx.signerKeys) {
    const state = m.signer(k.address);
    snap.standing[k.address] = [state.authorized, state.compromised ?? false];
  }
  return snap;
}

/** balance + pending of every buyer. */
function heldBy(snap: Snap): Map<string, bigint> {
  return new Map(Object.entries(snap.accounts).map(([a, acct]) => [a, acct.balance + acct.pending]));
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** Fixes the next block's time (now + 1 + extra) and returns it, so the model knows it in advance. */
async function nextBlockAt(extra = 0): Promise<number> {
  const t = (await time.latest()) + 1 + extra;
  await time.setNextBlockTimestamp(t);
  return t;
}

async function nextBlockAtLeast(target: number): Promise<number> {
  const latest = await time.latest();
  const t = Math.max(latest + 1, target);
  await time.setNextBlockTimestamp(t);
  return t;
}

/**
 * Sends a transaction the model has judged: it must revert with exactly the named error, or succeed in a
 * block at time `at`.
 */
async function send(
  ctx: Ctx,
  expected: Revert | null,
  at: number,
  txFn: () => Promise<ContractTransactionResponse>,
): Promise<ContractTransactionReceipt | null> {
  if (expected) {
    const contract = { token: ctx.f.token, tollgate: ctx.f.tollgate, credits: ctx.credits, subscriptions: ctx.subs }[expected.on];
    await expect(txFn(), `expected revert ${expected.error}`).to.be.revertedWithCustomError(contract, expected.error);
    return null;
  }
  const receipt = (await (await txFn()).wait())!;
  const block = await ethers.provider.getBlock(receipt.blockNumber);
  expect(block!.timestamp, "block time the model priced with").to.equal(at);
  return receipt;
}

function isRevert<T>(x: Revert | T): x is Revert {
  return typeof x === "object" && x !== null && "error" in x && "on" in x;
}

function eventsNamed(ctx: Ctx, receipt: ContractTransactionReceipt, name: string) {
  return receipt.logs
    .filter((l) => l.address.toLowerCase() === ctx.tollgateAddress.toLowerCase())
    .map((l) => ctx.f.tollgate.interface.parseLog(l))
    .filter((e) => e !== null && e.name === name) as NonNullable<ReturnType<Fixture["tollgate"]["interface"]["parseLog"]>>[];
}

const providerPlans: Record<1 | 2, number[]> = { 1: [0, 1, 2], 2: [0, 3, 3] };
const providerModels: Record<1 | 2, number[]> = { 1: [1, 2], 2: [3] };

/** Reads a model's price epochs from the chain and checks them against the model's. */
async function readEpochs(ctx: Ctx, modelId: number) {
  const view = await ctx.f.tollgate.modelOf(modelId);
  const epochs = await Promise.all(
    Array.from({ length: Number(view.epochCount) }, (_, i) => ctx.f.tollgate.priceEpochOf(modelId, i)),
  );
  const chain = epochs.map((e) => ({
    from: Number(e.effectiveFrom),
    input: e.input,
    cachedInput: e.cachedInput,
    output: e.output,
  }));
  expect(chain, `price epochs of model ${modelId}`).to.deep.equal(ctx.model.models.get(modelId)!.epochs);
  return chain;
}

interface BuiltBatch {
  records: UsageRecord[];
  modelRecords: ModelRecord[];
  plans: Map<Address, number>;
}

/**
 * Turns a batch spec into well-formed records served at or before the latest block, each naming the
 * price epoch in force when it was served (the last epoch starting at or before `servedAt`).
 */
async function buildRecords(ctx: Ctx, spec: BatchSpec, firstSequence: bigint): Promise<BuiltBatch> {
  const latest = await time.latest();
  const models = providerModels[spec.provider];
  const epochsOf = new Map<number, Awaited<ReturnType<typeof readEpochs>>>();
  for (const id of models) epochsOf.set(id, await readEpochs(ctx, id));
  const plans = new Map<Address, number>();
  const modelRecords: ModelRecord[] = [];
  const records: UsageRecord[] = spec.records.map((r, i) => {
    const buyer = ctx.buyers[r.buyer].address as Address;
    const modelId = models[r.model % models.length];
    const epochs = epochsOf.get(modelId)!;
    const listedAt = epochs[0].from;
    const span = Math.min(latest - listedAt, MAX_AGE);
    let servedAt = latest - Math.floor((span * (r.age.kind === "random" ? r.age.permille : 0)) / 1000);
    if (r.age.kind === "epochStart") {
      const e = epochs[r.age.epoch % epochs.length];
      const t = e.from - (r.age.minus ? 1 : 0);
      if (t <= latest && t >= listedAt && latest - t <= MAX_AGE) servedAt = t;
    }
    let priceEpoch = -1;
    epochs.forEach((e, k) => {
      if (e.from <= servedAt) priceEpoch = k;
    });
    expect(priceEpoch, "a record is never served before its model's listing").to.be.at.least(0);
    const planSel = spec.plans[r.buyer];
    plans.set(buyer, providerPlans[spec.provider][planSel]);
    const cachedInputTokens = Math.floor((r.input * r.cachedPct) / 100);
    modelRecords.push({
      buyer,
      planId: 0,
      modelId,
      epochIndex: priceEpoch,
      inputTokens: r.input,
      cachedInputTokens,
      outputTokens: r.output,
      servedAt,
    });
    const sequence = firstSequence + BigInt(i);
    return {
      sequence,
      buyer,
      modelId,
      priceEpoch,
      inputTokens: r.input,
      cachedInputTokens,
      outputTokens: r.output,
      servedAt,
      receiptHash: keccak256(toHex(`receipt ${spec.provider} ${sequence} ${i}`)),
    };
  });
  for (const r of modelRecords) r.planId = plans.get(r.buyer as Address)!;
  return { records, modelRecords, plans };
}

function deployment(ctx: Ctx) {
  return { chainId: ctx.f.chainId, address: ctx.tollgateAddress };
}

function ownerOf(ctx: Ctx, provider: 1 | 2) {
  return provider === 1 ? ctx.f.provider : ctx.f.provider2;
}

function gatewayOf(ctx: Ctx, provider: 1 | 2): LocalAccount {
  return provider === 1 ? ctx.f.gateway : ctx.f.gateway2;
}

function decodeBuyerResults(hex: string): { fromBalance: bigint; shortfall: bigint }[] {
  const body = hex.slice(2);
  const out = [];
  for (let i = 0; i < body.length; i += 64) {
    out.push({ fromBalance: BigInt(`0x${body.slice(i, i + 32)}`), shortfall: BigInt(`0x${body.slice(i + 32, i + 64)}`) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// One step

interface StepEffect {
  /** Expected change of each buyer's balance + pending (missing = 0), derived from the operation itself. */
  held: Map<string, bigint>;
  /** Set when the step settled a batch. */
  settled?: { signer: string; recordCount: number };
  /** Adversarial or reverted step: the whole state must be exactly as before. */
  unchanged?: boolean;
}

const stats = { ops: 0, runs: 0, reverted: 0, settled: 0, attacks: 0, records: 0, shortfalls: 0, burns: 0, frauds: 0, bondsWithdrawn: 0, awardsClaimed: 0 };
const kindCount: Record<string, number> = {};
const traced: Record<string, number> = {};

async function step(ctx: Ctx, op: Op): Promise<StepEffect> {
  const { tollgate } = ctx.f;
  const m = ctx.model;
  const actor = (i: number) => ctx.buyers[i];
  const held = new Map<string, bigint>();
  const reverted = (): StepEffect => {
    stats.reverted++;
    return { held, unchanged: true };
  };

  switch (op.kind) {
    case "deposit": {
      const payer = actor(op.payer);
      const buyer = actor(op.buyer);
      const at = await nextBlockAt();
      const exp = m.deposit(payer.address, buyer.address, op.amount);
      const rc = await send(ctx, exp, at, () => tollgate.connect(payer).deposit(buyer.address, op.amount));
      if (!rc) return reverted();
      const [ev] = eventsNamed(ctx, rc, "Deposited");
      expect(ev.args.credited).to.equal(op.amount);
      held.set(buyer.address, op.amount);
      return { held };
    }
    case "depositWithPermit": {
      const payer = actor(op.payer);
      const buyer = actor(op.buyer);
      const { token } = ctx.f;
      const nonce = await token.nonces(payer.address);
      const latest = await time.latest();
      const deadline = op.permit === "expired" ? latest : latest + 3600;
      const signed = op.permit === "badSignature" ? op.amount + 1n : op.amount;
      const sig = ethers.Signature.from(
        await payer.signTypedData(
          { name: "Tollgate Test USD", version: "1", chainId: ctx.f.chainId, verifyingContract: await token.getAddress() },
          permitTypesForEthers,
          { owner: payer.address, spender: ctx.tollgateAddress, value: signed, nonce, deadline },
        ),
      );
      if (op.permit === "frontRun") {
        // Someone submits the permit first: ours then fails inside the vault, which must still deposit.
        await nextBlockAt();
        await token
          .connect(actor(op.frontRunner))
          .permit(payer.address, ctx.tollgateAddress, op.amount, deadline, sig.v, sig.r, sig.s);
        m.permit(payer.address, op.amount);
      }
      const at = await nextBlockAt();
      const allowanceBefore = m.allowanceOf(payer.address);
      if (op.permit === "valid") m.permit(payer.address, op.amount);
      const exp = m.deposit(payer.address, buyer.address, op.amount);
      // A reverted deposit takes its permit with it.
      if (exp) m.allowances.set(payer.address.toLowerCase(), allowanceBefore);
      const rc = await send(ctx, exp, at, () =>
        tollgate.connect(payer).depositWithPermit(buyer.address, op.amount, deadline, sig.v, sig.r, sig.s),
      );
      if (!rc) return op.permit === "frontRun" ? { held } : reverted();
      held.set(buyer.address, op.amount);
      return { held };
    }
    case "approve": {
      const owner = actor(op.owner);
      await ctx.f.token.connect(owner).approve(ctx.tollgateAddress, op.amount);
      m.allowances.set(owner.address.toLowerCase(), op.amount);
      return { held };
    }
    case "setPaused": {
      const caller = op.byOwner ? ctx.f.owner : actor(0);
      const at = await nextBlockAt();
      const exp = m.setPaused(caller.address, ctx.f.owner.address, op.paused);
      const rc = await send(ctx, exp, at, () =>
        op.paused ? tollgate.connect(caller).pause() : tollgate.connect(caller).unpause(),
      );
      return rc ? { held } : reverted();
    }
    case "requestWithdrawal": {
      const buyer = actor(op.buyer);
      const bal = m.account(buyer.address).balance;
      const amount = "pct" in op.amount ? (bal * BigInt(op.amount.pct)) / 100n : op.amount.abs;
      const at = await nextBlockAt();
      const exp = m.requestWithdrawal(at, buyer.address, amount);
      const rc = await send(ctx, exp, at, () => tollgate.connect(buyer).requestWithdrawal(amount));
      return rc ? { held } : reverted();
    }
    case "cancelWithdrawal": {
      const buyer = actor(op.buyer);
      const at = await nextBlockAt();
      const exp = m.cancelWithdrawal(buyer.address);
      const rc = await send(ctx, exp, at, () => tollgate.connect(buyer).cancelWithdrawal());
      return rc ? { held } : reverted();
    }
    case "withdraw": {
      const buyer = actor(op.buyer);
      const unlock = m.account(buyer.address).withdrawableAt;
      let at: number;
      if (op.wait === "delay") at = await nextBlockAt(Number(WITHDRAWAL_DELAY));
      else if (op.wait === "exact" && unlock !== 0) at = await nextBlockAtLeast(unlock);
      else if (op.wait === "justBefore" && unlock !== 0) at = await nextBlockAtLeast(unlock - 1);
      else at = await nextBlockAt();
      const pendingBefore = m.account(buyer.address).pending;
      const out = m.withdraw(at, buyer.address);
      const rc = await send(ctx, isRevert(out) ? out : null, at, () => tollgate.connect(buyer).withdraw());
      if (!rc) return reverted();
      const [ev] = eventsNamed(ctx, rc, "Withdrawn");
      expect(ev.args.amount, "withdraw pays out the whole pending amount").to.equal(pendingBefore);
      held.set(buyer.address, -(ev.args.amount as bigint));
      return { held };
    }
    case "buyCredits":
    case "buyCreditsWithBalance": {
      const payer = actor(op.payer);
      const recipient = actor(op.recipient);
      const at = await nextBlockAt();
      const fromBalance = op.kind === "buyCreditsWithBalance";
      const out = fromBalance
        ? m.buyCreditsWithBalance(at, payer.address, op.plan, op.amount, recipient.address)
        : m.buyCredits(at, payer.address, op.plan, op.amount, recipient.address);
      const rc = await send(ctx, isRevert(out) ? out : null, at, () =>
        fromBalance
          ? tollgate.connect(payer).buyCreditsWithBalance(op.plan, op.amount, recipient.address)
          : tollgate.connect(payer).buyCredits(op.plan, op.amount, recipient.address),
      );
      if (!rc) return reverted();
      const [ev] = eventsNamed(ctx, rc, "CreditsPurchased");
      const plan = m.plans.get(op.plan)!;
      expect(ev.args.paid, "a plan sells at its price").to.equal(op.amount * plan.price);
      if (fromBalance) held.set(payer.address, -(ev.args.paid as bigint));
      return { held };
    }
    case "transferCredits": {
      const from = actor(op.from);
      const to = actor(op.to);
      const amount = (m.creditsOf(from.address, op.plan) * BigInt(op.pct)) / 100n + op.extra;
      const at = await nextBlockAt();
      const exp = m.transferCredits(from.address, to.address, op.plan, amount);
      const rc = await send(ctx, exp, at, () =>
        (ctx.credits.connect(from) as Contract).safeTransferFrom(from.address, to.address, op.plan, amount, "0x"),
      );
      return rc ? { held } : reverted();
    }
    case "setSpendingLimit": {
      const buyer = actor(op.buyer);
      const at = await nextBlockAt();
      const exp = m.setSpendingLimit(at, buyer.address, op.provider, op.limit, op.period);
      const rc = await send(ctx, exp, at, () =>
        tollgate.connect(buyer).setSpendingLimit(op.provider, op.limit, op.period),
      );
      return rc ? { held } : reverted();
    }
    case "clearSpendingLimit": {
      const buyer = actor(op.buyer);
      const at = await nextBlockAt();
      const exp = m.clearSpendingLimit(buyer.address, op.provider);
      const rc = await send(ctx, exp, at, () => tollgate.connect(buyer).clearSpendingLimit(op.provider));
      return rc ? { held } : reverted();
    }
    case "schedulePrice": {
      const owner = op.model === 3 ? ctx.f.provider2 : ctx.f.provider;
      const caller = op.byOwner ? owner : op.model === 3 ? ctx.f.provider : ctx.f.provider2;
      const at = await nextBlockAt();
      const out = m.scheduleModelPrice(at, caller.address, op.model, op.prices);
      const rc = await send(ctx, isRevert(out) ? out : null, at, () =>
        tollgate.connect(caller).scheduleModelPrice(op.model, op.prices),
      );
      await readEpochs(ctx, op.model);
      if (op.advance > 0) await time.increase(op.advance);
      return rc ? { held } : reverted();
    }
    case "settle": {
      const gateway = gatewayOf(ctx, op.batch.provider);
      const firstSequence = m.signer(gateway.address).nextSequence;
      const built = await buildRecords(ctx, op.batch, firstSequence);
      const batch = encodeUsageBatch(built.records, built.plans);
      const signature = await signUsageBatch(gateway, deployment(ctx), batch);
      const at = await nextBlockAt();
      const out = m.settle(at, gateway.address, firstSequence, built.plans, built.modelRecords);
      if (isRevert(out)) {
        expect(out.error, "the model accepts a well-formed batch unless paused").to.equal("EnforcedPause");
        await send(ctx, out, at, () => tollgate.settleBatch(batch, signature));
        return reverted();
      }
      const want = out;
      const rc = await send(ctx, null, at, () => tollgate.settleBatch(batch, signature));
      ctx.settled.push({ batch, signature, signer: gateway });
      stats.settled++;
      stats.records += built.records.length;

      const [ev] = eventsNamed(ctx, rc!, "BatchSettled");
      expect(ev, "BatchSettled emitted").to.not.equal(undefined);
      const results = decodeBuyerResults(ev.args.buyerResults);
      const paid = results.reduce((s, r) => s + r.fromBalance, 0n);
      // The event balances: what left buyers' accounts is exactly the provider's earnings plus the fee.
      expect(ev.args.providerEarnings + ev.args.protocolFee, "earnings + fee == drawn from buyers").to.equal(paid);
      expect(ev.args.signer).to.equal(gateway.address);
      expect(ev.args.providerId).to.equal(BigInt(op.batch.provider));
      expect(ev.args.firstSequence).to.equal(firstSequence);
      expect(ev.args.recordCount).to.equal(BigInt(built.records.length));
      // ... and matches the model's pricing, draw order, caps and fees.
      expect(
        {
          totalCost: ev.args.totalCost,
          providerEarnings: ev.args.providerEarnings,
          protocolFee: ev.args.protocolFee,
          totalShortfall: ev.args.totalShortfall,
          buyers: results,
        },
        "BatchSettled vs model",
      ).to.deep.equal({
        totalCost: want.totalCost,
        providerEarnings: want.providerEarnings,
        protocolFee: want.protocolFee,
        totalShortfall: want.totalShortfall,
        buyers: want.buyers.map((b) => ({ fromBalance: b.fromBalance, shortfall: b.shortfall })),
      });
      // One ShortfallRecorded per buyer left short (in no particular order), each for this batch and signer.
      const byBuyer = (a: [string, bigint], b: [string, bigint]) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1);
      const shortfallEvents = eventsNamed(ctx, rc!, "ShortfallRecorded");
      for (const e of shortfallEvents) {
        expect([e.args.signer, e.args.firstSequence]).to.deep.equal([gateway.address, firstSequence]);
      }
      const shortfalls = shortfallEvents.map((e) => [e.args.buyer, e.args.shortfall] as [string, bigint]).sort(byBuyer);
      expect(shortfalls, "ShortfallRecorded events").to.deep.equal(
        want.buyers.filter((b) => b.shortfall !== 0n).map((b) => [b.buyer, b.shortfall] as [string, bigint]),
      );
      stats.shortfalls += shortfalls.length;
      stats.burns += want.buyers.filter((b) => b.creditsBurned !== 0n).length;
      expect((await tollgate.batchCommitmentOf(gateway.address, firstSequence)).commitmentPrefix).to.equal(commitmentPrefix(ev.args.commitment));
      // Buyer table order == ascending address == results order.
      want.buyers.forEach((b, j) => held.set(b.buyer, -results[j].fromBalance));
      return { held, settled: { signer: gateway.address, recordCount: built.records.length } };
    }
    case "withdrawEarnings": {
      const owner = op.provider === 1 ? ctx.f.provider : ctx.f.provider2;
      const caller = op.byOwner ? owner : ctx.buyers[0];
      const at = await nextBlockAt();
      const out = m.withdrawEarnings(caller.address, op.provider);
      const rc = await send(ctx, isRevert(out) ? out : null, at, () => tollgate.connect(caller).withdrawEarnings(op.provider));
      return rc ? { held } : reverted();
    }
    case "collectProtocolFees": {
      const at = await nextBlockAt();
      const out = m.collectProtocolFees();
      const rc = await send(ctx, isRevert(out) ? out : null, at, () =>
        tollgate.connect(actor(op.caller)).collectProtocolFees(),
      );
      return rc ? { held } : reverted();
    }
    case "subscribe": {
      const buyer = actor(op.buyer);
      const at = await nextBlockAt();
      const exp = m.subscribe(at, buyer.address, op.plan);
      const rc = await send(ctx, isRevert(exp) ? exp : null, at, () => ctx.subs.connect(buyer).subscribe(op.plan));
      if (!rc) return reverted();
      held.set(buyer.address, -(exp as bigint));
      return { held };
    }
    case "cancelSubscription": {
      const buyer = actor(op.buyer);
      const at = await nextBlockAt();
      const exp = m.cancelSubscription(buyer.address, op.provider);
      const rc = await send(ctx, exp, at, () => ctx.subs.connect(buyer).cancelSubscription(op.provider));
      return rc ? { held } : reverted();
    }
    case "renew": {
      const caller = actor(op.caller);
      const buyer = actor(op.buyer);
      const at = await nextBlockAt();
      const exp = m.renew(at, buyer.address, op.provider);
      const rc = await send(ctx, isRevert(exp) ? exp : null, at, () => ctx.subs.connect(caller).renew(buyer.address, op.provider));
      if (!rc) return reverted();
      if (exp !== 0n) held.set(buyer.address, -(exp as bigint));
      return { held };
    }
    case "advanceTime": {
      await time.increase(op.seconds);
      return { held };
    }
    case "postBond": {
      const payer = actor(op.payer);
      const at = await nextBlockAt();
      const exp = m.postBond(payer.address, op.provider, op.amount);
      const rc = await send(ctx, exp, at, () => tollgate.connect(payer).postBond(op.provider, op.amount));
      return rc ? { held } : reverted();
    }
    case "requestBondWithdrawal": {
      const caller = op.byOwner ? ownerOf(ctx, op.provider) : ctx.buyers[0];
      const available = m.bond(op.provider).available;
      const amount = "pct" in op.amount ? (available * BigInt(op.amount.pct)) / 100n : op.amount.abs;
      const at = await nextBlockAt();
      const exp = m.requestBondWithdrawal(at, caller.address, op.provider, amount);
      const rc = await send(ctx, exp, at, () => tollgate.connect(caller).requestBondWithdrawal(op.provider, amount));
      return rc ? { held } : reverted();
    }
    case "cancelBondWithdrawal": {
      const caller = op.byOwner ? ownerOf(ctx, op.provider) : ctx.buyers[0];
      const at = await nextBlockAt();
      const exp = m.cancelBondWithdrawal(caller.address, op.provider);
      const rc = await send(ctx, exp, at, () => tollgate.connect(caller).cancelBondWithdrawal(op.provider));
      return rc ? { held } : reverted();
    }
    case "withdrawBond": {
      const caller = op.byOwner ? ownerOf(ctx, op.provider) : ctx.buyers[0];
      const unlock = m.bond(op.provider).withdrawableAt;
      let at: number;
      if (op.wait === "delay") at = await nextBlockAt(BOND_WITHDRAWAL_DELAY);
      else if (op.wait === "exact" && unlock !== 0) at = await nextBlockAtLeast(unlock);
      else if (op.wait === "justBefore" && unlock !== 0) at = await nextBlockAtLeast(unlock - 1);
      else at = await nextBlockAt();
      const out = m.withdrawBond(at, caller.address, op.provider);
      const rc = await send(ctx, isRevert(out) ? out : null, at, () => tollgate.connect(caller).withdrawBond(op.provider));
      if (!rc) return reverted();
      const [ev] = eventsNamed(ctx, rc, "BondWithdrawn");
      expect(ev.args.amount, "withdrawBond pays what the model holds pending").to.equal(out);
      stats.bondsWithdrawn++;
      return { held };
    }
    case "equivocate": {
      // Two receipts for one sequence from the disputed key (or, forged, from a key nobody authorized).
      const key = op.forged ? privateKeyToAccount(keccak256(toHex(`forger ${op.sequence}`))) : ctx.f.disputed;
      const at = await nextBlockAt();
      const a: UsageReceipt = {
        sequence: BigInt(op.sequence),
        buyer: actor(op.a).address as Address,
        modelId: 1,
        inputTokens: 1_000,
        cachedInputTokens: 0,
        outputTokens: 100,
        servedAt: at - op.age,
        inputPrice: SMALL_PRICES.input,
        cachedInputPrice: SMALL_PRICES.cachedInput,
        outputPrice: SMALL_PRICES.output,
        cost: 210n,
        contentHash: keccak256(toHex(`response a ${op.sequence}`)),
      };
      const b: UsageReceipt = { ...a, buyer: actor(op.b).address as Address, contentHash: keccak256(toHex(`response b ${op.sequence}`)) };
      const [sigA, sigB] = [await signUsageReceipt(key, deployment(ctx), a), await signUsageReceipt(key, deployment(ctx), b)];
      const out = m.proveEquivocation(at, key.address, a.sequence, a.servedAt, a.buyer);
      const rc = await send(ctx, isRevert(out) ? out : null, at, () => tollgate.connect(actor(op.caller)).proveEquivocation(a, sigA, b, sigB));
      if (!rc) return reverted();
      const [ev] = eventsNamed(ctx, rc, "GatewayFraudProven");
      expect([ev.args.kind, ev.args.penalty, ev.args.penalizedTo], "GatewayFraudProven").to.deep.equal([2n, out, a.buyer]);
      // The penalty lands in the award bucket (checked against the model after the step), not in balance + pending.
      const awarded = eventsNamed(ctx, rc, "DisputeAwarded").map((e) => [e.args.beneficiary, e.args.amount, e.args.total, Number(e.args.claimableAt)]);
      const bucket = m.awardOf(a.buyer);
      expect(awarded, "DisputeAwarded").to.deep.equal(out === 0n ? [] : [[a.buyer, out, bucket.amount, bucket.claimableAt]]);
      stats.frauds++;
      return { held };
    }
    case "claimAwards": {
      const holders = ctx.buyers.filter((b) => m.awardOf(b.address).amount !== 0n);
      const caller = op.holder && holders.length > 0 ? holders[op.caller % holders.length] : actor(op.caller);
      const claimableAt = m.awardOf(caller.address).claimableAt;
      let at: number;
      if (op.wait === "delay") at = await nextBlockAt(BOND_WITHDRAWAL_DELAY);
      else if (op.wait === "exact" && claimableAt !== 0) at = await nextBlockAtLeast(claimableAt);
      else if (op.wait === "justBefore" && claimableAt !== 0) at = await nextBlockAtLeast(claimableAt - 1);
      else at = await nextBlockAt();
      const out = m.claimDisputeAwards(at, caller.address);
      const rc = await send(ctx, isRevert(out) ? out : null, at, () => tollgate.connect(caller).claimDisputeAwards());
      if (!rc) return reverted();
      const [ev] = eventsNamed(ctx, rc, "DisputeAwardClaimed");
      expect([ev.args.beneficiary, ev.args.amount], "DisputeAwardClaimed pays the model's bucket").to.deep.equal([caller.address, out]);
      stats.awardsClaimed++;
      return { held };
    }
    case "attack":
      return attack(ctx, op);
  }
}

/**
 * An adversarial settlement attempt. Each must revert with the named error; the caller then checks that
 * nothing at all changed.
 */
async function attack(ctx: Ctx, op: Extract<Op, { kind: "attack" }>): Promise<StepEffect> {
  const { tollgate } = ctx.f;
  const m = ctx.model;
  stats.attacks++;
  const provider = op.batch.provider;
  const gateway = gatewayOf(ctx, provider);
  const next = m.signer(gateway.address).nextSequence;
  let kind = op.attack;
  if (kind === "replay" && ctx.settled.length === 0) kind = "wrongSequence";
  kindCount[`attack:${kind}`] = (kindCount[`attack:${kind}`] ?? 0) + 1;

  let batch: UsageBatch;
  let signature: Hex;
  let expectedError: string;
  let args: unknown[] | undefined;
  let modelSigner: string | undefined;
  let modelPlans: Map<Address, number> | undefined;
  let modelRecords: ModelRecord[] | undefined;

  switch (kind) {
    case "unauthorized": {
      // A key nobody authorized, claiming the gateway's next sequence (and, half the time, 0).
      const attacker = privateKeyToAccount(keccak256(toHex(`attacker ${op.pick}`)));
      const seq = op.pick % 2 === 0 ? next : 0n;
      const built = await buildRecords(ctx, op.batch, seq);
      batch = encodeUsageBatch(built.records, built.plans);
      signature = await signUsageBatch(attacker, deployment(ctx), batch);
      expectedError = "SettlementUnauthorizedSigner";
      args = [attacker.address];
      [modelSigner, modelPlans, modelRecords] = [attacker.address, built.plans, built.modelRecords];
      break;
    }
    case "revoked": {
      const revoked = ctx.f.revoked;
      const built = await buildRecords(ctx, { ...op.batch, provider: 1 }, m.signer(revoked.address).nextSequence);
      batch = encodeUsageBatch(built.records, built.plans);
      signature = await signUsageBatch(revoked, deployment(ctx), batch);
      expectedError = "SettlementUnauthorizedSigner";
      args = [revoked.address];
      [modelSigner, modelPlans, modelRecords] = [revoked.address, built.plans, built.modelRecords];
      break;
    }
    case "replay": {
      const old = ctx.settled[op.pick % ctx.settled.length];
      batch = old.batch;
      signature = old.signature;
      expectedError = "SettlementSequenceMismatch";
      args = [old.signer.address, m.signer(old.signer.address).nextSequence, old.batch.firstSequence];
      break;
    }
    case "wrongSequence": {
      let seq = next + BigInt(op.seqDelta);
      if (seq < 0n) seq = next + 1n;
      const built = await buildRecords(ctx, op.batch, seq);
      batch = encodeUsageBatch(built.records, built.plans);
      signature = await signUsageBatch(gateway, deployment(ctx), batch);
      expectedError = "SettlementSequenceMismatch";
      args = [gateway.address, next, seq];
      [modelSigner, modelPlans, modelRecords] = [gateway.address, built.plans, built.modelRecords];
      break;
    }
    case "tampered": {
      // A correctly signed batch, altered after signing: a record, the buyer table or the base time.
      const built = await buildRecords(ctx, op.batch, next);
      const signed = encodeUsageBatch(built.records, built.plans);
      signature = await signUsageBatch(gateway, deployment(ctx), signed);
      const which = op.pick % 3;
      if (which === 0) {
        // Raise one record's output tokens (byte 11 of the record is the top byte of outputTokens).
        const body = signed.records.slice(2);
        const r = (op.pick >> 2) % built.records.length;
        const pos = (r * 18 + 11) * 2;
        const byte = (parseInt(body.slice(pos, pos + 2), 16) + 1) & 0xff;
        batch = { ...signed, records: `0x${body.slice(0, pos)}${byte.toString(16).padStart(2, "0")}${body.slice(pos + 2)}` };
      } else if (which === 1) {
        // Drop the named plan of the first buyer (or name plan 1 where none was named).
        const body = signed.buyers.slice(2);
        const planHex = body.slice(40, 48) === "00000000" ? "00000001" : "00000000";
        batch = { ...signed, buyers: `0x${body.slice(0, 40)}${planHex}${body.slice(48)}` };
      } else {
        batch = { ...signed, baseTime: signed.baseTime - 1 };
      }
      expectedError = "SettlementUnauthorizedSigner";
      break;
    }
    case "crossPlan": {
      // An authorized key at the right sequence, naming the other provider's plan for a buyer.
      const built = await buildRecords(ctx, op.batch, next);
      const victim = built.records[0].buyer;
      const foreignPlan = provider === 1 ? 3 : 1 + (op.pick % 2);
      built.plans.set(victim, foreignPlan);
      for (const r of built.modelRecords) if (r.buyer === victim) r.planId = foreignPlan;
      batch = encodeUsageBatch(built.records, built.plans);
      signature = await signUsageBatch(gateway, deployment(ctx), batch);
      expectedError = "SettlementPlanNotOfProvider";
      args = [BigInt(foreignPlan), BigInt(provider)];
      [modelSigner, modelPlans, modelRecords] = [gateway.address, built.plans, built.modelRecords];
      break;
    }
    case "crossModel": {
      // An authorized key at the right sequence, billing a model of the other provider.
      const built = await buildRecords(ctx, op.batch, next);
      const foreign = provider === 1 ? 3 : 1 + (op.pick % 2);
      const idx = op.pick % built.records.length;
      built.records[idx] = { ...built.records[idx], modelId: foreign, priceEpoch: 0 };
      built.modelRecords[idx] = { ...built.modelRecords[idx], modelId: foreign, epochIndex: 0 };
      batch = encodeUsageBatch(built.records, built.plans);
      signature = await signUsageBatch(gateway, deployment(ctx), batch);
      expectedError = "SettlementModelNotOfProvider";
      args = [foreign, provider];
      [modelSigner, modelPlans, modelRecords] = [gateway.address, built.plans, built.modelRecords];
      break;
    }
  }

  const at = await nextBlockAt();
  if (m.paused) {
    // While paused, nothing settles at all.
    expectedError = "EnforcedPause";
    args = undefined;
  }
  if (modelSigner && modelPlans && modelRecords) {
    // The model rejects it for the same reason (and so applies nothing).
    const out = m.settle(at, modelSigner, batch.firstSequence, modelPlans, modelRecords);
    expect(out, `model verdict on ${kind}`).to.deep.equal({ on: "tollgate", error: expectedError });
  }
  const submitter = ctx.buyers[op.pick % ctx.buyers.length];
  const call = tollgate.connect(submitter).settleBatch(batch, signature);
  if (args) await expect(call, kind).to.be.revertedWithCustomError(tollgate, expectedError).withArgs(...args);
  else await expect(call, kind).to.be.revertedWithCustomError(tollgate, expectedError);
  return { held: new Map(), unchanged: true };
}

// ---------------------------------------------------------------------------------------------------------
// Checks after every step

function checkStep(ctx: Ctx, label: string, before: Snap & { vault: bigint }, after: Snap & { vault: bigint }, effect: StepEffect) {
  // Invariant 1: conservation of the vault's tokens.
  const buyerMoney = Object.values(after.accounts).reduce((s, a) => s + a.balance + a.pending, 0n);
  const bonded = Object.values(after.bonds).reduce((s, b) => s + b.available + b.pending, 0n);
  const awarded = Object.values(after.awards).reduce((s, a) => s + a.amount, 0n);
  expect(after.vault, "invariant 1: vault tokens == buyers + earnings + fees + bonds + unclaimed awards").to.equal(
    buyerMoney + after.earnings[1] + after.earnings[2] + after.fees + bonded + awarded,
  );

  if (effect.unchanged) {
    const { vault: v0, ...b } = before;
    const { vault: v1, ...a } = after;
    expect(a, `${label}: a rejected operation changes nothing`).to.deep.equal(b);
    expect(v1).to.equal(v0);
  }

  // Invariant 5: balance + pending moves only as the operation itself allows.
  const h0 = heldBy(before);
  const h1 = heldBy(after);
  for (const [buyer, was] of h0) {
    const delta = h1.get(buyer)! - was;
    expect(delta, `invariant 5: ${label} moved ${buyer}'s balance + pending`).to.equal(effect.held.get(buyer) ?? 0n);
  }

  // Sequences: a settlement advances its signer by exactly its record count; nothing else moves any.
  for (const [signer, seq] of Object.entries(before.sequences)) {
    const step = effect.settled?.signer === signer ? BigInt(effect.settled.recordCount) : 0n;
    expect(after.sequences[signer], `nextSequence of ${signer}`).to.equal(seq + step);
  }

  if (effect.settled) {
    const drawn = [...h0].reduce((s, [b, was]) => s + (was - h1.get(b)!), 0n);
    const gained = after.earnings[1] + after.earnings[2] + after.fees - (before.earnings[1] + before.earnings[2] + before.fees);
    expect(gained, "settlement: earnings + fees gained == buyers' balance + pending drawn").to.equal(drawn);
  }

  // And the whole state is what the model says.
  const { vault: _v, ...chain } = after;
  expect(chain, `${label}: chain state vs model`).to.deep.equal(modelSnap(ctx));
}

// ---------------------------------------------------------------------------------------------------------
// Model from the fixture

async function freshContext(f: Fixture): Promise<Ctx> {
  const buyers = [...f.buyers, f.unfunded];
  const walletHolders = [...buyers.map((b) => b.address), f.provider.address, f.payout2.address, f.treasury.address];
  const tollgateAddress = (await f.tollgate.getAddress()) as Address;
  // Credits are Tollgate's own ERC-1155, or (once split out) the token at `credits()`.
  const creditsAddress: string = await new Contract(tollgateAddress, ["function credits() view returns (address)"], ethers.provider)
    .credits()
    .catch(() => tollgateAddress);
  const credits = new Contract(creditsAddress, ERC1155_ABI, ethers.provider);
  const model = new MarketModel(FEE_BPS, Number(WITHDRAWAL_DELAY), Number(PRICE_NOTICE), f.treasury.address);
  model.providers.set(1, { owner: f.provider.address, payout: f.provider.address });
  model.providers.set(2, { owner: f.provider2.address, payout: f.payout2.address });
  // Price epochs, limits and money as the setup left them (the setup itself is not under test).
  const epochs = async (id: number) => {
    const view = await f.tollgate.modelOf(id);
    const out = [];
    for (let i = 0; i < Number(view.epochCount); i++) {
      const e = await f.tollgate.priceEpochOf(id, i);
      out.push({ from: Number(e.effectiveFrom), input: e.input, cachedInput: e.cachedInput, output: e.output });
    }
    return out;
  };
  model.models.set(1, { providerId: 1, localIndex: 0, epochs: await epochs(1) });
  model.models.set(2, { providerId: 1, localIndex: 1, epochs: await epochs(2) });
  model.models.set(3, { providerId: 2, localIndex: 0, epochs: await epochs(3) });
  expect(model.models.get(1)!.epochs[0]).to.include(SMALL_PRICES);
  expect(model.models.get(2)!.epochs[0]).to.include(LARGE_PRICES);
  expect(model.models.get(3)!.epochs[0]).to.include(P2_PRICES);
  model.plans.set(1, { providerId: 1, expiresAt: 0, ...PLAN1, mask: 3n });
  model.plans.set(2, { providerId: 1, expiresAt: f.plan2Expiry, ...PLAN2, mask: 1n });
  model.plans.set(3, { providerId: 2, expiresAt: 0, ...PLAN3, mask: 1n });
  for (const [id, plan] of model.plans) {
    const p = await f.tollgate.creditPlanOf(id);
    expect({
      providerId: Number(p.providerId),
      expiresAt: Number(p.expiresAt),
      price: p.pricePerCredit,
      value: p.valuePerCredit,
      mask: p.modelMask,
    }).to.deep.equal(plan);
  }
  SUB_PLANS.forEach((plan, i) => model.subscriptionPlans.set(i + 1, plan));
  for (const [id, plan] of model.subscriptionPlans) {
    const p = await f.subs.subscriptionPlanOf(id);
    expect({
      providerId: Number(p.providerId),
      period: Number(p.period),
      price: p.price,
      included: p.includedValue,
      mask: p.modelMask,
      refuse: p.overage === 1n,
    }).to.deep.equal(plan);
  }
  for (const b of buyers) {
    for (const p of [1, 2]) {
      const s = await f.subs.subscriptionOf(b.address, p);
      if (s.id === 0n) continue;
      model.subscriptions.set(`${b.address.toLowerCase()}:${p}`, {
        id: Number(s.id),
        planId: Number(s.planId),
        startedAt: Number(s.startedAt),
        paidPeriods: Number(s.paidPeriods),
        active: s.active,
        cancelled: s.cancelled,
      });
      model.subscriptionCount = Math.max(model.subscriptionCount, Number(s.id));
    }
  }
  model.signers.set(f.gateway.address.toLowerCase(), { providerId: 1, authorized: true, nextSequence: 0n });
  model.signers.set(f.gateway2.address.toLowerCase(), { providerId: 2, authorized: true, nextSequence: 0n });
  model.signers.set(f.revoked.address.toLowerCase(), { providerId: 1, authorized: false, nextSequence: 0n });
  model.signers.set(f.disputed.address.toLowerCase(), { providerId: 1, authorized: true, nextSequence: 0n });
  for (const p of [1, 2]) {
    const [available, pending, withdrawableAt] = await f.tollgate.bondOf(p);
    model.bonds.set(p, { available, pending, withdrawableAt: Number(withdrawableAt) });
  }
  // Starting money as the setup left it (the setup itself is not under test).
  for (const p of [1, 2]) model.earnings.set(p, await f.tollgate.earningsOf(p));
  model.fees = await f.tollgate.protocolFeesAccrued();
  for (const a of walletHolders) model.wallets.set(a.toLowerCase(), await f.token.balanceOf(a));
  for (const b of buyers) {
    model.allowances.set(b.address.toLowerCase(), await f.token.allowance(b.address, await f.tollgate.getAddress()));
    const held: bigint[] = await credits.balanceOfBatch(PLAN_IDS.map(() => b.address), PLAN_IDS);
    PLAN_IDS.forEach((p, i) => model.credits.set(`${b.address.toLowerCase()}:${p}`, held[i]));
    for (const p of [1, 2]) {
      const l = await f.tollgate.spendingLimitOf(b.address, p);
      if (l.period !== 0n) {
        model.limits.set(`${b.address.toLowerCase()}:${p}`, {
          limit: l.limitPerPeriod,
          period: Number(l.period),
          windowStart: Number(l.windowStart),
          spent: l.spentInWindow,
        });
      }
    }
    const acct = await f.tollgate.accountOf(b.address);
    model.accounts.set(b.address.toLowerCase(), {
      balance: acct.balance,
      pending: acct.pendingWithdrawal,
      withdrawableAt: Number(acct.withdrawableAt),
    });
  }
  return {
    f,
    subs: f.subs,
    credits,
    model,
    buyers,
    signerKeys: [f.gateway, f.gateway2, f.revoked, f.disputed],
    walletHolders,
    settled: [],
    tollgateAddress,
  };
}

// ---------------------------------------------------------------------------------------------------------

describe("Tollgate invariants (property)", function () {
  it("conserves tokens and only lets authorized signatures charge, over random operation sequences", async function () {
    this.timeout(TIME_LIMIT_MS + 5 * 60_000);
    const started = Date.now();

    const property = fc.asyncProperty(fc.array(opArb, { minLength: MIN_OPS, maxLength: MAX_OPS }), async (ops) => {
      const f = await loadFixture(invariantFixture);
      const ctx = await freshContext(f);
      stats.runs++;
      let before = await readChain(ctx);
      // The starting state already satisfies everything.
      checkStep(ctx, "initial state", before, before, { held: new Map() });
      for (const [i, op] of ops.entries()) {
        const effect = await step(ctx, op);
        stats.ops++;
        kindCount[op.kind] = (kindCount[op.kind] ?? 0) + 1;
        const after = await readChain(ctx);
        checkStep(ctx, `step ${i + 1}/${ops.length} (${op.kind})`, before, after, effect);
        before = after;
      }
      for (const [k, v] of Object.entries(ctx.model.trace)) traced[k] = (traced[k] ?? 0) + v;
    });

    await fc.assert(property, {
      numRuns: NUM_RUNS,
      // Shrinking replays whole Hardhat runs; stop it in time to still report the smallest case found.
      interruptAfterTimeLimit: TIME_LIMIT_MS,
      markInterruptAsFailure: true,
    });

    console.log(
      `      invariants: ${stats.ops} operations in ${stats.runs} runs (${((Date.now() - started) / 1000).toFixed(1)}s); ` +
        `${stats.settled} batches settled (${stats.records} records, ${stats.shortfalls} shortfalls, ` +
        `${stats.burns} credit burns), ${stats.attacks} adversarial batches rejected, ${stats.frauds} equivocations proven and awarded, ` +
        `${stats.bondsWithdrawn} bond withdrawals paid, ${stats.awardsClaimed} award claims paid, ${stats.reverted} ops reverted ` +
        `as predicted; settlement paths (per buyer): ${JSON.stringify(traced)}; ops by kind: ${JSON.stringify(kindCount)}`,
    );
  });
});
