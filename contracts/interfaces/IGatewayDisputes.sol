// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UsageTypes} from "../libraries/UsageTypes.sol";

/// @title Proofs that a gateway signer lied, paid from its provider's bond.
/// @notice A receipt is a gateway key's signed word on one call (EIP-712 `UsageReceipt` under the Tollgate
/// domain). Anyone holding one can prove, within `DISPUTE_WINDOW` of the batch's settlement, that what the key
/// settled under the receipt's sequence differs from it, or that the key signed two different receipts for
/// one sequence. A valid proof awards the overcharge (refund) to the buyer that was charged and a penalty of
/// `DISPUTE_PENALTY_BPS` of what is left of the bond to the receipt's buyer, and marks the signer compromised
/// (settlement refuses its batches from then on, and it cannot be authorized again). One settled-record proof and
/// one proof from receipts alone per (signer, sequence), counted apart (see `isFraudProven`); every other proof
/// reverts with a `Dispute*` error and changes nothing.
/// Awards are not spendable balance: they wait in the beneficiary's award bucket and are paid out in tokens by
/// `claimDisputeAwards`, no sooner than `BOND_WITHDRAWAL_DELAY` (15 days) after the beneficiary's latest award.
/// Why an honest buyer waits that long: a provider can sign receipts naming a buyer address it controls and
/// prove its own fraud; if the award were spendable or withdrawable sooner, that would take bond money out
/// faster than `requestBondWithdrawal` allows, ahead of proofs by the buyers the bond is there for.
interface IGatewayDisputes {
    /// @notice The signature recovered to `signer`, which no provider ever authorized: a forged receipt, or one
    /// signed for another chain or contract.
    error DisputeUnknownSigner(address signer);
    /// @notice No batch of `signer` was settled from `firstSequence`, or the one that was is not this batch.
    error DisputeUnknownBatch(address signer, uint64 firstSequence);
    /// @notice Sequence `sequence` is not in the batch of `recordCount` records from `firstSequence`.
    error DisputeSequenceNotInBatch(uint64 sequence, uint64 firstSequence, uint256 recordCount);
    /// @notice The two receipts carry sequences `first` and `second`; a proof needs them equal.
    error DisputeSequenceMismatch(uint64 first, uint64 second);
    /// @notice The two receipts were signed by `first` and `second`; equivocation needs one signer.
    error DisputeSignerMismatch(address first, address second);
    /// @notice The dispute window closed at `closedAt`; it is `nowTime`.
    error DisputeWindowClosed(uint256 closedAt, uint256 nowTime);
    /// @notice Fraud at `signer`'s sequence `sequence` was already proven and paid.
    error DisputeAlreadyProven(address signer, uint64 sequence);
    /// @notice What `signer` settled or signed for `sequence` agrees with the receipt: nothing to prove.
    error DisputeNoDiscrepancy(address signer, uint64 sequence);
    /// @notice `leaf` is not under the batch's `contentRoot` by the proof given.
    error DisputeInvalidMerkleProof(bytes32 leaf, bytes32 contentRoot);
    /// @notice A Merkle proof of `length` hashes is longer than any batch's tree (`maxLength`).
    error DisputeProofTooLong(uint256 length, uint256 maxLength);
    /// @notice `beneficiary` has no unclaimed dispute award.
    error DisputeNoAward(address beneficiary);
    /// @notice `beneficiary`'s dispute awards can be claimed from `claimableAt`; it is `nowTime`.
    error DisputeAwardNotReady(address beneficiary, uint256 claimableAt, uint256 nowTime);

    /// @notice Fraud by `signer` (of provider `providerId`) at `sequence` was proven. `kind`: 0 a settled record
    /// differs from the receipt, 1 the batch's content root holds another receipt for the sequence, 2 two
    /// receipts for one sequence. `refund` was awarded to `refundedBuyer`, `penalty` to `penalizedTo`: each
    /// nonzero one is credited to that address's award bucket by a `DisputeAwarded` right after this event.
    event GatewayFraudProven(
        address indexed signer,
        uint32 indexed providerId,
        uint64 indexed sequence,
        uint8 kind,
        address refundedBuyer,
        uint256 refund,
        address penalizedTo,
        uint256 penalty
    );
    /// @notice `amount` went into `beneficiary`'s award bucket, which now holds `total`, claimable from
    /// `claimableAt` (this award restarted the clock for the whole bucket).
    event DisputeAwarded(address indexed beneficiary, uint256 amount, uint256 total, uint256 claimableAt);
    /// @notice `beneficiary` claimed its whole award bucket, `amount` tokens, paid to it.
    event DisputeAwardClaimed(address indexed beneficiary, uint256 amount);

