/**
 * DESIGN invariant 1, from chain data alone: the vault's tokens equal what it owes, every buyer's balance and
 * pending withdrawal (buyers found from `Deposited` events), every provider's earnings, and the protocol fees.
 */
import { getAddress, type PublicClient } from "viem";
import { testUsdAbi, tollgateAbi } from "../../server/chain/abis";
import type { Deployment } from "../../server/chain/deployment-schema";

export interface ConservationCheck {
  /** The payment token the vault holds. */
  held: bigint;
  buyerBalances: bigint;
  pendingWithdrawals: bigint;
  providerEarnings: bigint;
  protocolFees: bigint;
  /** buyerBalances + pendingWithdrawals + providerEarnings + protocolFees */
  owed: bigint;
  buyers: number;
  providers: number;
  conserved: boolean;
}

/** Reads everything the vault owes at one block and compares it with the tokens it holds there. */
export async function checkConservation(client: PublicClient, deployment: Deployment): Promise<ConservationCheck> {
  const tollgate = deployment.tollgate;
  const blockNumber = await client.getBlockNumber({ cacheTime: 0 });
  const read = { address: tollgate, abi: tollgateAbi, blockNumber } as const;
  const token = deployment.paymentToken ?? (await client.readContract({ ...read, functionName: "paymentToken" }));
  // Only a deposit creates a buyer balance, so the Deposited events name every account that can hold one.
  const deposits = await client.getContractEvents({
    address: tollgate,
    abi: tollgateAbi,
    eventName: "Deposited",
    fromBlock: BigInt(deployment.deployBlock ?? 0),
    toBlock: blockNumber,
    strict: true,
  });
  const buyers = [...new Set(deposits.map((event) => getAddress(event.args.buyer)))];
  const providerCount = await client.readContract({ ...read, functionName: "providerCount" });
  const [held, accounts, earnings, protocolFees] = await Promise.all([
    client.readContract({ address: token, abi: testUsdAbi, functionName: "balanceOf", args: [tollgate], blockNumber }),
    Promise.all(buyers.map((buyer) => client.readContract({ ...read, functionName: "accountOf", args: [buyer] }))),
    Promise.all(
      Array.from({ length: Number(providerCount) }, (_, index) => client.readContract({ ...read, functionName: "earningsOf", args: [index + 1] })),
    ),
    client.readContract({ ...read, functionName: "protocolFeesAccrued" }),
  ]);
  const buyerBalances = accounts.reduce((sum, account) => sum + account.balance, 0n);
  const pendingWithdrawals = accounts.reduce((sum, account) => sum + account.pendingWithdrawal, 0n);
  const providerEarnings = earnings.reduce((sum, amount) => sum + amount, 0n);
  const owed = buyerBalances + pendingWithdrawals + providerEarnings + protocolFees;
  return {
    held,
    buyerBalances,
    pendingWithdrawals,
    providerEarnings,
    protocolFees,
    owed,
    buyers: buyers.length,
    providers: Number(providerCount),
    conserved: held === owed,
  };
}

/** One record as the auditor rebuilt it: what the calldata says, priced at the epoch the calldata names. */
