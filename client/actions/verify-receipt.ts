/**
 * Checks a receipt the gateway handed over, as a buyer or an auditor would, without trusting the gateway:
 * its hash matches its fields, its EIP-712 signature recovers to the signer it names under this deployment's
 * domain, and that signer is authorized on-chain for the provider of the receipt's model. Returns a verdict
 * with a reason per failed check instead of throwing (x402's habit): a bad receipt is an answer, not an error.
 */
import { recoverTypedDataAddress, type Address } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { TOLLGATE_DOMAIN_NAME, TOLLGATE_DOMAIN_VERSION, usageReceiptTypes } from "../../server/chain/eip712";
import { usageReceiptFromEnvelope, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { hashReceipt, type UsageReceipt } from "../../server/chain/usage-batch";
import type { TollgateClient } from "../tollgate-client";

export type ReceiptProblem =
  | "hash_mismatch"
  | "wrong_domain"
  | "bad_signature"
  | "signer_mismatch"
  | "signer_not_authorized"
  | "signer_of_other_provider";

export interface VerifyReceiptParameters {
  envelope: ReceiptEnvelope;
}
export interface VerifyReceiptReturnType {
  valid: boolean;
  problems: { code: ReceiptProblem; message: string }[];
  receipt: UsageReceipt;
  /** Who signed it, when the signature could be read. */
  recoveredSigner?: Address;
  /** The chain's next sequence for the signer: the receipt is settled once it is below this. */
  settled?: boolean;
}
export type VerifyReceiptErrorType = Error;

export async function verifyReceipt(client: TollgateClient, { envelope }: VerifyReceiptParameters): Promise<VerifyReceiptReturnType> {
  const problems: VerifyReceiptReturnType["problems"] = [];
  const receipt = usageReceiptFromEnvelope(envelope);
  const { chainId, tollgate } = client.contracts;
  if (hashReceipt(receipt) !== envelope.receiptHash) problems.push({ code: "hash_mismatch", message: "the receipt's hash does not match its fields" });
  const d = envelope.domain;
  if (d.name !== TOLLGATE_DOMAIN_NAME || d.version !== TOLLGATE_DOMAIN_VERSION || Number(d.chainId) !== chainId || d.verifyingContract.toLowerCase() !== tollgate.toLowerCase()) {
    problems.push({ code: "wrong_domain", message: `the receipt is signed for chain ${d.chainId} and contract ${d.verifyingContract}, not chain ${chainId} and Tollgate ${tollgate}` });
  }
  let recoveredSigner: Address | undefined;
  try {
    recoveredSigner = await recoverTypedDataAddress({
      // Always this deployment's domain: a receipt signed for another chain or contract must not verify here.
      domain: { name: TOLLGATE_DOMAIN_NAME, version: TOLLGATE_DOMAIN_VERSION, chainId, verifyingContract: tollgate },
      types: usageReceiptTypes,
      primaryType: "UsageReceipt",
      message: receipt,
      signature: envelope.signature,
    });
  } catch {
    problems.push({ code: "bad_signature", message: "the signature cannot be read" });
  }
  let settled: boolean | undefined;
  if (recoveredSigner) {
    if (recoveredSigner.toLowerCase() !== envelope.signer.toLowerCase()) {
      problems.push({ code: "signer_mismatch", message: `signed by ${recoveredSigner}, not by the signer it names, ${envelope.signer}` });
    }
    const [signer, model] = await Promise.all([
      client.public.readContract({ address: tollgate, abi: tollgateAbi, functionName: "signerOf", args: [recoveredSigner] }),
      client.public.readContract({ address: tollgate, abi: tollgateAbi, functionName: "modelOf", args: [receipt.modelId] }),
    ]);
    if (signer.providerId === 0) {
      // Provider ids start at 1: 0 is a key no provider has ever authorized.
      problems.push({ code: "signer_not_authorized", message: `${recoveredSigner} has never been authorized by any provider` });
    } else if (signer.providerId !== model.providerId) {
      problems.push({ code: "signer_of_other_provider", message: `${recoveredSigner} signs for provider ${signer.providerId}, but model ${receipt.modelId} is provider ${model.providerId}'s` });
    } else if (!signer.authorized) {
      problems.push({ code: "signer_not_authorized", message: `${recoveredSigner} is not authorized by provider ${model.providerId} now` });
    }
    settled = receipt.sequence < signer.nextSequence;
  }
  return { valid: problems.length === 0, problems, receipt, recoveredSigner, settled };
}
