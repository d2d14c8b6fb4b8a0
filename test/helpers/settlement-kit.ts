/**
 * Helpers for the settlement tests only: explicit-time records, real receipts, hand-packed batch
 * sections, whole-state snapshots and the conservation check. Money is always bigint base units.
 */
import { ethers } from "hardhat";
import { expect } from "chai";
import { keccak256, toHex, type Address, type Hex, type LocalAccount } from "viem";
import type { ContractTransactionReceipt } from "ethers";
import { creditsOf, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { signBatch } from "./batches";
import {
  encodeUsageBatch,
  hashReceipt,
  type UsageBatch,
  type UsageReceipt,
  type UsageRecord,
} from "../../server/chain/usage-batch";
import { recordCost, type ModelPrices } from "../../server/chain/pricing";
import type { Tollgate } from "../../typechain-types";

export type Actor = Marketplace["buyers"][number];

export async function latestTime(): Promise<number> {
  return (await ethers.provider.getBlock("latest"))!.timestamp;
}

/** One call to put in a batch, served at an explicit time. */
export interface Call {
  buyer: string;
  modelId: bigint | number;
  servedAt: number;
  inputTokens?: number;
  cachedInputTokens?: number;
  outputTokens?: number;
  priceEpoch?: number;
}

/** Records for `calls` from `firstSequence`, with placeholder receipt hashes (one distinct leaf per record). */
export function recordsAt(firstSequence: bigint, calls: readonly Call[]): UsageRecord[] {
  return calls.map((call, i) => {
    const sequence = firstSequence + BigInt(i);
    return {
      sequence,
      buyer: ethers.getAddress(call.buyer) as Address,
      modelId: Number(call.modelId),
      priceEpoch: call.priceEpoch ?? 0,
      inputTokens: call.inputTokens ?? 1_000,
      cachedInputTokens: call.cachedInputTokens ?? 0,
      outputTokens: call.outputTokens ?? 500,
      servedAt: call.servedAt,
      receiptHash: keccak256(toHex(`settlement-kit receipt ${sequence} ${call.servedAt}`)),
    };
  });
}

export async function pricesOf(tollgate: Tollgate, modelId: number | bigint, epoch: number | bigint): Promise<ModelPrices> {
  const e = await tollgate.priceEpochOf(modelId, epoch);
  return { input: e.input, cachedInput: e.cachedInput, output: e.output };
}

/** Fills each record's receipt with the prices of its epoch and its cost, and sets `receiptHash` to its struct hash. */
export async function withReceipts(
  tollgate: Tollgate,
  records: UsageRecord[],
): Promise<{ records: UsageRecord[]; receipts: UsageReceipt[] }> {
  const receipts: UsageReceipt[] = [];
  const out: UsageRecord[] = [];
  for (const r of records) {
    const prices = await pricesOf(tollgate, r.modelId, r.priceEpoch);
    const receipt: UsageReceipt = {
      sequence: r.sequence,
      buyer: r.buyer,
      modelId: r.modelId,
      inputTokens: r.inputTokens,
      cachedInputTokens: r.cachedInputTokens,
      outputTokens: r.outputTokens,
      servedAt: r.servedAt,
      inputPrice: prices.input,
      cachedInputPrice: prices.cachedInput,
      outputPrice: prices.output,
      cost: recordCost(r, prices),
      contentHash: keccak256(toHex(`response body ${r.sequence}`)),
    };
    receipts.push(receipt);
    out.push({ ...r, receiptHash: hashReceipt(receipt) });
  }
  return { records: out, receipts };
}

/** Sum of recordCost over `records`, each at its named epoch's prices as the registry reports them. */
export async function expectedCost(tollgate: Tollgate, records: readonly UsageRecord[]): Promise<bigint> {
  let total = 0n;
  for (const r of records) total += recordCost(r, await pricesOf(tollgate, r.modelId, r.priceEpoch));
  return total;
}

export async function nextSequence(tollgate: Tollgate, signer: string): Promise<bigint> {
  return (await tollgate.signerOf(signer)).nextSequence;
}

/** Encodes, signs and settles; returns the batch, the receipt and the parsed BatchSettled event. */
export async function settle(
  m: Marketplace,
  records: UsageRecord[],
  options: { plans?: Map<Address, number>; signer?: LocalAccount; from?: Actor } = {},
) {
  const batch = encodeUsageBatch(records, options.plans ?? new Map());
  const signature = await signBatch(m.tollgate, options.signer ?? m.gateway, batch);
  const tx = await m.tollgate.connect(options.from ?? m.provider).settleBatch(batch, signature);
  const receipt = (await tx.wait())!;
  return { batch, signature, receipt, settled: batchSettledOf(m.tollgate, receipt) };
}

export interface BatchSettledArgs {
  signer: string;
  providerId: bigint;
  firstSequence: bigint;
  recordCount: bigint;
  commitment: string;
  contentRoot: string;
  totalCost: bigint;
  providerEarnings: bigint;
  protocolFee: bigint;
  totalShortfall: bigint;
  buyerResults: string;
}

export function batchSettledOf(tollgate: Tollgate, receipt: ContractTransactionReceipt): BatchSettledArgs {
  for (const log of receipt.logs) {
    const parsed = tollgate.interface.parseLog(log);
    if (parsed?.name === "BatchSettled") {
      const a = parsed.args;
      return {
        signer: a.signer,
        providerId: a.providerId,
        firstSequence: a.firstSequence,
        recordCount: a.recordCount,
        commitment: a.commitment,
        contentRoot: a.contentRoot,
        totalCost: a.totalCost,
        providerEarnings: a.providerEarnings,
        protocolFee: a.protocolFee,
        totalShortfall: a.totalShortfall,
        buyerResults: a.buyerResults,
      };
    }
  }
  throw new Error("no BatchSettled event in receipt");
}

/** `buyerResults` unpacked: one { fromBalance, shortfall } per buyer-table entry, in table order. */
export function decodeBuyerResults(results: string): { fromBalance: bigint; shortfall: bigint }[] {
  const body = results.slice(2);
  expect(body.length % 64).to.equal(0);
  const out: { fromBalance: bigint; shortfall: bigint }[] = [];
  for (let i = 0; i < body.length; i += 64) {
    out.push({ fromBalance: BigInt(`0x${body.slice(i, i + 32)}`), shortfall: BigInt(`0x${body.slice(i + 32, i + 64)}`) });
  }
  return out;
}

/** The buyer addresses of a batch's buyer table, in table order. */
export function buyerTable(batch: UsageBatch): string[] {
  const body = batch.buyers.slice(2);
  const out: string[] = [];
  for (let i = 0; i < body.length; i += 48) out.push(ethers.getAddress(`0x${body.slice(i, i + 40)}`));
  return out;
}

/** The `buyerResults` entry of `buyer` in a settled batch. */
export function resultOf(batch: UsageBatch, settled: BatchSettledArgs, buyer: string) {
  const index = buyerTable(batch).indexOf(ethers.getAddress(buyer));
  expect(index, `buyer ${buyer} in the batch's buyer table`).to.be.gte(0);
  return decodeBuyerResults(settled.buyerResults)[index];
}

// ---- hand-packed sections, for batches the encoder refuses to build ----

const hexOf = (value: number | bigint, bytes: number) => BigInt(value).toString(16).padStart(bytes * 2, "0");

export function packBuyers(entries: readonly { buyer: string; plan?: number }[]): Hex {
  return `0x${entries.map((e) => e.buyer.slice(2).toLowerCase() + hexOf(e.plan ?? 0, 4)).join("")}`;
}

export function packModels(entries: readonly { modelId: number | bigint; epoch?: number }[]): Hex {
  return `0x${entries.map((e) => hexOf(e.modelId, 4) + hexOf(e.epoch ?? 0, 4)).join("")}`;
}

export interface RawRecord {
  buyerIndex: number;
  modelIndex: number;
  inputTokens?: number;
  cachedInputTokens?: number;
  outputTokens?: number;
  /** servedAt - baseTime */
  offset?: number;
}

export function packRecords(records: readonly RawRecord[]): Hex {
  return `0x${records
    .map(
      (r) =>
        hexOf(r.buyerIndex, 2) +
        hexOf(r.modelIndex, 1) +
        hexOf(r.inputTokens ?? 1_000, 4) +
        hexOf(r.cachedInputTokens ?? 0, 4) +
        hexOf(r.outputTokens ?? 500, 4) +
        hexOf(r.offset ?? 0, 3),
    )
    .join("")}`;
}

export const SOME_ROOT: Hex = keccak256(toHex("some content root"));

// ---- state ----

export interface MarketState {
  accounts: { buyer: string; balance: bigint; pending: bigint; withdrawableAt: bigint }[];
  wallets: bigint[];
  earnings: bigint;
  fees: bigint;
  vaultTokens: bigint;
  nextSequence: bigint;
  credits: bigint[];
  /** The fixture provider's bond: available, pending, withdrawableAt. */
  bond: bigint[];
  /** The gateway key's standing: authorized, compromised. */
  gatewayStanding: boolean[];
  /** Each address's unclaimed dispute award: amount, claimableAt. */
  awards: bigint[][];
}

/** Everything a settlement could touch, for `addresses`, plus the gateway's next sequence and credits of `planIds`. */
export async function marketState(m: Marketplace, addresses: readonly string[], planIds: readonly bigint[] = []): Promise<MarketState> {
  const accounts = [];
  const wallets = [];
  const credits = [];
  const awards = [];
  for (const buyer of addresses) {
    const a = await m.tollgate.accountOf(buyer);
    accounts.push({ buyer, balance: a.balance, pending: a.pendingWithdrawal, withdrawableAt: a.withdrawableAt });
    wallets.push(await m.token.balanceOf(buyer));
    awards.push([...(await m.tollgate.disputeAwardOf(buyer))]);
    for (const plan of planIds) credits.push(await (await creditsOf(m.tollgate)).balanceOf(buyer, plan));
  }
  return {
    accounts,
    wallets,
    earnings: await m.tollgate.earningsOf(m.providerId),
    fees: await m.tollgate.protocolFeesAccrued(),
    vaultTokens: await m.token.balanceOf(await m.tollgate.getAddress()),
    nextSequence: await nextSequence(m.tollgate, m.gateway.address),
    credits,
    bond: [...(await m.tollgate.bondOf(m.providerId))],
    gatewayStanding: await signerStanding(m.tollgate, m.gateway.address),
    awards,
  };
}

/** A signer's authorized and compromised flags. */
export async function signerStanding(tollgate: Tollgate, signer: string): Promise<boolean[]> {
  const state = await tollgate.signerOf(signer);
  return [state.authorized, state.compromised];
}

/** Runs `expectation` (a revert assertion) and checks that nothing in `marketState` moved. */
export async function expectNothingChanged(
  m: Marketplace,
  expectation: () => Promise<unknown>,
  addresses: readonly string[] = m.buyers.map((b) => b.address),
): Promise<void> {
  const before = await marketState(m, addresses);
  await expectation();
  expect(await marketState(m, addresses)).to.deep.equal(before);
}

/**
 * DESIGN invariant 1: the vault's tokens equal every account's balance, pending withdrawal and unclaimed
 * dispute award, every provider's earnings and bond (available and pending) and the uncollected fees.
 * `extra` adds accounts beyond the fixture's signers.
 */
export async function expectConservation(m: Marketplace, extra: readonly string[] = []): Promise<void> {
  const everyone = [...m.buyers, ...m.others].map((s) => s.address).concat(extra);
  let owed = 0n;
  for (const who of new Set(everyone)) {
    const a = await m.tollgate.accountOf(who);
    const [award] = await m.tollgate.disputeAwardOf(who);
    owed += a.balance + a.pendingWithdrawal + award;
  }
  const providers = await m.tollgate.providerCount();
  for (let id = 1n; id <= providers; id++) {
    const [available, pending] = await m.tollgate.bondOf(id);
    owed += (await m.tollgate.earningsOf(id)) + available + pending;
  }
  owed += await m.tollgate.protocolFeesAccrued();
  expect(await m.token.balanceOf(await m.tollgate.getAddress())).to.equal(owed);
}
