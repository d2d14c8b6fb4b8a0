// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UsageTypes} from "../libraries/UsageTypes.sol";

/// @title Settlement of signed batches of metered usage.
/// @notice A gateway signer signs each batch once (EIP-712). A batch must start at the signer's next
/// sequence number, so settlement is idempotent and the settled sequence has no gaps or repeats.
/// Anyone may submit a validly signed batch: the signature, not the sender, is what counts.
///
/// Batch encoding (all big-endian, tightly packed; see `UsageTypes`):
///  - `buyers`:  24 bytes each, strictly ascending by address: address buyer | uint32 creditPlanId (0 = none)
///  - `models`:  8 bytes each: uint32 modelId | uint32 priceEpochIndex (the epoch in force when served)
///  - `records`: 18 bytes each, sequence = firstSequence + position:
///               uint16 buyerIndex | uint8 modelIndex | uint32 inputTokens | uint32 cachedInputTokens |
///               uint32 outputTokens | uint24 servedAt - baseTime
/// `inputTokens` counts all prompt tokens; `cachedInputTokens` is the part of them served from cache.
/// cost = ceil(((input - cached) * inputPrice + cached * cachedPrice + output * outputPrice) / 1e6).
interface IUsageSettlement {
    /// @notice The signature recovered to `signer`, which is not an authorized gateway signer.
    error SettlementUnauthorizedSigner(address signer);
    /// @notice Fraud by `signer` was proven (`GatewayFraudProven`): its batches are refused for good.
    error SettlementSignerCompromised(address signer);
    /// @notice `signer`'s next batch must start at `expected`; this one starts at `provided`.
    error SettlementSequenceMismatch(address signer, uint64 expected, uint64 provided);
    /// @notice A batch section has `length` bytes, not a positive multiple of its entry size `entrySize`.
    error SettlementMalformedSection(uint256 section, uint256 length, uint256 entrySize);
    /// @notice A batch has more than `max` entries in section `section`.
    error SettlementTooManyEntries(uint256 section, uint256 count, uint256 max);
    /// @notice Buyers must be strictly ascending; the one at `index` is not.
    error SettlementBuyersNotSorted(uint256 index);
    /// @notice Model `modelId` is not offered by provider `providerId`, whose signer signed the batch.
    error SettlementModelNotOfProvider(uint32 modelId, uint32 providerId);
    /// @notice Credit plan `planId` is not a plan of provider `providerId`.
    error SettlementPlanNotOfProvider(uint256 planId, uint32 providerId);
    /// @notice Record `index` names buyer or model entry `entry`, beyond the table.
    error SettlementEntryOutOfRange(uint256 index, uint256 entry);
    /// @notice Record `index` claims more cached input tokens than input tokens.
    error SettlementCachedExceedsInput(uint256 index);
    /// @notice Record `index` was served at `servedAt`, outside its named price epoch [`from`, `until`).
    error SettlementPriceEpochMismatch(uint256 index, uint256 servedAt, uint256 from, uint256 until);
    /// @notice Record `index` claims to be served at `servedAt`, after the block time `nowTime`.
    error SettlementServedInFuture(uint256 index, uint256 servedAt, uint256 nowTime);
    /// @notice No batch of `signer` starts at `firstSequence`, or `header` is not the batch that did.
    error SettlementUnknownBatch(address signer, uint64 firstSequence);

    /// @notice A batch settled. `commitment` is the batch's EIP-712 struct hash, whose first 28 bytes are kept
    /// on-chain under (`signer`, `firstSequence`) with the settlement time; `contentRoot` is the Merkle root of the batch's receipts.
    /// `buyerResults` holds 32 bytes per entry of the batch's buyer table, in its order:
    /// uint128 drawn from balance (pending withdrawal included) | uint128 shortfall. What each record cost
    /// follows from the calldata and the price epochs; credits burned show as ERC-1155 burns.
    event BatchSettled(
        address indexed signer,
        uint32 indexed providerId,
        uint64 firstSequence,
        uint256 recordCount,
        bytes32 commitment,
        bytes32 contentRoot,
        uint256 totalCost,
        uint256 providerEarnings,
        uint256 protocolFee,
        uint256 totalShortfall,
        bytes buyerResults
    );

    /// @notice The data of a batch submitted through another contract (a relayer, a multicall, a smart or
    /// EIP-7702-delegated wallet), emitted right after its `BatchSettled`. An auditor reads a batch from the
    /// transaction's calldata when an externally owned account called `settleBatch` directly, and from this event
    /// otherwise, so no batch is unreadable without call traces. `settleBatchCall` is the call's whole calldata
    /// (selector, batch and signature), decoded with the same ABI as a direct transaction's.
    event BatchDataPublished(address indexed signer, uint64 indexed firstSequence, bytes settleBatchCall);

    /// @notice `buyer` could not cover `shortfall` of its usage in `signer`'s batch starting at `firstSequence`
    /// (not enough credits and balance, or over its spending limit). The usage stays recorded, unpaid.
    event ShortfallRecorded(address indexed buyer, address indexed signer, uint64 firstSequence, uint256 shortfall);

    /// @notice Settles a batch signed by an authorized gateway signer. Reverts with a named error on any
    /// malformed or mis-signed batch; never reverts because a buyer cannot pay (that becomes shortfall).
    /// @dev Per buyer and batch: its records' costs are summed; its spending cap for the provider limits what
    /// may be charged; the credit plan named for it covers the records of the plan's models served before
    /// the plan's expiry (credit change first, then whole credits); its balance, then pending withdrawal,
    /// pays the rest. The protocol fee is ceil(fromBalance * feeBps / 10_000), once per buyer and batch.
    function settleBatch(UsageTypes.UsageBatch calldata batch, bytes calldata signature) external;

    /// @notice The EIP-712 digest a gateway signer signs for `batch`.
    function hashUsageBatch(UsageTypes.UsageBatch calldata batch) external view returns (bytes32);

    /// @notice The EIP-712 digest a gateway signs for a receipt it hands a buyer.
    function hashUsageReceipt(UsageTypes.UsageReceipt calldata receipt) external view returns (bytes32);

    /// @notice What is stored for `signer`'s batch starting at `firstSequence`: the first 28 bytes of its
    /// commitment (batch struct hash) and the block time it settled at (the dispute window counts from it);
    /// both 0 if no batch starts there. The other 4 bytes of the hash are in `BatchSettled`.
    function batchCommitmentOf(address signer, uint64 firstSequence)
        external
        view
        returns (bytes28 commitmentPrefix, uint32 settledAt);

    /// @notice Proves a buyer's receipt was part of a settled batch: `header` must hash to the stored
    /// commitment and `proof` must lead from the receipt's struct hash to the header's content root.
    function verifyReceiptSettled(
        address signer,
        UsageTypes.UsageBatchHeader calldata header,
        UsageTypes.UsageReceipt calldata receipt,
        bytes32[] calldata proof
    ) external view returns (bool);
}
