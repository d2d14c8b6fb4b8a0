/**
 * The block a contract was deployed in, from the chain alone: a binary search for the first block at which
 * `eth_getCode` returns code, about log2(head) requests (27 on a chain of 100 million blocks). Needs a node
 * that answers state queries at old blocks (an archive node, or a recent enough deployment).
 */
import { numberToHex, type Address, type Hex } from "viem";
import { ChainHistoryLoadError, firstLine } from "./errors";
import type { RpcCaller } from "./rpc-caller";

export interface DeployBlockSearch {
  deployBlock: bigint;
  /** The requests the search made. */
  requests: number;
}

export async function findDeployBlock(rpc: RpcCaller, address: Address, head: bigint): Promise<DeployBlockSearch> {
  const before = rpc.requests;
  const hasCode = async (block: bigint): Promise<boolean> => {
    try {
      const code = await rpc.call<Hex>("eth_getCode", [address, numberToHex(block)], `eth_getCode of ${address} at block ${block}`);
      return code !== "0x" && code.length > 2;
    } catch (error) {
      throw new ChainHistoryLoadError(`cannot find the block ${address} was deployed in: the node would not read its code at block ${block} (${firstLine(error)})`, {
        cause: error,
        hint: "use an archive node, or give the deployment file (--deployment) whose deployBlock says where to start",
      });
    }
  };
  if (!(await hasCode(head))) {
    throw new ChainHistoryLoadError(`there is no contract at ${address} at block ${head}`, {
      hint: "check the address and that the RPC URL serves the chain it was deployed on",
    });
  }
  // Invariant: no code at `low - 1` is unknown, code at `high`; the first block with code is in [low, high].
  let low = 0n;
  let high = head;
  while (low < high) {
    const middle = (low + high) / 2n;
    if (await hasCode(middle)) high = middle;
    else low = middle + 1n;
  }
  return { deployBlock: low, requests: rpc.requests - before };
}
