/**
 * What a test or the demo does to a development chain that a real chain does not allow (give an account gas
 * money, move the clock, mine a block), over JSON-RPC, whichever development node it is. Hardhat and Anvil
 * share `evm_increaseTime` and `evm_mine` but name the rest after themselves (`hardhat_setBalance`,
 * `anvil_setBalance`); the node says which it is in `web3_clientVersion`.
 */
import { toHex, type Address } from "viem";

/** An EIP-1193 `request`: Hardhat's in-process provider, or a viem client's over HTTP. */
export type RpcRequest = (args: { method: string; params?: unknown[] }) => Promise<unknown>;

export type DevNode = "hardhat" | "anvil";

export interface DevChain {
  node: DevNode;
  /** Sets `address`'s native balance (wei). */
  setBalance(address: Address, wei: bigint): Promise<void>;
  /** Moves the clock of the next block `seconds` ahead. */
  increaseTime(seconds: number): Promise<void>;
  /** Mines one block. */
  mine(): Promise<void>;
  /** The raw request, for what only one node has (`anvil_reorg`). */
  request: RpcRequest;
}

/** The node behind `request` from its client version: "HardhatNetwork/2.x…", "anvil/v1.7.1"; undefined for anything else. */
export async function detectDevNode(request: RpcRequest): Promise<DevNode | undefined> {
  const version = String(await request({ method: "web3_clientVersion", params: [] })).toLowerCase();
  if (version.startsWith("hardhatnetwork")) return "hardhat";
  if (version.startsWith("anvil")) return "anvil";
  return undefined;
}

/** The development controls of the chain behind `request`, or undefined if it is not a development node (a real chain). */
export async function devChainOf(request: RpcRequest): Promise<DevChain | undefined> {
  const node = await detectDevNode(request);
  return node === undefined ? undefined : devChain(node, request);
}

export function devChain(node: DevNode, request: RpcRequest): DevChain {
  return {
    node,
    request,
    setBalance: async (address, wei) => {
      await request({ method: `${node}_setBalance`, params: [address, toHex(wei)] });
    },
    increaseTime: async (seconds) => {
      // Hardhat takes a number, Anvil a number or a hex quantity: a number suits both.
      await request({ method: "evm_increaseTime", params: [seconds] });
    },
    mine: async () => {
      await request({ method: "evm_mine", params: [] });
    },
  };
}
