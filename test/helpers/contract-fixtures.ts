/** Extra fixtures and small helpers for the vault, registry and credits tests. */
import { ethers } from "hardhat";
import { permitTypesForEthers } from "../../server/chain/permit";
import type { ContractTransactionResponse, Signature } from "ethers";
import { deployMarketplace, deployLocalTollgate, FEE_BPS, USD } from "../../scripts/lib/marketplace-fixtures";
import type {
  FeeOnTransferToken,
  ReentrantCreditReceiver,
  ReentrantToken,
  TestUSD,
} from "../../typechain-types";

/** The protocol fee the vault takes on `amount`: ceil(amount * bps / 10_000). */
export function feeOn(amount: bigint, bps: bigint = FEE_BPS): bigint {
  return (amount * bps + 9_999n) / 10_000n;
}

/** Timestamp of the block a transaction was mined in. */
export async function minedAt(tx: ContractTransactionResponse): Promise<bigint> {
  const receipt = await tx.wait();
  const block = await ethers.provider.getBlock(receipt!.blockNumber);
  return BigInt(block!.timestamp);
}

/** Timestamp of the latest block. */
export async function latestTimestamp(): Promise<bigint> {
  const block = await ethers.provider.getBlock("latest");
  return BigInt(block!.timestamp);
}

/** Tollgate on TestUSD with nothing registered (named so `loadFixture` can snapshot it). */
export async function emptyTollgateFixture() {
  return deployLocalTollgate();
}

/** Tollgate whose payment token burns 1% of every transfer. */
export async function feeOnTransferFixture() {
  const fot = (await ethers.deployContract("FeeOnTransferToken")) as unknown as FeeOnTransferToken;
  const base = await deployLocalTollgate({ token: await fot.getAddress() });
  return { ...base, fot };
}

/** Tollgate whose payment token calls back into a target during transfers, once armed. */
export async function reentrantTokenFixture() {
  const evil = (await ethers.deployContract("ReentrantToken")) as unknown as ReentrantToken;
  const base = await deployLocalTollgate({ token: await evil.getAddress() });
  return { ...base, evil };
}

/** The marketplace plus a credit plan of provider 1 covering both models: $1 per credit, worth $1.20 of usage. */
export const PLAN_PRICE = USD(1);
export const PLAN_VALUE = USD("1.2");
export async function marketplaceWithPlanFixture() {
  const market = await deployMarketplace();
  const { tollgate, provider, providerId, smallModel, largeModel } = market;
  await tollgate
    .connect(provider)
    .defineCreditPlan(providerId, PLAN_PRICE, PLAN_VALUE, [smallModel, largeModel], 0);
  return { ...market, planId: 1n };
}

/** The marketplace with a plan and an ERC-1155 receiver contract that will try to re-enter on mint. */
export async function reentrantReceiverFixture() {
  const market = await marketplaceWithPlanFixture();
  const { tollgate, token } = market;
  const tollgateAddress = await tollgate.getAddress();
  const receiver = (await ethers.deployContract("ReentrantCreditReceiver", [
    tollgateAddress,
  ])) as unknown as ReentrantCreditReceiver;
  const receiverAddress = await receiver.getAddress();
  // The receiver holds $50 in the vault, so a non-reentrant purchase from its balance would succeed.
  await token.mint(receiverAddress, USD(50));
  await receiver.execute(
    await token.getAddress(),
    token.interface.encodeFunctionData("approve", [tollgateAddress, ethers.MaxUint256]),
  );
  await receiver.execute(tollgateAddress, tollgate.interface.encodeFunctionData("deposit", [receiverAddress, USD(50)]));
  return { ...market, receiver, receiverAddress };
}

/** An EIP-2612 permit for `token`, signed by `owner` with `signTypedData` over the token's own domain. */
export async function signPermit(
  token: TestUSD,
  owner: Awaited<ReturnType<typeof ethers.getSigners>>[number],
  spender: string,
  value: bigint,
  deadline: bigint,
): Promise<Signature> {
  const [, name, version, chainId, verifyingContract] = await token.eip712Domain();
  const nonce = await token.nonces(owner.address);
  const signature = await owner.signTypedData(
    { name, version, chainId, verifyingContract },
    permitTypesForEthers,
    { owner: owner.address, spender, value, nonce, deadline },
  );
  return ethers.Signature.from(signature);
}
