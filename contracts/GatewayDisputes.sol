// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IGatewayDisputes} from "./interfaces/IGatewayDisputes.sol";
import {UsageTypes} from "./libraries/UsageTypes.sol";
import {ProviderBonds} from "./ProviderBonds.sol";
import {DisputeEvidence} from "./DisputeEvidence.sol";

/// @title Fraud proofs against gateway signers, paid from their provider's bond.
/// @dev Every proof is checked in gas bounded by its own calldata: one or two signature recoveries, one
/// stored commitment word, and either the settled batch's hash (already paid for once, at settlement),
/// a Merkle proof of at most 24 hashes, or nothing more. Proofs work while the protocol is paused: they
/// protect buyers.
abstract contract GatewayDisputes is IGatewayDisputes, ProviderBonds {
    /// @inheritdoc IGatewayDisputes
    uint256 public constant DISPUTE_WINDOW = 14 days;
    /// @inheritdoc IGatewayDisputes
    uint256 public constant DISPUTE_PENALTY_BPS = 1_000;
    /// @dev Deployed by this contract: runs the proofs' checks, which no longer fit in Tollgate's code.
    DisputeEvidence private immutable _evidence;

    uint8 private constant KIND_RECORD_MISMATCH = 0;
    uint8 private constant KIND_CONTENT_MISMATCH = 1;
    uint8 private constant KIND_EQUIVOCATION = 2;

    /// @dev A bitmap per signer: bit (sequence % 256) of word (sequence / 256) is set once fraud at that
    /// sequence was proven. The first proof in a word of 256 sequences writes a fresh slot (~22,100 gas),
    /// later ones an existing slot (~5,000).
    mapping(address signer => mapping(uint256 word => uint256 bits)) private _provenSequences;
    /// @dev The proofs a gateway key's owner can build alone, from receipts it signs (content root, equivocation),
    /// are marked apart from the settled-record proof, whose refund is the charge the chain really made: so a
    /// lying gateway cannot pre-empt a buyer's refund by proving a sequence against itself first. Each space
    /// holds one proof per (signer, sequence).
    uint256 private constant SIGNED_ONLY_PROOFS = 1 << 64;

    /// @dev One slot per beneficiary: awards not yet claimed, and when they can be. Only `_award` credits it.
    /// 224 bits hold more than any token's supply could put in one bucket in practice; the sum is checked anyway.
    struct Award {
        uint224 amount;
        uint32 claimableAt;
    }

    mapping(address beneficiary => Award) private _awards;

    constructor() {
        _evidence = new DisputeEvidence(address(this));
    }

    /// @inheritdoc IGatewayDisputes
    function proveSettledRecordMismatch(
        UsageTypes.UsageReceipt calldata receipt,
        bytes calldata, /* receiptSignature */
        UsageTypes.UsageBatch calldata /* batch */
    ) external nonReentrant returns (uint256 refund, uint256 penalty) {
        DisputeEvidence.Finding memory finding = _readEvidence();
        return _judge(finding, finding.sequence, KIND_RECORD_MISMATCH, receipt.buyer);
    }

    /// @inheritdoc IGatewayDisputes
    function proveContentMismatch(
        UsageTypes.UsageReceipt calldata receipt,
        bytes calldata, /* receiptSignature */
        UsageTypes.UsageBatchHeader calldata, /* header */
        UsageTypes.UsageReceipt calldata, /* settledReceipt */
        bytes32[] calldata /* proof */
    ) external nonReentrant returns (uint256 refund, uint256 penalty) {
        DisputeEvidence.Finding memory finding = _readEvidence();
        return _judge(finding, finding.sequence | SIGNED_ONLY_PROOFS, KIND_CONTENT_MISMATCH, receipt.buyer);
    }

    /// @inheritdoc IGatewayDisputes
    function proveEquivocation(
        UsageTypes.UsageReceipt calldata a,
        bytes calldata, /* sigA */
        UsageTypes.UsageReceipt calldata, /* b */
        bytes calldata /* sigB */
    ) external nonReentrant returns (uint256 refund, uint256 penalty) {
        DisputeEvidence.Finding memory finding = _readEvidence();
        return _judge(finding, finding.sequence | SIGNED_ONLY_PROOFS, KIND_EQUIVOCATION, a.buyer);
    }

    /// @inheritdoc IGatewayDisputes
    function claimDisputeAwards() external returns (uint256 amount) {
        Award storage award = _awards[msg.sender];
        amount = award.amount;
        if (amount == 0) revert DisputeNoAward(msg.sender);
        uint256 claimableAt = award.claimableAt;
        if (block.timestamp < claimableAt) revert DisputeAwardNotReady(msg.sender, claimableAt, block.timestamp);
        // The bucket is emptied before the tokens move, so a reentrant claim finds nothing: no guard needed.
        delete _awards[msg.sender];
        emit DisputeAwardClaimed(msg.sender, amount);
        _push(msg.sender, amount);
    }

    /// @inheritdoc IGatewayDisputes
    function disputeAwardOf(address beneficiary) external view returns (uint256 amount, uint256 claimableAt) {
        Award storage award = _awards[beneficiary];
        return (award.amount, award.claimableAt);
    }

    /// @inheritdoc IGatewayDisputes
    function isFraudProven(address signer, uint64 sequence) external view returns (bool) {
        return _provenSequences[signer][sequence >> 8] & (uint256(1) << (sequence & 0xff)) != 0;
    }

    /// @dev The same call, read by `DisputeEvidence` (its function of the same name takes this calldata as it is):
    /// its reverts pass through unchanged, and its answer is a `Finding`, 6 static words. Written out because the
    /// compiler's encoder and decoder for it cost more code than Tollgate has room for.
    function _readEvidence() private view returns (DisputeEvidence.Finding memory finding) {
        address evidence = address(_evidence);
        assembly ("memory-safe") {
            let data := mload(0x40)
            let size := calldatasize()
            calldatacopy(data, 0, size)
            if iszero(staticcall(gas(), evidence, data, size, finding, 0xc0)) {
                returndatacopy(0, 0, returndatasize())
                revert(0, returndatasize())
            }
        }
    }

    /// @dev Acts on what a proof established: marks it proven under `key`, refuses a proof without discrepancy, and
    /// punishes the signer, the refund to `finding.refundedBuyer` and the penalty to `penalizedTo`.
    function _judge(DisputeEvidence.Finding memory finding, uint256 key, uint8 kind, address penalizedTo)
        private
        returns (uint256 refund, uint256 penalty)
    {
        _markProven(finding.signer, key);
        if (finding.noDiscrepancy) revert DisputeNoDiscrepancy(finding.signer, finding.sequence);
        return _punish(
            finding.signer, finding.providerId, finding.sequence, kind, finding.refundedBuyer, finding.overcharge, penalizedTo
        );
    }

    /// @dev `key` is the sequence, with `SIGNED_ONLY_PROOFS` set for the proofs built from receipts alone.
    function _markProven(address signer, uint256 key) private {
        uint256 bit = uint256(1) << (key & 0xff);
        uint256 bits = _provenSequences[signer][key >> 8];
        if (bits & bit != 0) revert DisputeAlreadyProven(signer, uint64(key));
        _provenSequences[signer][key >> 8] = bits | bit;
    }

    /// @dev Takes the refund (`overcharge`, capped at the bond) and then the penalty on what is left.
    function _slashBond(uint32 providerId, uint256 overcharge) private returns (uint256 refund, uint256 penalty) {
        uint256 held = _bondHeld(providerId);
        refund = overcharge < held ? overcharge : held;
        // Unchecked: refund <= held < 2^104, so neither the difference nor the product can wrap.
        unchecked {
            penalty = (held - refund) * DISPUTE_PENALTY_BPS / BPS;
        }
        _debitBond(providerId, refund + penalty);
    }

    /// @dev Pays a proven fraud from the bond (the refund first, then the penalty on what is left, both capped
    /// at what the bond holds) into the beneficiaries' award buckets, and compromises the signer.
    function _punish(
        address signer,
        uint32 providerId,
        uint64 sequence,
        uint8 kind,
        address refundedBuyer,
        uint256 overcharge,
        address penalizedTo
    ) private returns (uint256 refund, uint256 penalty) {
        (refund, penalty) = _slashBond(providerId, overcharge);
        _compromiseSigner(signer);
        emit GatewayFraudProven(signer, providerId, sequence, kind, refundedBuyer, refund, penalizedTo, penalty);
        if (refund != 0) _award(refundedBuyer, refund);
        if (penalty != 0) _award(penalizedTo, penalty);
    }

    /// @dev The one door into the award buckets. Never a spendable balance: a provider can sign receipts naming
    /// a buyer address it controls and prove its own fraud, so an award that could leave sooner than a bond
    /// withdrawal would be a way around `BOND_WITHDRAWAL_DELAY`. Each award restarts the beneficiary's clock,
    /// as each bond withdrawal request restarts the bond's.
    function _award(address beneficiary, uint256 amount) private {
        Award storage award = _awards[beneficiary];
        // `amount` <= MAX_BOND < 2^104 fits the cast; the uint224 sum is checked arithmetic.
        uint256 total = award.amount + uint224(amount);
        uint256 claimableAt = block.timestamp + BOND_WITHDRAWAL_DELAY;
        _awards[beneficiary] = Award({amount: uint224(total), claimableAt: uint32(claimableAt)});
        emit DisputeAwarded(beneficiary, amount, total, claimableAt);
    }
}
