/**
 * A settled batch's EIP-712 commitment (its struct hash, which the contract stores) and its signer, under
 * the deployment's domain. The struct is hashed once and the digest built from it, so a batch of 100,000
 * records is hashed and recovered once, not once per check.
 */
import { concat, hashDomain, hashStruct, keccak256, recoverAddress, type Address, type Hash, type Hex } from "viem";
import { tollgateDomain, usageBatchTypes, type UsageBatch } from "../../../server/chain/eip712";

/** The domain separator of one Tollgate deployment (`_domainSeparatorV4`). */
export function tollgateDomainSeparator(chainId: number, tollgate: Address): Hash {
  const domain = tollgateDomain(chainId, tollgate);
  return hashDomain({
    domain: { name: domain.name!, version: domain.version!, chainId: BigInt(chainId), verifyingContract: tollgate },
    types: { EIP712Domain: [
      { name: "name", type: "string" },
      { name: "version", type: "string" },
      { name: "chainId", type: "uint256" },
      { name: "verifyingContract", type: "address" },
    ] },
  });
}

/** `UsageTypes.hash(batch)`: what `BatchSettled.commitment` must equal. */
export function batchCommitment(batch: UsageBatch): Hash {
  return hashStruct({ data: batch, primaryType: "UsageBatch", types: usageBatchTypes });
}

/** `_hashTypedDataV4(structHash)`: keccak256("\x19\x01" ‖ domainSeparator ‖ structHash). */
export function typedDataDigest(domainSeparator: Hash, structHash: Hash): Hash {
  return keccak256(concat(["0x1901", domainSeparator, structHash]));
}

/** The address that signed the batch with this commitment, or undefined when the signature is not one. */
export async function recoverBatchSigner(domainSeparator: Hash, commitment: Hash, signature: Hex): Promise<Address | undefined> {
  try {
    return await recoverAddress({ hash: typedDataDigest(domainSeparator, commitment), signature });
  } catch {
    return undefined;
  }
}
