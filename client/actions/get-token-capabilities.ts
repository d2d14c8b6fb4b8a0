/**
 * What the payment token lets a wallet do beyond ERC-20: sign an EIP-2612 permit (so a deposit is one
 * transaction, not approve then deposit), and mint itself test tokens (the local test token's faucet). Both
 * are asked of the token, never assumed from its name or the chain.
 */
import type { Address } from "viem";
import { testUsdAbi } from "../../server/chain/abis";
import type { TollgateClient } from "../tollgate-client";

export interface GetTokenCapabilitiesParameters {
  /** Whose permit nonce is read and who would mint (default: the client's wallet; else the zero address). */
  owner?: Address;
}
export interface GetTokenCapabilitiesReturnType {
  /** The token answers `nonces(owner)` and exposes an EIP-712 domain (ERC-5267 `eip712Domain` or `DOMAIN_SEPARATOR`). */
  permit: boolean;
  /** `mint(owner, 1)` would succeed for anyone: the test token's faucet (`mintTestTokens`) works. */
  faucet: boolean;
}
export type GetTokenCapabilitiesErrorType = Error;

const ZERO: Address = "0x0000000000000000000000000000000000000000";

export async function getTokenCapabilities(client: Pick<TollgateClient, "public" | "contracts" | "wallet">, parameters: GetTokenCapabilitiesParameters = {}): Promise<GetTokenCapabilitiesReturnType> {
  const address = client.contracts.paymentToken;
  const owner = parameters.owner ?? client.wallet?.account.address ?? ZERO;
  const succeeds = (read: Promise<unknown>) => read.then(() => true, () => false);
  const [nonces, domain, separator, faucet] = await Promise.all([
    succeeds(client.public.readContract({ address, abi: testUsdAbi, functionName: "nonces", args: [owner] })),
    succeeds(client.public.readContract({ address, abi: testUsdAbi, functionName: "eip712Domain" })),
    succeeds(client.public.readContract({ address, abi: testUsdAbi, functionName: "DOMAIN_SEPARATOR" })),
    // Simulated only: a token without a public mint reverts (or has no such function), and nothing is sent.
    succeeds(client.public.simulateContract({ address, abi: testUsdAbi, functionName: "mint", args: [owner === ZERO ? address : owner, 1n], account: owner })),
  ]);
  return { permit: nonces && (domain || separator), faucet };
}
