// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IGatewayDisputes} from "./interfaces/IGatewayDisputes.sol";
import {
    UsageTypes, USAGE_BUYER_ENTRY_SIZE, USAGE_MODEL_ENTRY_SIZE, USAGE_RECORD_SIZE, RECEIPT_WORDS_SIZE
} from "./libraries/UsageTypes.sol";
import {ProviderBonds} from "./ProviderBonds.sol";

/// @title Fraud proofs against gateway signers, paid from their provider's bond.
/// @dev Every proof is checked in gas bounded by its own calldata: one or two signature recoveries, one
/// stored commitment word, and either the settled batch's hash (already paid for once, at settlement),
/// a Merkle proof of at most 24 hashes, or nothing more. Proofs work while the protocol is paused: they
/// protect buyers.
abstract contract GatewayDisputes is IGatewayDisputes, ProviderBonds {
    using UsageTypes for UsageTypes.UsageBatch;
    using UsageTypes for UsageTypes.UsageBatchHeader;
    using UsageTypes for UsageTypes.UsageReceipt;

    /// @inheritdoc IGatewayDisputes
    uint256 public constant DISPUTE_WINDOW = 14 days;
    /// @inheritdoc IGatewayDisputes
    uint256 public constant DISPUTE_PENALTY_BPS = 1_000;
    /// @dev A batch holds at most 2^24 records, so its content tree is at most 24 levels deep.
    uint256 private constant MAX_PROOF_LENGTH = 24;

    // Offsets of a `PriceEpoch`'s prices in memory (field n at n * 32).
    uint256 private constant EPOCH_INPUT = 0x20;
    uint256 private constant EPOCH_CACHED_INPUT = 0x40;
    uint256 private constant EPOCH_OUTPUT = 0x60;

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

    /// @inheritdoc IGatewayDisputes
    function proveSettledRecordMismatch(
        UsageTypes.UsageReceipt calldata receipt,
        bytes calldata receiptSignature,
        UsageTypes.UsageBatch calldata batch
    ) external nonReentrant returns (uint256 refund, uint256 penalty) {
        bytes32 receiptHash = receipt.hash();
        (address signer, uint32 providerId) = _receiptSigner(receiptHash, receiptSignature);
        uint64 firstSequence = batch.firstSequence;
        _checkWindow(_settledAtOrRevert(signer, firstSequence, batch.hash()));
        uint64 sequence = receipt.sequence;
        // The batch hashed to a settled commitment, so its sections are as settlement validated them.
        uint256 recordCount = batch.records.length / USAGE_RECORD_SIZE;
        if (sequence < firstSequence || sequence - firstSequence >= recordCount) {
            revert DisputeSequenceNotInBatch(sequence, firstSequence, recordCount);
        }
        _markProven(signer, sequence);
        (bytes32 recordHash, address chargedBuyer, uint256 cost) =
            _settledRecordAsReceipt(batch, sequence - firstSequence, receipt);
        if (recordHash == receiptHash) revert DisputeNoDiscrepancy(signer, sequence);
        uint256 overcharge = _overcharge(cost, chargedBuyer, receipt);
        return _punish(signer, providerId, sequence, KIND_RECORD_MISMATCH, chargedBuyer, overcharge, receipt.buyer);
    }

    /// @inheritdoc IGatewayDisputes
    function proveContentMismatch(
        UsageTypes.UsageReceipt calldata receipt,
        bytes calldata receiptSignature,
        UsageTypes.UsageBatchHeader calldata header,
        UsageTypes.UsageReceipt calldata settledReceipt,
        bytes32[] calldata proof
    ) external nonReentrant returns (uint256 refund, uint256 penalty) {
        bytes32 receiptHash = receipt.hash();
        (address signer, uint32 providerId) = _receiptSigner(receiptHash, receiptSignature);
        _checkWindow(_settledAtOrRevert(signer, header.firstSequence, header.hash()));
        uint64 sequence = receipt.sequence;
        if (settledReceipt.sequence != sequence) revert DisputeSequenceMismatch(sequence, settledReceipt.sequence);
        if (proof.length > MAX_PROOF_LENGTH) revert DisputeProofTooLong(proof.length, MAX_PROOF_LENGTH);
        bytes32 leaf = settledReceipt.hash();
        if (!MerkleProof.verifyCalldata(proof, header.contentRoot, leaf)) {
            revert DisputeInvalidMerkleProof(leaf, header.contentRoot);
        }
        _markProven(signer, sequence | SIGNED_ONLY_PROOFS);
        if (leaf == receiptHash) revert DisputeNoDiscrepancy(signer, sequence);
        uint256 overcharge = _overcharge(settledReceipt.cost, settledReceipt.buyer, receipt);
        return _punish(
            signer, providerId, sequence, KIND_CONTENT_MISMATCH, settledReceipt.buyer, overcharge, receipt.buyer
        );
    }

    /// @inheritdoc IGatewayDisputes
    function proveEquivocation(
        UsageTypes.UsageReceipt calldata a,
        bytes calldata sigA,
        UsageTypes.UsageReceipt calldata b,
        bytes calldata sigB
    ) external nonReentrant returns (uint256 refund, uint256 penalty) {
        bytes32 hashA = a.hash();
        bytes32 hashB = b.hash();
        (address signer, uint32 providerId) = _receiptSigner(hashA, sigA);
        (address signerB,) = _receiptSigner(hashB, sigB);
        if (signerB != signer) revert DisputeSignerMismatch(signer, signerB);
        uint64 sequence = a.sequence;
        if (b.sequence != sequence) revert DisputeSequenceMismatch(sequence, b.sequence);
        _checkWindow(a.servedAt > b.servedAt ? a.servedAt : b.servedAt);
        _markProven(signer, sequence | SIGNED_ONLY_PROOFS);
        if (hashA == hashB) revert DisputeNoDiscrepancy(signer, sequence);
        return _punish(signer, providerId, sequence, KIND_EQUIVOCATION, b.buyer, 0, a.buyer);
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

    /// @dev The key that signed the receipt of struct hash `receiptHash` under this contract's EIP-712 domain, and
    /// the provider that authorized it (at any time: a revoked or compromised key stays answerable for what it signed).
    function _receiptSigner(bytes32 receiptHash, bytes calldata signature)
        private
        view
        returns (address signer, uint32 providerId)
    {
        // OZ's ECDSA rejects malformed and high-s signatures with its own named errors.
        signer = ECDSA.recover(_hashTypedDataV4(receiptHash), signature);
        providerId = _signers[signer].providerId;
        if (providerId == 0) revert DisputeUnknownSigner(signer);
    }

    function _settledAtOrRevert(address signer, uint64 firstSequence, bytes32 commitment)
        private
        view
        returns (uint256 settledAt)
    {
        settledAt = _batchSettledAt(signer, firstSequence, commitment);
        if (settledAt == 0) revert DisputeUnknownBatch(signer, firstSequence);
    }

    function _checkWindow(uint256 since) private view {
        uint256 closedAt = since + DISPUTE_WINDOW;
        if (block.timestamp > closedAt) revert DisputeWindowClosed(closedAt, block.timestamp);
    }

    /// @dev `key` is the sequence, with `SIGNED_ONLY_PROOFS` set for the proofs built from receipts alone.
    function _markProven(address signer, uint256 key) private {
        uint256 bit = uint256(1) << (key & 0xff);
        uint256 bits = _provenSequences[signer][key >> 8];
        if (bits & bit != 0) revert DisputeAlreadyProven(signer, uint64(key));
        _provenSequences[signer][key >> 8] = bits | bit;
    }

    /// @dev Record `index` of a settled batch, read as settlement read it (layout in `IUsageSettlement`), as the
    /// receipt the gateway should have signed for it: `receipt` with buyer, model, counts, serving time and prices
    /// replaced by the record's and its epoch's (sequence, cost and content hash kept, as a record has none). Its
    /// struct hash equals the receipt's exactly when all those fields agree. Also returns the record's buyer and
    /// what settlement charged for it. The batch hashed to a settled commitment, so its indices are in range and
    /// its sections well formed: no bounds checks.
    function _settledRecordAsReceipt(
        UsageTypes.UsageBatch calldata batch,
        uint256 index,
        UsageTypes.UsageReceipt calldata receipt
    ) private view returns (bytes32 recordHash, address buyer, uint256 cost) {
        bytes calldata records = batch.records;
        bytes calldata buyers = batch.buyers;
        bytes calldata models = batch.models;
        uint256 word;
        uint256 model;
        assembly ("memory-safe") {
            word := calldataload(add(records.offset, mul(index, USAGE_RECORD_SIZE)))
            let buyerAt := add(buyers.offset, mul(shr(RECORD_BUYER_INDEX_SHIFT, word), USAGE_BUYER_ENTRY_SIZE))
            buyer := shr(BUYER_ENTRY_BUYER_SHIFT, calldataload(buyerAt))
            let modelIndex := and(shr(RECORD_MODEL_INDEX_SHIFT, word), UINT8_MASK)
            model := calldataload(add(models.offset, mul(modelIndex, USAGE_MODEL_ENTRY_SIZE)))
        }
        uint32 modelId = uint32(model >> MODEL_ENTRY_MODEL_SHIFT);
        PriceEpoch memory epoch = _priceEpochs[modelId][(model >> MODEL_ENTRY_EPOCH_SHIFT) & UINT32_MASK];
        bytes32 typehash = UsageTypes.USAGE_RECEIPT_TYPEHASH;
        uint256 baseTime = batch.baseTime;
        assembly ("memory-safe") {
            let input := and(shr(RECORD_INPUT_SHIFT, word), UINT32_MASK)
            let cached := and(shr(RECORD_CACHED_SHIFT, word), UINT32_MASK)
            let output := and(shr(RECORD_OUTPUT_SHIFT, word), UINT32_MASK)
            let inputPrice := mload(add(epoch, EPOCH_INPUT))
            let cachedPrice := mload(add(epoch, EPOCH_CACHED_INPUT))
            let outputPrice := mload(add(epoch, EPOCH_OUTPUT))
            // The formula settlement charged by (`IUsageSettlement`); settlement checked cached <= input, and
            // counts < 2^32 at prices < 2^72 cannot overflow.
            cost := div(
                add(
                    add(mul(sub(input, cached), inputPrice), mul(cached, cachedPrice)),
                    add(mul(output, outputPrice), sub(TOKENS_PER_PRICE, 1))
                ),
                TOKENS_PER_PRICE
            )
            let data := mload(0x40)
            mstore(data, typehash)
            calldatacopy(add(data, 0x20), receipt, RECEIPT_WORDS_SIZE)
            // Words 1-10 of the receipt (word 0 is its sequence), after the typehash.
            mstore(add(data, 0x40), buyer)
            mstore(add(data, 0x60), modelId)
            mstore(add(data, 0x80), input)
            mstore(add(data, 0xa0), cached)
            mstore(add(data, 0xc0), output)
            mstore(add(data, 0xe0), add(baseTime, and(shr(RECORD_SERVED_OFFSET_SHIFT, word), UINT24_MASK)))
            mstore(add(data, 0x100), inputPrice)
            mstore(add(data, 0x120), cachedPrice)
            mstore(add(data, 0x140), outputPrice)
            recordHash := keccak256(data, add(0x20, RECEIPT_WORDS_SIZE))
        }
    }

    /// @dev What `chargedBuyer` paid beyond the receipt: all of `charged` if the receipt names another buyer.
    function _overcharge(uint256 charged, address chargedBuyer, UsageTypes.UsageReceipt calldata receipt)
        private
        pure
        returns (uint256)
    {
        if (chargedBuyer != receipt.buyer) return charged;
        return charged > receipt.cost ? charged - receipt.cost : 0;
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
