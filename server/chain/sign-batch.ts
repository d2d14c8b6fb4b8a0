/** Signing a usage batch with a gateway key: what the oracle does before it submits. */
import type { Address, Hex, LocalAccount } from "viem";
import { tollgateDomain, usageBatchTypes, usageReceiptTypes } from "./eip712";
import type { UsageBatch, UsageReceipt } from "./usage-batch";

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
