/**
 * The contracts' state at a history's audit block, over JSON-RPC: the `ChainStateReader` the chain audit
 * compares its rebuilt ledger with. Every read is an `eth_call` at that block (never "latest", so the state
 * and the history describe the same moment), counted and retried like the loader's requests. Reads the
 * auditor makes together go out together: with a client whose transport batches (viem's `http(url, { batch:
 * true })`), one HTTP request carries many of them.
 *
 * Browser-safe: viem only.
 */
import { decodeFunctionResult, encodeFunctionData, erc20Abi, numberToHex, type Abi, type Address, type Hex, type PublicClient } from "viem";
import { tollgateAbi, tollgateCreditsAbi, tollgateSubscriptionsAbi } from "../../server/chain/abis";
import type { ChainHistory, ChainStateReader } from "./chain-history";
import { RpcCaller, type RpcCallerOptions } from "./rpc/rpc-caller";

export interface RpcStateReaderOptions extends Pick<RpcCallerOptions, "retry" | "sleep"> {
  /**
   * Whether the deployment has provider bonds and dispute awards (`bondOf`, `disputeAwardOf`). Default true;
   * false for a deployment from before them, whose reads of those would revert.
   */
  bondsAndAwards?: boolean;
}

export type RpcStateReader = ChainStateReader & {
  /** The requests made so far. */
  readonly requests: number;
};


export function rpcStateReader(
  client: PublicClient,
  history: Pick<ChainHistory, "tollgate" | "credits" | "paymentToken" | "auditBlock" | "subscriptions">,
  options: RpcStateReaderOptions = {},
): RpcStateReader {
  const rpc = new RpcCaller(client, options);
  const block = numberToHex(history.auditBlock);

  async function read<const abi extends Abi>(address: Address, abi: abi, functionName: string, args: readonly unknown[]): Promise<unknown> {
    const data = encodeFunctionData({ abi: abi as Abi, functionName, args } as never);
    const result = await rpc.call<Hex>("eth_call", [{ to: address, data }, block], `${functionName}(${args.map(String).join(", ")}) at block ${history.auditBlock}`);
    return decodeFunctionResult({ abi: abi as Abi, functionName, data: result } as never);
  }

  const reader: RpcStateReader = {
    blockNumber: history.auditBlock,
    get requests() {
      return rpc.requests;
    },
    async account(buyer) {
      const account = (await read(history.tollgate, tollgateAbi, "accountOf", [buyer])) as { balance: bigint; pendingWithdrawal: bigint; withdrawableAt: bigint };
      return { balance: account.balance, pendingWithdrawal: account.pendingWithdrawal, withdrawableAt: account.withdrawableAt };
    },
    async earnings(providerId) {
      return (await read(history.tollgate, tollgateAbi, "earningsOf", [providerId])) as bigint;
    },
    async protocolFees() {
      return (await read(history.tollgate, tollgateAbi, "protocolFeesAccrued", [])) as bigint;
    },
    async credits(holder, planId) {
      return (await read(history.credits, tollgateCreditsAbi, "balanceOf", [holder, planId])) as bigint;
    },
    async creditChange(holder, planId) {
      return (await read(history.tollgate, tollgateAbi, "creditChangeOf", [holder, planId])) as bigint;
    },
    async spendingLimit(buyer, providerId) {
      const limit = (await read(history.tollgate, tollgateAbi, "spendingLimitOf", [buyer, providerId])) as {
        limitPerPeriod: bigint;
        period: number;
        windowStart: number;
        spentInWindow: bigint;
      };
      return { limitPerPeriod: limit.limitPerPeriod, period: Number(limit.period), windowStart: Number(limit.windowStart), spentInWindow: limit.spentInWindow };
    },
    async vaultTokens() {
      return (await read(history.paymentToken, erc20Abi, "balanceOf", [history.tollgate])) as bigint;
    },
    async signerNextSequence(signer) {
      const state = (await read(history.tollgate, tollgateAbi, "signerOf", [signer])) as { nextSequence: bigint };
      return BigInt(state.nextSequence);
    },
  };
  if (options.bondsAndAwards ?? true) {
    reader.bond = async (providerId) => {
      const [available, pending, withdrawableAt] = (await read(history.tollgate, tollgateAbi, "bondOf", [providerId])) as readonly [bigint, bigint, bigint];
      return { available, pending, withdrawableAt };
    };
    reader.disputeAward = async (beneficiary) => {
      const [amount, claimableAt] = (await read(history.tollgate, tollgateAbi, "disputeAwardOf", [beneficiary])) as readonly [bigint, bigint];
      return { amount, claimableAt };
    };
  }
  const subscriptions = history.subscriptions;
  if (subscriptions) {
    reader.subscription = async (buyer, providerId) => {
      const found = (await read(subscriptions, tollgateSubscriptionsAbi, "subscriptionOf", [buyer, providerId])) as {
        id: bigint;
        planId: number;
        startedAt: number;
        paidPeriods: number;
        active: boolean;
        cancelled: boolean;
      };
      return { id: found.id, planId: BigInt(found.planId), startedAt: Number(found.startedAt), paidPeriods: Number(found.paidPeriods), active: found.active, cancelled: found.cancelled };
    };
    reader.includedUsed = async (subscriptionId, periodIndex) => (await read(subscriptions, tollgateSubscriptionsAbi, "includedUsedOf", [subscriptionId, BigInt(periodIndex)])) as bigint;
  }
  return reader;
}
