/**
 * What went wrong on the chain, read the same way by every part that talks to it (oracle, CLI): a revert
 * decoded to its named custom error, and a chain that cannot be reached told apart from one that refused.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  HttpRequestError,
  SocketClosedError,
  TimeoutError,
  WebSocketRequestError,
  type Abi,
  type Hex,
} from "viem";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi, tollgateSubscriptionsAbi } from "./abis";

type AbiError = Extract<Abi[number], { type: "error" }>;

/**
 * Every custom error our contracts can revert with, deduplicated by signature (OpenZeppelin's appear in
 * several ABIs). A call to Tollgate can revert inside the payment token or the credits token and bubble
 * that contract's error up, which viem, decoding against the called contract's ABI only, leaves raw.
 */
const errorAbi: Abi = (() => {
  const seen = new Map<string, AbiError>();
  for (const item of [...tollgateAbi, ...tollgateCreditsAbi, ...tollgateSubscriptionsAbi, ...testUsdAbi] as Abi) {
    if (item.type !== "error") continue;
    const signature = `${item.name}(${item.inputs.map((input) => input.type).join(",")})`;
    if (!seen.has(signature)) seen.set(signature, item);
  }
  return [...seen.values()];
})();

export interface DecodedRevert {
  /** The custom error's name, e.g. "SettlementUnauthorizedSigner"; "Error" for a reason string; "unknown" otherwise. */
  name: string;
  /** Its arguments as decoded (bigints stay bigints), in order. */
  values: readonly unknown[];
  /** Its arguments as strings, in order. */
  args: string[];
  /** Its arguments as strings by parameter name (`arg<i>` when unnamed). */
  named: Record<string, string>;
  /** `name(arg, …)`, for logs and health. */
  text: string;
}

function decoded(name: string, values: readonly unknown[] | undefined, item?: AbiError): DecodedRevert {
  const list = values ?? [];
  const args = list.map((value) => String(value));
  const named: Record<string, string> = {};
  args.forEach((value, index) => (named[item?.inputs[index]?.name || `arg${index}`] = value));
  return { name, values: list, args, named, text: `${name}(${args.join(", ")})` };
}

/** A revert nothing could decode, described by `text`. */
export function unknownRevert(text: string): DecodedRevert {
  return { name: "unknown", values: [], args: [], named: {}, text };
}

/** Decodes raw revert data against every contract ABI. */
export function decodeRevertData(data: Hex): DecodedRevert {
  try {
    const result = decodeErrorResult({ abi: errorAbi, data });
    return decoded(result.errorName, result.args as readonly unknown[] | undefined, result.abiItem as AbiError);
  } catch {
    return { ...unknownRevert(`unknown revert ${data.slice(0, 74)}`), values: [data], args: [data], named: { data } };
  }
}

/** The named revert inside a viem error (from simulate, estimateGas, call or send), or undefined if it is not a revert. */
export function revertOf(error: unknown): DecodedRevert | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk((cause) => cause instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError) {
    if (reverted.data?.errorName && reverted.data.errorName !== "Error" && reverted.data.errorName !== "Panic") {
      return decoded(reverted.data.errorName, reverted.data.args as readonly unknown[] | undefined, reverted.data.abiItem as AbiError);
    }
    if (reverted.raw && reverted.raw !== "0x" && !reverted.reason) {
      const fromRaw = decodeRevertData(reverted.raw);
      if (fromRaw.name !== "unknown") return fromRaw;
    }
    if (reverted.reason) return decoded("Error", [reverted.reason]);
    if (reverted.signature) return { ...unknownRevert(`unknown custom error ${reverted.signature}`), values: [reverted.signature], args: [reverted.signature], named: { signature: reverted.signature } };
    return unknownRevert("reverted without a reason");
  }
  // Some nodes answer a reverting eth_call/estimateGas with the data on the RPC error itself.
  const withData = error.walk((cause) => typeof (cause as { data?: unknown }).data === "string" && /^0x[0-9a-f]{8}/i.test((cause as { data: string }).data));
  if (withData) return decodeRevertData((withData as unknown as { data: Hex }).data);
  return undefined;
}

/** The chain could not be reached (transport down, timeout), as opposed to a node that answered. */
export function isChainUnreachable(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  return Boolean(
    error.walk((cause) => cause instanceof HttpRequestError || cause instanceof TimeoutError || cause instanceof SocketClosedError || cause instanceof WebSocketRequestError),
  );
}
