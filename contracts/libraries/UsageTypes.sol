// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev Entry sizes of the packed batch sections, at file level so settlement's assembly can name them
/// (inline assembly cannot reach a library's members).
uint256 constant USAGE_BUYER_ENTRY_SIZE = 24;
uint256 constant USAGE_MODEL_ENTRY_SIZE = 8;
uint256 constant USAGE_RECORD_SIZE = 18;
/// @dev Bytes of a `UsageReceipt` in calldata: its 12 fields, one word each.
uint256 constant RECEIPT_WORDS_SIZE = 0x180;

/// @title Every EIP-712 type Tollgate signs, in one place, with its hash helpers.
/// @dev `server/chain/eip712.ts` holds the same type strings; `test/contracts/typehashes.test.ts` pins them
/// together so the TypeScript signer and this verifier can never drift apart.
library UsageTypes {
    /// @notice A gateway's batch of usage records (encoding in `IUsageSettlement`).
    struct UsageBatch {
        uint64 firstSequence;
        uint32 baseTime;
        bytes buyers;
        bytes models;
        bytes records;
        bytes32 contentRoot;
    }

    /// @notice A settled batch with its byte sections replaced by their hashes: enough to recompute its commitment.
    struct UsageBatchHeader {
        uint64 firstSequence;
        uint32 baseTime;
        bytes32 buyersHash;
        bytes32 modelsHash;
        bytes32 recordsHash;
        bytes32 contentRoot;
    }

    /// @notice What a gateway hands a buyer for one call. Its struct hash is a leaf of the batch's content root.
    struct UsageReceipt {
        uint64 sequence;
        address buyer;
        uint32 modelId;
        uint32 inputTokens;
        uint32 cachedInputTokens;
        uint32 outputTokens;
        uint32 servedAt;
        uint72 inputPrice;
        uint72 cachedInputPrice;
        uint72 outputPrice;
        uint256 cost;
        bytes32 contentHash;
    }

    bytes internal constant USAGE_BATCH_TYPE =
        "UsageBatch(uint64 firstSequence,uint32 baseTime,bytes buyers,bytes models,bytes records,bytes32 contentRoot)";
    bytes32 internal constant USAGE_BATCH_TYPEHASH = keccak256(USAGE_BATCH_TYPE);

    bytes internal constant USAGE_RECEIPT_TYPE = "UsageReceipt(uint64 sequence,address buyer,uint32 modelId,"
        "uint32 inputTokens,uint32 cachedInputTokens,uint32 outputTokens,uint32 servedAt,uint72 inputPrice,"
        "uint72 cachedInputPrice,uint72 outputPrice,uint256 cost,bytes32 contentHash)";
    bytes32 internal constant USAGE_RECEIPT_TYPEHASH = keccak256(USAGE_RECEIPT_TYPE);

    /// @dev Entry sizes of the packed batch sections.
    uint256 internal constant BUYER_ENTRY_SIZE = USAGE_BUYER_ENTRY_SIZE;
    uint256 internal constant MODEL_ENTRY_SIZE = USAGE_MODEL_ENTRY_SIZE;
    uint256 internal constant RECORD_SIZE = USAGE_RECORD_SIZE;

    function hash(UsageBatch calldata batch) internal pure returns (bytes32) {
        return hashHeader(
            batch.firstSequence,
            batch.baseTime,
            keccak256(batch.buyers),
            keccak256(batch.models),
            keccak256(batch.records),
            batch.contentRoot
        );
    }

    function hash(UsageBatchHeader calldata header) internal pure returns (bytes32) {
        return hashHeader(
            header.firstSequence,
            header.baseTime,
            header.buyersHash,
            header.modelsHash,
            header.recordsHash,
            header.contentRoot
        );
    }

    function hashHeader(
        uint64 firstSequence,
        uint32 baseTime,
        bytes32 buyersHash,
        bytes32 modelsHash,
        bytes32 recordsHash,
        bytes32 contentRoot
    ) private pure returns (bytes32) {
        return keccak256(
            abi.encode(USAGE_BATCH_TYPEHASH, firstSequence, baseTime, buyersHash, modelsHash, recordsHash, contentRoot)
        );
    }

    /// @dev A receipt is 12 static words in calldata, in the type's field order, so its struct hash is one copy
    /// and one keccak over the typehash and those words. No field is range-checked here: a value with dirty high
    /// bits only yields a hash no gateway signed, so no signature recovers to a known signer and no Merkle proof
    /// leads to a settled root (test/contracts/typehashes.test.ts pins this against viem's `hashStruct`).
    function hash(UsageReceipt calldata r) internal pure returns (bytes32 digest) {
        bytes32 typehash = USAGE_RECEIPT_TYPEHASH;
        assembly ("memory-safe") {
            let data := mload(0x40)
            mstore(data, typehash)
            calldatacopy(add(data, 0x20), r, RECEIPT_WORDS_SIZE)
            digest := keccak256(data, add(0x20, RECEIPT_WORDS_SIZE))
        }
    }
}
