/**
 * The rebuilt ledger against the contracts' state at the audit block: every buyer's account, credits, credit
 * change and spending window, every provider's earnings (and bond, where the deployment has bonds), every
 * beneficiary's unclaimed dispute awards (where it keeps them), the protocol fees, every signer's next
 * sequence; then DESIGN invariant 1 three ways (the tokens the vault
 * holds, what the ledger says it owes, the token flow in the Transfer logs). Reads go through the
 * `ChainStateReader`, all issued at once so a loader can batch them.
 */
import type { Address } from "viem";
import type { ChainStateReader } from "../chain-history";
import type { FindingList } from "./findings";
import { ledgerOwed, type Ledger } from "./ledger";

export interface StateScope {
  buyer?: Address;
  provider?: number;
  signer?: Address;
}

export interface Conservation {
  /** `paymentToken.balanceOf(tollgate)` at the audit block. */
  vaultTokens: bigint;
  /** Payment-token Transfer logs into Tollgate minus those out of it. */
  tokenFlow: bigint;
  buyerBalances: bigint;
  pendingWithdrawals: bigint;
  providerEarnings: bigint;
  protocolFees: bigint;
  bonds: bigint;
  /** Unclaimed dispute awards (refunds and penalties waiting out BOND_WITHDRAWAL_DELAY). */
  disputeAwards: bigint;
  /** buyerBalances + pendingWithdrawals + providerEarnings + protocolFees + bonds + disputeAwards (less unattributed draws), from the ledger. */
  owed: bigint;
  conserved: boolean;
}

