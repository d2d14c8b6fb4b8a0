/** Deployments and actors shared by the contract tests, the property test and the gas bench. */
import { ethers } from "hardhat";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import type { LocalAccount } from "viem";
import type { Tollgate, TestUSD, TollgateCredits } from "../../typechain-types";

export const USD = (amount: number | bigint | string): bigint => ethers.parseUnits(String(amount), 6);
export const WITHDRAWAL_DELAY = 3n * 24n * 3600n;
export const PRICE_NOTICE = 24n * 3600n;
export const FEE_BPS = 250n;

/** Per-million-token prices in tUSD base units (6 decimals): $0.15 in / $0.075 cached / $0.60 out. */
export const SMALL_PRICES = { input: 150_000n, cachedInput: 75_000n, output: 600_000n };
/** $2.50 in / $1.25 cached / $10 out. */
export const LARGE_PRICES = { input: 2_500_000n, cachedInput: 1_250_000n, output: 10_000_000n };

export interface Marketplace {
  token: TestUSD;
  tollgate: Tollgate;
  chainId: bigint;
  owner: Awaited<ReturnType<typeof ethers.getSigners>>[number];
  treasury: Awaited<ReturnType<typeof ethers.getSigners>>[number];
  provider: Awaited<ReturnType<typeof ethers.getSigners>>[number];
  buyers: Awaited<ReturnType<typeof ethers.getSigners>>;
  others: Awaited<ReturnType<typeof ethers.getSigners>>;
  providerId: bigint;
  smallModel: bigint;
  largeModel: bigint;
  gateway: LocalAccount;
}

/** Token and Tollgate deployed, nothing registered. */
export async function deployTollgate(options: { feeBps?: bigint; token?: string } = {}) {
  const [owner, treasury, provider, ...rest] = await ethers.getSigners();
  const token = (await ethers.deployContract("TestUSD")) as unknown as TestUSD;
  const tokenAddress = options.token ?? (await token.getAddress());
  const tollgate = (await ethers.deployContract("Tollgate", [
    tokenAddress,
    WITHDRAWAL_DELAY,
    PRICE_NOTICE,
    options.feeBps ?? FEE_BPS,
    treasury.address,
    owner.address,
  ])) as unknown as Tollgate;
  const { chainId } = await ethers.provider.getNetwork();
  return { token, tollgate, chainId, owner, treasury, provider, buyers: rest.slice(0, 8), others: rest.slice(8) };
}

/** A provider with two models at different prices and an authorized gateway key; buyers funded and deposited. */
export async function deployMarketplace(): Promise<Marketplace> {
  const base = await deployTollgate();
  const { tollgate, token, provider, buyers } = base;
  await tollgate.connect(provider).registerProvider(provider.address, "ipfs://provider");
  const providerId = 1n;
  await tollgate.connect(provider).listModel(providerId, "small-model", SMALL_PRICES);
  await tollgate.connect(provider).listModel(providerId, "large-model", LARGE_PRICES);
  const gateway = privateKeyToAccount(generatePrivateKey());
  await tollgate.connect(provider).setSignerAuthorization(providerId, gateway.address, true);
  const tollgateAddress = await tollgate.getAddress();
  for (const buyer of buyers) {
    await token.mint(buyer.address, USD(1_000));
    await token.connect(buyer).approve(tollgateAddress, ethers.MaxUint256);
  }
  return { ...base, providerId, smallModel: 1n, largeModel: 2n, gateway };
}

/** The ERC-1155 credits token a Tollgate deployed for itself. */
export async function creditsOf(tollgate: Tollgate): Promise<TollgateCredits> {
  return (await ethers.getContractAt("TollgateCredits", await tollgate.credits())) as unknown as TollgateCredits;
}
