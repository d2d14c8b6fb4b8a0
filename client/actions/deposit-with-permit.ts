/** Deposits with an EIP-2612 permit signature instead of an approve transaction: one transaction, not two. */
import { parseSignature, type Address, type Hash, type TypedDataDomain } from "viem";
import { testUsdAbi, tollgateAbi } from "../../server/chain/abis";
import { permitTypes } from "../../server/chain/permit";
import { chainTime, eventIn, sendTransaction, signerOf } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

/** How long a permit stays valid: long enough to be mined, short enough not to linger. */
export const PERMIT_LIFETIME_SECONDS = 30n * 60n;

export interface DepositWithPermitParameters {
  amount: bigint;
  /** Whose balance is credited (default: the wallet's own); the wallet signs the permit and pays. */
  buyer?: Address;
  /** Seconds of chain time the permit stays valid (default 30 minutes). */
  lifetimeSeconds?: bigint;
}
export interface DepositWithPermitReturnType {
  hash: Hash;
  credited: bigint;
  deadline: bigint;
}
/** Reverts: as `deposit`, plus ERC2612ExpiredSignature and ERC2612InvalidSigner from the token. */
export type DepositWithPermitErrorType = Error;

/** The EIP-712 domain of the token's permit, read from the token (ERC-5267) rather than assumed. */
export async function permitDomain(client: TollgateClient): Promise<TypedDataDomain> {
  const token = client.contracts.paymentToken;
  try {
    const [, name, version, chainId, verifyingContract] = await client.public.readContract({ address: token, abi: testUsdAbi, functionName: "eip712Domain" });
    return { name, version, chainId: Number(chainId), verifyingContract };
  } catch {
    // Tokens older than ERC-5267 cannot be asked; OpenZeppelin's ERC20Permit uses version "1" (USDC's is "2").
    const name = await client.public.readContract({ address: token, abi: testUsdAbi, functionName: "name" });
    return { name, version: "1", chainId: client.contracts.chainId, verifyingContract: token };
  }
}

export async function depositWithPermit(client: TollgateClient, parameters: DepositWithPermitParameters): Promise<DepositWithPermitReturnType> {
  const account = signerOf(client, "depositWithPermit");
  const { amount } = parameters;
  const buyer = parameters.buyer ?? account.address;
  const { paymentToken, tollgate } = client.contracts;
  const [domain, nonce, now] = await Promise.all([
    permitDomain(client),
    client.public.readContract({ address: paymentToken, abi: testUsdAbi, functionName: "nonces", args: [account.address] }),
    chainTime(client),
  ]);
  const deadline = now + (parameters.lifetimeSeconds ?? PERMIT_LIFETIME_SECONDS);
  const signature = await client.wallet!.signTypedData({
    account,
    domain,
    types: permitTypes,
    primaryType: "Permit",
    message: { owner: account.address, spender: tollgate, value: amount, nonce, deadline },
  });
  const { r, s, v, yParity } = parseSignature(signature);
  const { hash, receipt } = await sendTransaction(client, "deposit with a permit", {
    address: tollgate,
    abi: tollgateAbi,
    functionName: "depositWithPermit",
    args: [buyer, amount, deadline, Number(v ?? 27n + BigInt(yParity)), r, s],
  });
  const credited = eventIn(receipt, tollgateAbi, "Deposited", tollgate)?.args.credited ?? 0n;
  return { hash, credited, deadline };
}
