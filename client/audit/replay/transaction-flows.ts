/**
 * What one transaction moved, matched up when it ends: payment-token transfers into and out of the vault
 * against the events that account for them, credits minted against purchases, a fraud proof's refund and
 * penalty against the `DisputeAwarded` events that credit them, and (until their batch's
 * `BatchSettled`, which follows them) the credit burns and shortfalls settlement emitted. Anything left
 * unmatched at the end of the transaction is a finding.
 */
import { zeroAddress, type Address, type Hash } from "viem";
import type { HistoryLog } from "../chain-history";
import type { FindingList, FindingLocation } from "./findings";
import type { ExpectedIncludedDraw } from "./included-usage";

export interface TokenMove {
  /** The other side: who sent tokens in, or who received them. */
  party: Address;
  value: bigint;
  log: HistoryLog;
  claimed: boolean;
}

export interface ExpectedMove {
  party: Address;
  value: bigint;
  what: string;
  where: FindingLocation;
}

export interface CreditBurn {
  holder: Address;
  planId: bigint;
  amount: bigint;
  log: HistoryLog;
}

export interface RecordedShortfall {
  buyer: Address;
  signer: Address;
  firstSequence: bigint;
  shortfall: bigint;
  log: HistoryLog;
}

/** `IncludedUsageDrawn`: the subscriptions contract emits it inside `settleBatch`, before that batch's `BatchSettled`. */
export type ReportedIncludedDraw = ExpectedIncludedDraw & { log: HistoryLog };

export class TransactionFlows {
  readonly inbound: TokenMove[] = [];
  readonly outbound: TokenMove[] = [];
  readonly expectedIn: ExpectedMove[] = [];
  readonly expectedOut: ExpectedMove[] = [];
  readonly expectedMints: ExpectedMove[] = [];
  /** What `GatewayFraudProven` paid from a bond and a `DisputeAwarded` after it must credit. */
  readonly expectedAwards: ExpectedMove[] = [];
  readonly mints: { holder: Address; planId: bigint; amount: bigint; log: HistoryLog }[] = [];
  /** Burns and shortfalls since the transaction's last `BatchSettled`: the next one claims them. */
  burns: CreditBurn[] = [];
  shortfalls: RecordedShortfall[] = [];
  includedDraws: ReportedIncludedDraw[] = [];

  constructor(readonly hash: Hash) {}

  /**
   * The closest earlier transfer into the vault from `party` of exactly `value` not yet claimed, claimed now.
   * A deposit or a credit purchase pulls its tokens right before it emits its event, so this is its transfer.
   */
  claimInbound(party: Address, value: bigint): TokenMove | undefined {
    for (let i = this.inbound.length - 1; i >= 0; i--) {
      const move = this.inbound[i];
      if (!move.claimed && move.party === party && move.value === value) {
        move.claimed = true;
        return move;
      }
    }
    return undefined;
  }

  /** The earliest award `GatewayFraudProven` announced to `party` of exactly `value`, not yet credited, claimed now. */
  claimAward(party: Address, value: bigint): boolean {
    const index = this.expectedAwards.findIndex((expected) => expected.party === party && expected.value === value);
    if (index < 0) return false;
    this.expectedAwards.splice(index, 1);
    return true;
  }

  /** Matches what is left and names every transfer or event without its counterpart. */
  close(findings: FindingList, block: bigint): void {
    const where = (extra: FindingLocation = {}): FindingLocation => ({ tx: this.hash, block, ...extra });
    for (const expected of this.expectedIn) {
      if (!this.claimInbound(expected.party, expected.value)) {
        findings.add("unmatched_token_transfer", `${expected.what}, but no transfer of ${expected.value} from ${expected.party} into the vault in its transaction`, expected.where, { expected: expected.value, found: 0n });
      }
    }
    for (const expected of this.expectedOut) {
      const move = this.outbound.find((candidate) => !candidate.claimed && candidate.party === expected.party && candidate.value === expected.value);
      if (move) move.claimed = true;
      else findings.add("unmatched_token_transfer", `${expected.what}, but no transfer of ${expected.value} to ${expected.party} out of the vault in its transaction`, expected.where, { expected: expected.value, found: 0n });
    }
    for (const move of this.inbound) {
      if (!move.claimed) findings.add("unmatched_token_transfer", `${move.value} tokens came into the vault from ${move.party} with no deposit, purchase or bond to account for them`, where({ logIndex: move.log.logIndex }), { expected: 0n, found: move.value });
    }
    for (const move of this.outbound) {
      if (!move.claimed) findings.add("unmatched_token_transfer", `${move.value} tokens left the vault to ${move.party} with no withdrawal, payout or fee collection to account for them`, where({ logIndex: move.log.logIndex }), { expected: 0n, found: move.value });
    }
    for (const expected of this.expectedMints) {
      const index = this.mints.findIndex((mint) => mint.holder === expected.party && mint.amount === expected.value && mint.planId === expected.where.planId);
      if (index >= 0) this.mints.splice(index, 1);
      else findings.add("event_mismatch", `${expected.what}, but no mint of ${expected.value} credits of plan ${expected.where.planId} to ${expected.party} followed`, expected.where, { expected: expected.value, found: 0n });
    }
    for (const expected of this.expectedAwards) {
      findings.add("event_mismatch", `${expected.what}, but no DisputeAwarded of ${expected.value} to ${expected.party} followed`, expected.where, { expected: expected.value, found: 0n });
    }
    for (const mint of this.mints) {
      findings.add("event_mismatch", `${mint.amount} credits of plan ${mint.planId} minted to ${mint.holder} with no purchase`, where({ logIndex: mint.log.logIndex, planId: mint.planId, buyer: mint.holder }), { expected: 0n, found: mint.amount });
    }
    for (const burn of this.burns) {
      findings.add("credits_burned_mismatch", `${burn.amount} credits of plan ${burn.planId} burned from ${burn.holder} outside any settlement`, where({ logIndex: burn.log.logIndex, planId: burn.planId, buyer: burn.holder }), { expected: 0n, found: burn.amount });
    }
    for (const draw of this.includedDraws) {
      findings.add("included_usage_mismatch", `IncludedUsageDrawn of ${draw.drawn} (refused ${draw.refused}) for ${draw.buyer} with no BatchSettled of provider ${draw.providerId} after it`, where({ logIndex: draw.log.logIndex, buyer: draw.buyer, providerId: draw.providerId, batch: draw.firstSequence }), { expected: 0n, found: draw.drawn });
    }
    for (const shortfall of this.shortfalls) {
      findings.add("shortfall_event_mismatch", `ShortfallRecorded of ${shortfall.shortfall} for ${shortfall.buyer} with no BatchSettled of ${shortfall.signer} from ${shortfall.firstSequence} after it`, where({ logIndex: shortfall.log.logIndex, buyer: shortfall.buyer, signer: shortfall.signer, batch: shortfall.firstSequence }), { expected: 0n, found: shortfall.shortfall });
    }
  }
}

export const isMint = (from: Address): boolean => from === zeroAddress;
