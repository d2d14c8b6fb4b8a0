// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IGatewayDisputes} from "./interfaces/IGatewayDisputes.sol";
import {IUsageSettlement} from "./interfaces/IUsageSettlement.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {
    UsageTypes, USAGE_BUYER_ENTRY_SIZE, USAGE_MODEL_ENTRY_SIZE, USAGE_RECORD_SIZE, RECEIPT_WORDS_SIZE
} from "./libraries/UsageTypes.sol";

/// @title The reading half of Tollgate's fraud proofs: what a proof establishes, checked from Tollgate's public views.
/// @dev Tollgate's code reached the 24 KiB limit when subscriptions were added; the proofs are its coldest large path
/// (they run only when a gateway lied), so their checks moved here, deployed by Tollgate. Each function takes the very
/// calldata of Tollgate's function of the same name (Tollgate forwards `msg.data` as it is), runs that proof's checks
/// in the order Tollgate ran them, reverting with `IGatewayDisputes`' errors, and returns a `Finding`. Tollgate then
/// does what needs its storage written: marks the sequence proven, refuses a proof without discrepancy, punishes
/// (`GatewayDisputes`). Nothing here writes state.
contract DisputeEvidence {
    using UsageTypes for UsageTypes.UsageBatch;
    using UsageTypes for UsageTypes.UsageBatchHeader;
    using UsageTypes for UsageTypes.UsageReceipt;

    /// @dev A batch holds at most 2^24 records, so its content tree is at most 24 levels deep.
    uint256 private constant MAX_PROOF_LENGTH = 24;
    // Offsets of a `PriceEpoch`'s prices in memory (field n at n * 32).
    uint256 private constant EPOCH_INPUT = 0x20;
    uint256 private constant EPOCH_CACHED_INPUT = 0x40;
    uint256 private constant EPOCH_OUTPUT = 0x60;
    // Bit positions in a calldata word loaded at the start of an entry (layout in `IUsageSettlement`).
    uint256 private constant BUYER_ENTRY_BUYER_SHIFT = 96;
    uint256 private constant MODEL_ENTRY_MODEL_SHIFT = 224;
    uint256 private constant MODEL_ENTRY_EPOCH_SHIFT = 192;
    uint256 private constant RECORD_BUYER_INDEX_SHIFT = 240;
    uint256 private constant RECORD_MODEL_INDEX_SHIFT = 232;
    uint256 private constant RECORD_INPUT_SHIFT = 200;
    uint256 private constant RECORD_CACHED_SHIFT = 168;
    uint256 private constant RECORD_OUTPUT_SHIFT = 136;
    uint256 private constant RECORD_SERVED_OFFSET_SHIFT = 112;
    uint256 private constant UINT8_MASK = 0xff;
    uint256 private constant UINT24_MASK = 0xffffff;
    uint256 private constant UINT32_MASK = 0xffffffff;
    uint256 private constant TOKENS_PER_PRICE = 1_000_000;

    /// @notice The Tollgate whose proofs this reads.
    address public immutable tollgate;

    /// @notice What a proof established. Tollgate reads it as 6 static words, in this order.
    struct Finding {
        address signer;
        uint32 providerId;
        uint64 sequence;
        /// @dev The two things compared are identical: no fraud.
        bool noDiscrepancy;
        /// @dev Who is refunded, and how much the chain (or the signed root) charged beyond the receipt.
        address refundedBuyer;
        uint256 overcharge;
    }

    constructor(address tollgate_) {
        tollgate = tollgate_;
    }

    /// @notice The checks of `IGatewayDisputes.proveSettledRecordMismatch`.
    function proveSettledRecordMismatch(
        UsageTypes.UsageReceipt calldata receipt,
        bytes calldata receiptSignature,
        UsageTypes.UsageBatch calldata batch
    ) external view returns (Finding memory finding) {
        bytes32 receiptHash = receipt.hash();
        (address signer, uint32 providerId) = _receiptSigner(receipt, receiptSignature);
        uint64 firstSequence = batch.firstSequence;
        _checkWindow(_settledAtOrRevert(signer, firstSequence, batch.hash()));
        uint64 sequence = receipt.sequence;
        // The batch hashed to a settled commitment, so its sections are as settlement validated them.
        uint256 recordCount = batch.records.length / USAGE_RECORD_SIZE;
        if (sequence < firstSequence || sequence - firstSequence >= recordCount) {
            revert IGatewayDisputes.DisputeSequenceNotInBatch(sequence, firstSequence, recordCount);
        }
        (bytes32 recordHash, address chargedBuyer, uint256 cost) =
            _settledRecordAsReceipt(batch, sequence - firstSequence, receipt);
        finding = Finding({
            signer: signer,
            providerId: providerId,
            sequence: sequence,
            noDiscrepancy: recordHash == receiptHash,
            refundedBuyer: chargedBuyer,
            overcharge: _overcharge(cost, chargedBuyer, receipt)
        });
    }

    /// @notice The checks of `IGatewayDisputes.proveContentMismatch`.
    function proveContentMismatch(
        UsageTypes.UsageReceipt calldata receipt,
        bytes calldata receiptSignature,
        UsageTypes.UsageBatchHeader calldata header,
        UsageTypes.UsageReceipt calldata settledReceipt,
        bytes32[] calldata proof
    ) external view returns (Finding memory finding) {
        bytes32 receiptHash = receipt.hash();
        (address signer, uint32 providerId) = _receiptSigner(receipt, receiptSignature);
        _checkWindow(_settledAtOrRevert(signer, header.firstSequence, header.hash()));
        uint64 sequence = receipt.sequence;
        if (settledReceipt.sequence != sequence) {
            revert IGatewayDisputes.DisputeSequenceMismatch(sequence, settledReceipt.sequence);
        }
        if (proof.length > MAX_PROOF_LENGTH) revert IGatewayDisputes.DisputeProofTooLong(proof.length, MAX_PROOF_LENGTH);
        bytes32 leaf = settledReceipt.hash();
        if (!MerkleProof.verifyCalldata(proof, header.contentRoot, leaf)) {
            revert IGatewayDisputes.DisputeInvalidMerkleProof(leaf, header.contentRoot);
        }
        finding = Finding({
            signer: signer,
            providerId: providerId,
            sequence: sequence,
            noDiscrepancy: leaf == receiptHash,
            refundedBuyer: settledReceipt.buyer,
            overcharge: _overcharge(settledReceipt.cost, settledReceipt.buyer, receipt)
        });
    }

    /// @notice The checks of `IGatewayDisputes.proveEquivocation`.
    function proveEquivocation(
        UsageTypes.UsageReceipt calldata a,
        bytes calldata sigA,
        UsageTypes.UsageReceipt calldata b,
        bytes calldata sigB
    ) external view returns (Finding memory finding) {
        (address signer, uint32 providerId) = _receiptSigner(a, sigA);
        (address signerB,) = _receiptSigner(b, sigB);
        if (signerB != signer) revert IGatewayDisputes.DisputeSignerMismatch(signer, signerB);
        uint64 sequence = a.sequence;
        if (b.sequence != sequence) revert IGatewayDisputes.DisputeSequenceMismatch(sequence, b.sequence);
        _checkWindow(a.servedAt > b.servedAt ? a.servedAt : b.servedAt);
        finding = Finding({
            signer: signer,
            providerId: providerId,
            sequence: sequence,
            noDiscrepancy: a.hash() == b.hash(),
            refundedBuyer: b.buyer,
            overcharge: 0
        });
    }

    /// @dev The key that signed `receipt` under Tollgate's EIP-712 domain, and the provider that authorized it (at any
    /// time: a revoked or compromised key stays answerable for what it signed).
    function _receiptSigner(UsageTypes.UsageReceipt calldata receipt, bytes calldata signature)
        private
        view
        returns (address signer, uint32 providerId)
    {
        // OZ's ECDSA rejects malformed and high-s signatures with its own named errors.
        signer = ECDSA.recover(IUsageSettlement(tollgate).hashUsageReceipt(receipt), signature);
        providerId = IProviderRegistry(tollgate).signerOf(signer).providerId;
        if (providerId == 0) revert IGatewayDisputes.DisputeUnknownSigner(signer);
    }

    /// @dev When `signer`'s batch from `firstSequence` was settled, if it is the batch of struct hash `commitment`.
    function _settledAtOrRevert(address signer, uint64 firstSequence, bytes32 commitment)
        private
        view
        returns (uint256 settledAt)
    {
        (bytes28 prefix, uint32 at) = IUsageSettlement(tollgate).batchCommitmentOf(signer, firstSequence);
        if (at == 0 || prefix != bytes28(commitment)) revert IGatewayDisputes.DisputeUnknownBatch(signer, firstSequence);
        settledAt = at;
    }

    function _checkWindow(uint256 since) private view {
        uint256 closedAt = since + IGatewayDisputes(tollgate).DISPUTE_WINDOW();
        if (block.timestamp > closedAt) revert IGatewayDisputes.DisputeWindowClosed(closedAt, block.timestamp);
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
        IProviderRegistry.PriceEpoch memory epoch =
            IProviderRegistry(tollgate).priceEpochOf(modelId, (model >> MODEL_ENTRY_EPOCH_SHIFT) & UINT32_MASK);
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
}
