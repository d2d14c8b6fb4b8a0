/** Signing a usage batch with a gateway key: what the oracle does before it submits. */
import type { Address, Hex, LocalAccount } from "viem";
import { tollgateDomain, usageBatchTypes, usageReceiptTypes } from "./eip712";
import { encodeUsageBatch, type UsageBatch, type UsageReceipt, type UsageRecord } from "./usage-batch";

export interface TollgateDeployment {
  chainId: number | bigint;
  address: Address;
}

export function signUsageBatch(signer: LocalAccount, deployment: TollgateDeployment, batch: UsageBatch): Promise<Hex> {
  return signer.signTypedData({
    domain: tollgateDomain(deployment.chainId, deployment.address),
    types: usageBatchTypes,
    primaryType: "UsageBatch",
    message: batch,
  });
}

/**
 * Packs contiguous records into a batch and signs it: the two arguments `settleBatch` takes. `creditPlans`
 * names, per buyer, the credit plan to burn before the balance (see `encodeUsageBatch`).
 */
export async function signedUsageBatch(
  signer: LocalAccount,
  deployment: TollgateDeployment,
  records: readonly UsageRecord[],
  creditPlans?: ReadonlyMap<Address, number>,
): Promise<{ batch: UsageBatch; signature: Hex }> {
  const batch = encodeUsageBatch(records, creditPlans);
  return { batch, signature: await signUsageBatch(signer, deployment, batch) };
}

export function signUsageReceipt(
  signer: LocalAccount,
  deployment: TollgateDeployment,
  receipt: UsageReceipt,
): Promise<Hex> {
  return signer.signTypedData({
    domain: tollgateDomain(deployment.chainId, deployment.address),
    types: usageReceiptTypes,
    primaryType: "UsageReceipt",
    message: receipt,
  });
}
