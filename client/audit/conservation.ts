/**
 * DESIGN invariant 1 from chain data alone, as `checkConservation` has always returned it: now a view of the
 * chain audit, whose ledger is rebuilt from every event (so buyers who never deposited but hold money, such
 * as refunded ones, count too) and compared with the tokens the vault holds and with the token flow.
 */
import type { PublicClient } from "viem";
import type { Deployment } from "../../server/chain/deployment-schema";
import { auditDeployment } from "./audit-deployment";
import type { ChainAudit } from "./chain-audit";

export interface ConservationCheck {
  /** The payment token the vault holds. */
  held: bigint;
  buyerBalances: bigint;
  pendingWithdrawals: bigint;
  providerEarnings: bigint;
  protocolFees: bigint;
  /** Provider bonds (0 on a deployment without them). */
  bonds: bigint;
  /** Dispute awards not yet claimed (0 on a deployment without them). */
  disputeAwards: bigint;
  /** buyerBalances + pendingWithdrawals + providerEarnings + protocolFees + bonds + disputeAwards */
  owed: bigint;
  /** Buyers holding money in the vault. */
  buyers: number;
  providers: number;
  conserved: boolean;
}

/** The conservation view of a chain audit already run. */
export function conservationCheckOf(audit: ChainAudit): ConservationCheck {
  const { conservation, ledger } = audit;
  return {
    held: conservation.vaultTokens,
    buyerBalances: conservation.buyerBalances,
    pendingWithdrawals: conservation.pendingWithdrawals,
    providerEarnings: conservation.providerEarnings,
    protocolFees: conservation.protocolFees,
    bonds: conservation.bonds,
    disputeAwards: conservation.disputeAwards,
    owed: conservation.owed,
    buyers: [...ledger.buyers.values()].filter((buyer) => buyer.balance + buyer.pendingWithdrawal > 0n).length,
    providers: ledger.providers.size,
    conserved: conservation.conserved,
  };
}

/** Rebuilds what the vault owes from every event and compares it with the tokens it holds at the latest block. */
export async function checkConservation(client: PublicClient, deployment: Deployment): Promise<ConservationCheck> {
  return conservationCheckOf(await auditDeployment(client, deployment));
}