export async function checkState(ledger: Ledger, state: ChainStateReader, scope: StateScope, findings: FindingList): Promise<Conservation> {
  const at = { block: state.blockNumber };
  const unattributed = ledger.unattributedDraws !== 0n ? ` (batches the audit could not read drew ${ledger.unattributedDraws} from buyers it cannot name)` : "";
  const checks: Promise<void>[] = [];
  // What the contracts' own state says the vault owes, summed over every account the events name.
  const read = { owed: 0n };
  for (const account of ledger.buyers.values()) {
    if (scope.buyer !== undefined && scope.buyer !== account.buyer) continue;
    const where = { ...at, buyer: account.buyer };
    checks.push(
      state.account(account.buyer).then((found) => {
        read.owed += found.balance + found.pendingWithdrawal;
        findings.compare("balance_mismatch", `${account.buyer}'s balance, rebuilt from the events vs the vault's${unattributed}`, where, account.balance, found.balance);
        findings.compare("pending_mismatch", `${account.buyer}'s pending withdrawal, rebuilt vs the vault's`, where, account.pendingWithdrawal, found.pendingWithdrawal);
        findings.compare("withdrawable_at_mismatch", `${account.buyer}'s withdrawal unlock time, rebuilt vs the vault's`, where, account.withdrawableAt, found.withdrawableAt);
      }),
    );
    const plans = new Set([...account.credits.keys(), ...account.creditChange.keys()]);
    for (const planId of plans) {
      const planWhere = { ...where, planId };
      checks.push(
        state.credits(account.buyer, planId).then((found) => {
          findings.compare("credits_mismatch", `${account.buyer}'s credits of plan ${planId}, rebuilt from the ERC-1155 logs vs the token's`, planWhere, account.credits.get(planId) ?? 0n, found);
        }),
        state.creditChange(account.buyer, planId).then((found) => {
          findings.compare("credit_change_mismatch", `${account.buyer}'s credit change of plan ${planId}, rebuilt by replaying settlement vs creditChangeOf`, planWhere, account.creditChange.get(planId) ?? 0n, found);
        }),
      );
    }
    for (const [providerId, limit] of account.limits) {
      if (scope.provider !== undefined && scope.provider !== providerId) continue;
      checks.push(
        state.spendingLimit(account.buyer, providerId).then((found) => {
          const rebuilt = `${limit.limitPerPeriod}/${limit.period}s from ${limit.windowStart} spent ${limit.spentInWindow}`;
          const read = `${found.limitPerPeriod}/${found.period}s from ${found.windowStart} spent ${found.spentInWindow}`;
          findings.compare("spending_window_mismatch", `${account.buyer}'s spending limit for provider ${providerId} (limit/period, window start, spent)`, { ...where, providerId }, rebuilt, read);
        }),
      );
    }
  }
  for (const provider of ledger.providers.values()) {
    if (scope.provider !== undefined && scope.provider !== provider.providerId) continue;
    const where = { ...at, providerId: provider.providerId };
    checks.push(
      state.earnings(provider.providerId).then((found) => {
        read.owed += found;
        findings.compare("earnings_mismatch", `provider ${provider.providerId}'s earnings, rebuilt vs the vault's`, where, provider.earnings, found);
      }),
    );
    if (state.bond) {
      checks.push(
        state.bond(provider.providerId).then((found) => {
          read.owed += found.available + found.pending;
          findings.compare("bond_mismatch", `provider ${provider.providerId}'s available bond`, where, provider.bond.available, found.available);
          findings.compare("bond_mismatch", `provider ${provider.providerId}'s pending bond withdrawal`, where, provider.bond.pending, found.pending);
        }),
      );
    }
  }
  if (state.disputeAward) {
    const readAward = state.disputeAward;
    // Every address the events ever awarded (a claimed bucket is still checked: it must read empty).
    for (const beneficiary of ledger.awardees) {
      if (scope.buyer !== undefined && scope.buyer !== beneficiary) continue;
      const award = ledger.awards.get(beneficiary) ?? { amount: 0n, claimableAt: 0n };
      const where = { ...at, buyer: beneficiary };
      checks.push(
        readAward(beneficiary).then((found) => {
          read.owed += found.amount;
          findings.compare("award_mismatch", `${beneficiary}'s unclaimed dispute awards, rebuilt from the events vs disputeAwardOf`, where, award.amount, found.amount);
          findings.compare("award_mismatch", `when ${beneficiary}'s dispute awards can be claimed, rebuilt vs disputeAwardOf`, where, award.claimableAt, found.claimableAt);
        }),
      );
    }
  }
  if (state.subscription && state.includedUsed) {
    const readSubscription = state.subscription;
    const readIncludedUsed = state.includedUsed;
    for (const sub of ledger.subscriptions.values()) {
      if (scope.buyer !== undefined && scope.buyer !== sub.buyer) continue;
      if (scope.provider !== undefined && scope.provider !== sub.providerId) continue;
      const where = { ...at, buyer: sub.buyer, providerId: sub.providerId };
      const describe = (s: { id: bigint; planId: bigint; startedAt: number; paidPeriods: number; active: boolean; cancelled: boolean }) =>
        `id ${s.id} plan ${s.planId} from ${s.startedAt}, ${s.paidPeriods} periods paid, ${s.active ? "active" : "ended"}${s.cancelled ? ", cancelled" : ""}`;
      checks.push(
        readSubscription(sub.buyer, sub.providerId).then((found) => {
          findings.compare("subscription_mismatch", `${sub.buyer}'s subscription with provider ${sub.providerId}, rebuilt from the subscriptions contract's events vs subscriptionOf`, where, describe(sub), describe(found));
        }),
      );
      // Every period settlement drew from, rebuilt by replaying the draws, against `includedUsedOf`.
      for (const [periodIndex, used] of ledger.includedUsed.get(sub.id) ?? []) {
        checks.push(
          readIncludedUsed(sub.id, periodIndex).then((found) => {
            findings.compare("subscription_mismatch", `included usage drawn in period ${periodIndex} of subscription ${sub.id}, rebuilt by replaying settlement vs includedUsedOf`, where, used, found);
          }),
        );
      }
    }
  }
  for (const signer of ledger.signers.values()) {
    if (scope.signer !== undefined && scope.signer !== signer.signer) continue;
    if (scope.provider !== undefined && scope.provider !== signer.providerId) continue;
    checks.push(
      state.signerNextSequence(signer.signer).then((found) => {
        findings.compare("next_sequence_mismatch", `${signer.signer}'s next sequence, from its settled batches vs the registry's`, { ...at, signer: signer.signer }, signer.nextSequence, found);
      }),
    );
  }
  let vaultTokens = 0n;
  checks.push(
    state.protocolFees().then((found) => {
      read.owed += found;
      findings.compare("protocol_fees_mismatch", "protocol fees accrued, rebuilt vs the vault's", at, ledger.protocolFees, found);
    }),
    state.vaultTokens().then((found) => {
      vaultTokens = found;
    }),
  );
  await Promise.all(checks);

  // Unread batches drew from balances the ledger cannot name: take that out of what it says is owed.
  const owed = ledgerOwed(ledger);
  const owedTotal = owed.total - ledger.unattributedDraws;
  const tokenFlow = ledger.tokensIn - ledger.tokensOut;
  findings.compare("not_conserved", `the vault's tokens vs what it owes by the rebuilt ledger (balances ${owed.buyerBalances} + pending ${owed.pendingWithdrawals} + earnings ${owed.earnings} + fees ${owed.protocolFees} + bonds ${owed.bonds} + unclaimed dispute awards ${owed.disputeAwards}${ledger.unattributedDraws ? ` - unattributed draws ${ledger.unattributedDraws}` : ""})`, at, owedTotal, vaultTokens);
  findings.compare("not_conserved", "the vault's tokens vs the payment-token transfers into it minus those out of it", at, tokenFlow, vaultTokens);
  // Only an unfiltered audit reads every account; then the contracts' own numbers must add up too.
  if (scope.buyer === undefined && scope.provider === undefined) {
    findings.compare("not_conserved", "the vault's tokens vs what the contracts' state says it owes (every account's balance and pending withdrawal, earnings, fees, bonds, unclaimed dispute awards)", at, vaultTokens, read.owed);
  }
  return {
    vaultTokens,
    tokenFlow,
    buyerBalances: owed.buyerBalances,
    pendingWithdrawals: owed.pendingWithdrawals,
    providerEarnings: owed.earnings,
    protocolFees: owed.protocolFees,
    bonds: owed.bonds,
    disputeAwards: owed.disputeAwards,
    owed: owedTotal,
    conserved: owedTotal === vaultTokens && tokenFlow === vaultTokens,
  };
}