    /// @notice Seconds after a batch's settlement (or, for equivocation, after the later receipt was served)
    /// during which a proof is accepted: 14 days.
    function DISPUTE_WINDOW() external view returns (uint256);

    /// @notice The penalty, in basis points of the provider's bond left after the refund: 1,000 (10%).
    function DISPUTE_PENALTY_BPS() external view returns (uint256);

    /// @notice Proves that `batch`, settled by the receipt's signer, holds at the receipt's sequence a record
    /// that differs from the receipt: another buyer, model, token count or serving time, or a price epoch whose
    /// prices are not the receipt's.
    /// @dev The refund is the record's cost at its named epoch, less the receipt's `cost` when the record's
    /// buyer is the receipt's (floor 0), awarded to the record's buyer. Gas grows with the batch only through
    /// its calldata and one hash over it, both of which settling the batch paid too, beside the per-record
    /// pricing and account writes a proof does not do: measured at 0.52 to 1.15 of the settlement's gas for
    /// batches of 1,000 down to 1 record, the first award to a beneficiary writing a fresh award slot (~22,100
    /// gas; `npm run bench:disputes`, table in bench/README.md).
    function proveSettledRecordMismatch(
        UsageTypes.UsageReceipt calldata receipt,
        bytes calldata receiptSignature,
        UsageTypes.UsageBatch calldata batch
    ) external returns (uint256 refund, uint256 penalty);

    /// @notice Proves that the content root of the batch `header` (settled by the receipt's signer) holds
    /// `settledReceipt`, another receipt for the same sequence (another content hash, buyer, count, ...).
    /// @dev The refund is `settledReceipt.cost`, less the receipt's cost when both name the same buyer (floor 0),
    /// awarded to `settledReceipt.buyer`. Gas is constant but for the proof, at most 24 hashes.
    function proveContentMismatch(
        UsageTypes.UsageReceipt calldata receipt,
        bytes calldata receiptSignature,
        UsageTypes.UsageBatchHeader calldata header,
        UsageTypes.UsageReceipt calldata settledReceipt,
        bytes32[] calldata proof
    ) external returns (uint256 refund, uint256 penalty);

    /// @notice Proves that one gateway signer signed two different receipts for one sequence, settled or not.
    /// @dev No charge is known without the batch, so this pays the penalty only (to `a.buyer`); a buyer whose
    /// record was settled wrong should prove it with the batch instead, which refunds the overcharge too.
    /// The window closes `DISPUTE_WINDOW` after the later of the two receipts' serving times.
    function proveEquivocation(
        UsageTypes.UsageReceipt calldata a,
        bytes calldata sigA,
        UsageTypes.UsageReceipt calldata b,
        bytes calldata sigB
    ) external returns (uint256 refund, uint256 penalty);

    /// @notice Pays the caller its whole award bucket in tokens, once `BOND_WITHDRAWAL_DELAY` has passed since its
    /// latest award; reverts `DisputeNoAward` or `DisputeAwardNotReady` otherwise. Works while paused.
    function claimDisputeAwards() external returns (uint256 amount);

    /// @notice `beneficiary`'s unclaimed dispute awards and when they can be claimed (both 0 when none).
    function disputeAwardOf(address beneficiary) external view returns (uint256 amount, uint256 claimableAt);

    /// @notice Whether the record `signer` settled at `sequence` has been proven to differ from a receipt
    /// (`proveSettledRecordMismatch`, the proof whose refund is the charge the chain made). The proofs built from
    /// receipts alone (`proveContentMismatch`, `proveEquivocation`) are marked apart, one per (signer, sequence),
    /// so a gateway cannot pre-empt a buyer's refund by proving a sequence against itself first; they show in
    /// `GatewayFraudProven`.
    function isFraudProven(address signer, uint64 sequence) external view returns (bool);
}
