/**
 * A Tollgate marketplace on Hardhat's in-process network, for the contract, gateway and oracle tests and the
 * benches: the contracts deployed straight from their artifacts (fast, no Ignition journal; the real deploy
 * is deploy-tollgate.ts), then set up through the client's actions, each Hardhat account signing as a
 * browser wallet would (eth_sendTransaction, eth_signTypedData_v4).
 */
import hre, { ethers } from "hardhat";
import { createPublicClient, createWalletClient, custom, getAddress, type Account, type Address, type LocalAccount, type PublicClient } from "viem";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import type { Tollgate, TestUSD, TollgateCredits } from "../../typechain-types";
import { listModel, mintTestTokens, registerProvider, setSignerAuthorization, type GatewayEndpoint, type TollgateClient } from "../../client";

export const USD = (amount: number | bigint | string): bigint => ethers.parseUnits(String(amount), 6);
export const WITHDRAWAL_DELAY = 3n * 24n * 3600n;
export const PRICE_NOTICE = 24n * 3600n;
export const FEE_BPS = 250n;

/** Per-million-token prices in tUSD base units (6 decimals): $0.15 in / $0.075 cached / $0.60 out. */
export const SMALL_PRICES = { input: 150_000n, cachedInput: 75_000n, output: 600_000n };
/** $2.50 in / $1.25 cached / $10 out. */
export const LARGE_PRICES = { input: 2_500_000n, cachedInput: 1_250_000n, output: 10_000_000n };

type Signer = Awaited<ReturnType<typeof ethers.getSigners>>[number];

export interface LocalTollgate {
  token: TestUSD;
  tollgate: Tollgate;
  chainId: bigint;
  owner: Signer;
  treasury: Signer;
  provider: Signer;
  buyers: Signer[];
  others: Signer[];
  /**
   * The deployment as the client sees it, signing as `account`: one of Hardhat's accounts by address, or a
   * local account (privateKeyToAccount) with gas of its own. `gateway` for the actions that talk to one.
   */
  clientOf(account: Address | Account, gateway?: GatewayEndpoint): TollgateClient;
}

export interface Marketplace extends LocalTollgate {
  providerId: bigint;
  smallModel: bigint;
  largeModel: bigint;
  gateway: LocalAccount;
}

/** Token and Tollgate deployed, nothing registered. `token`: another payment token for Tollgate (TestUSD is deployed anyway). */
export async function deployLocalTollgate(options: { feeBps?: bigint; token?: string } = {}): Promise<LocalTollgate> {
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
  // Automine answers at once: poll for receipts often, not every 4 s.
  const publicClient = createPublicClient({ transport: custom(hre.network.provider), pollingInterval: 50 }) as PublicClient;
  const contracts = {
    chainId: Number(chainId),
    tollgate: getAddress(await tollgate.getAddress()),
    credits: getAddress(await tollgate.credits()),
    paymentToken: getAddress(tokenAddress),
  };
  const clientOf = (account: Address | Account, gateway?: GatewayEndpoint): TollgateClient => ({
    public: publicClient,
    wallet: createWalletClient({ account, transport: custom(hre.network.provider) }),
    contracts,
    pollingInterval: 50,
    gateway,
  });
  return { token, tollgate, chainId, owner, treasury, provider, buyers: rest.slice(0, 8), others: rest.slice(8), clientOf };
}

/** A provider with two models at different prices and an authorized gateway key; buyers funded, the vault approved. */
export async function deployMarketplace(): Promise<Marketplace> {
  const base = await deployLocalTollgate();
  const { token, tollgate, owner, provider, buyers } = base;
  const seller = base.clientOf(provider.address as Address);
  const { providerId } = await registerProvider(seller, { payout: provider.address as Address, metadataUri: "ipfs://provider" });
  const small = await listModel(seller, { providerId, name: "small-model", prices: SMALL_PRICES });
  const large = await listModel(seller, { providerId, name: "large-model", prices: LARGE_PRICES });
  const gateway = privateKeyToAccount(generatePrivateKey());
  await setSignerAuthorization(seller, { providerId, signer: gateway.address, authorized: true });
  const minter = base.clientOf(owner.address as Address);
  const tollgateAddress = await tollgate.getAddress();
  for (const buyer of buyers) {
    await mintTestTokens(minter, { amount: USD(1_000), to: buyer.address as Address });
    // A standing allowance, so tests can deposit in one call; the client's deposit approves exactly what it needs instead.
    await token.connect(buyer).approve(tollgateAddress, ethers.MaxUint256);
  }
  return { ...base, providerId: BigInt(providerId), smallModel: BigInt(small.modelId), largeModel: BigInt(large.modelId), gateway };
}

/** The ERC-1155 credits token a Tollgate deployed for itself. */
export async function creditsOf(tollgate: Tollgate): Promise<TollgateCredits> {
  return (await ethers.getContractAt("TollgateCredits", await tollgate.credits())) as unknown as TollgateCredits;
}
