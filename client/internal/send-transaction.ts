/**
 * The one way an action sends a transaction: simulate first (a revert is decoded into its custom error
 * before anything is signed or costs gas), sign with the client's wallet, wait for the receipt, and report
 * each stage to `onTransaction`.
 */
import {
  parseEventLogs,
  type Abi,
  type Account,
  type Address,
  type ContractEventName,
  type ContractFunctionArgs,
  type ContractFunctionName,
  type Hash,
  type ParseEventLogsReturnType,
  type SimulateContractParameters,
  type TransactionReceipt,
  type WriteContractParameters,
} from "viem";
import { TransactionRevertedError, WalletRequiredError } from "../errors";
import type { TollgateClient } from "../tollgate-client";

type WriteName<abi extends Abi> = ContractFunctionName<abi, "nonpayable" | "payable">;

export interface ContractWrite<abi extends Abi, functionName extends WriteName<abi>> {
  address: Address;
  abi: abi;
  functionName: functionName;
  args: ContractFunctionArgs<abi, "nonpayable" | "payable", functionName>;
}

export interface SentTransaction {
  hash: Hash;
  receipt: TransactionReceipt;
}

/** The account that signs for `client`; actions that sign call this first. */
export function signerOf(client: Pick<TollgateClient, "wallet">, action: string): Account {
  const account = client.wallet?.account;
  if (!account) throw new WalletRequiredError(action);
  return account;
}

export async function sendTransaction<const abi extends Abi, functionName extends WriteName<abi>>(
  client: TollgateClient,
  description: string,
  call: ContractWrite<abi, functionName>,
): Promise<SentTransaction> {
  const account = signerOf(client, description);
  const { request } = await client.public.simulateContract({ ...call, account } as unknown as SimulateContractParameters);
  client.onTransaction?.({ stage: "signing", description });
  const hash = await client.wallet!.writeContract({ ...(request as object), chain: client.wallet!.chain ?? null } as unknown as WriteContractParameters);
  client.onTransaction?.({ stage: "pending", description, hash });
  const receipt = await client.public.waitForTransactionReceipt({ hash, pollingInterval: client.pollingInterval });
  if (receipt.status !== "success") throw new TransactionRevertedError(hash, description);
  client.onTransaction?.({ stage: "confirmed", description, hash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed });
  return { hash, receipt };
}

/** The first `eventName` event `address` emitted in the receipt: what the action reports back. */
export function eventIn<const abi extends Abi, eventName extends ContractEventName<abi>>(
  receipt: TransactionReceipt,
  abi: abi,
  eventName: eventName,
  address?: Address,
): ParseEventLogsReturnType<abi, eventName, true>[number] | undefined {
  const logs = address ? receipt.logs.filter((log) => log.address.toLowerCase() === address.toLowerCase()) : receipt.logs;
  return parseEventLogs({ abi, eventName, logs })[0] as ParseEventLogsReturnType<abi, eventName, true>[number] | undefined;
}

/** The chain's clock: permits and withdrawals are judged by block time, and a test chain may run ahead of the wall clock. */
export async function chainTime(client: TollgateClient): Promise<bigint> {
  return (await client.public.getBlock({ blockTag: "latest" })).timestamp;
}
