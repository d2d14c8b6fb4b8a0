/**
 * Reading what went wrong on the chain: a revert decoded to Tollgate's named custom error, and RPC
 * failures told apart from reverts so the first are retried and the second are reported.
 */
import { BaseError, ContractFunctionRevertedError, decodeErrorResult, type Hex } from "viem";
import { tollgateAbi } from "../chain/abis";

export interface DecodedRevert {
  /** The custom error's name, e.g. "SettlementUnauthorizedSigner", or "Error"/"Panic"/"unknown". */
  name: string;
  /** Its arguments as strings (bigints printed in full). */
  args: string[];
  /** `name(arg, …)`, for logs and health. */
  text: string;
}

function render(name: string, args: readonly unknown[] | undefined): DecodedRevert {
  const printed = (args ?? []).map((arg) => (typeof arg === "bigint" ? arg.toString() : String(arg)));
  return { name, args: printed, text: `${name}(${printed.join(", ")})` };
}

/** Decodes raw revert data against Tollgate's ABI. */
export function decodeRevertData(data: Hex): DecodedRevert {
  try {
    const decoded = decodeErrorResult({ abi: tollgateAbi, data });
    return render(decoded.errorName, decoded.args as readonly unknown[] | undefined);
  } catch {
    return { name: "unknown", args: [data], text: `unknown revert ${data.slice(0, 74)}` };
  }
}

/** The named revert inside a viem error (from simulate, estimateGas or call), or undefined if it is not a revert. */
export function revertOf(error: unknown): DecodedRevert | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk((cause) => cause instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError) {
    if (reverted.data) return render(reverted.data.errorName, reverted.data.args as readonly unknown[] | undefined);
    if (reverted.raw) return decodeRevertData(reverted.raw);
    if (reverted.reason) return { name: "Error", args: [reverted.reason], text: `Error(${reverted.reason})` };
  }
  // Some nodes answer a reverting eth_call/estimateGas with the data on the RPC error itself.
  const withData = error.walk((cause) => typeof (cause as { data?: unknown }).data === "string" && /^0x[0-9a-f]{8}/i.test((cause as { data: string }).data));
  if (withData) return decodeRevertData((withData as unknown as { data: Hex }).data);
  return undefined;
}

/** One line for logs: viem's short message without the multi-line request dump. */
export function describeRpcError(error: unknown): string {
  if (error instanceof BaseError) return error.shortMessage;
  return error instanceof Error ? error.message : String(error);
}

const text = (error: unknown) => (error instanceof BaseError ? `${error.shortMessage} ${error.details}` : String(error)).toLowerCase();

export function isNonceTooLow(error: unknown): boolean {
  return /nonce too low|nonce has already been used/.test(text(error));
}

export function isAlreadyKnown(error: unknown): boolean {
  return /already known|known transaction|already imported/.test(text(error));
}
