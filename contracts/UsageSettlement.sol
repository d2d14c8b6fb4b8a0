// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IUsageSettlement} from "./interfaces/IUsageSettlement.sol";
import {UsageTypes} from "./libraries/UsageTypes.sol";
import {AccessCredits} from "./AccessCredits.sol";

/// @title Settlement of gateway-signed usage batches.
/// @dev Gas is the design constraint: a batch reads and writes each buyer's account slot once, prices
/// records from memory, and keeps a single 32-byte commitment per batch. Records stay in calldata, which
/// (with the price events) is all an auditor needs to recompute every charge.
abstract contract UsageSettlement is IUsageSettlement, AccessCredits, EIP712 {
    using UsageTypes for UsageTypes.UsageBatch;
    using UsageTypes for UsageTypes.UsageBatchHeader;
    using UsageTypes for UsageTypes.UsageReceipt;

    uint256 private constant SECTION_BUYERS = 0;
    uint256 private constant SECTION_MODELS = 1;
    uint256 private constant SECTION_RECORDS = 2;
    uint256 private constant MAX_BUYERS = 1 << 16;
    uint256 private constant MAX_MODELS = 1 << 8;
    uint256 private constant MAX_RECORDS = 1 << 24;
    uint256 private constant TOKENS_PER_PRICE = 1_000_000;

    /// @dev The terms a record is priced by, loaded once per batch. Addressed by offset in `_chargeRecords`.
    struct ModelTerms {
        uint256 from;
        uint256 until;
        uint256 inputPrice;
        uint256 cachedInputPrice;
        uint256 outputPrice;
        uint256 maskBit;
    }

    /// @dev A buyer's state during one batch: loaded once, priced into per record, drawn and written once.
    /// The record loop in `_priceRecords` addresses fields by offset (field n at n * 32): keep the order.
    struct BuyerTally {
        address buyer;
        uint256 planId;
        uint256 balance;
        uint256 pending;
        uint256 credits;
        uint256 creditValue;
        uint256 creditExpiry; // 0xc0
        uint256 creditMask; // 0xe0
        bool limited;
        uint256 allowance;
        uint256 windowStart;
        uint256 spent;
        uint256 otherCost; // 0x180
        uint256 eligibleCost; // 0x1a0
        uint256 creditsBurned;
        uint256 fromBalance;
        uint256 shortfall;
    }

    struct Totals {
        uint256 cost;
        uint256 paid;
        uint256 shortfall;
        uint256 protocolFee;
    }

    mapping(address signer => mapping(uint64 firstSequence => bytes32 commitment)) private _batchCommitments;

    /// @inheritdoc IUsageSettlement
    function settleBatch(UsageTypes.UsageBatch calldata batch, bytes calldata signature)
        external
        nonReentrant
        whenNotPaused
    {
        bytes32 commitment = batch.hash();
        // OZ's ECDSA rejects high-s (malleable) signatures with ECDSAInvalidSignatureS.
        address signer = ECDSA.recover(_hashTypedDataV4(commitment), signature);
        Signer storage signerState = _signers[signer];
        if (!signerState.authorized) revert SettlementUnauthorizedSigner(signer);
        uint64 firstSequence = signerState.nextSequence;
        if (batch.firstSequence != firstSequence) {
            revert SettlementSequenceMismatch(signer, firstSequence, batch.firstSequence);
        }
        uint32 providerId = signerState.providerId;
        uint256 recordCount =
            _entryCount(SECTION_RECORDS, batch.records.length, UsageTypes.RECORD_SIZE, MAX_RECORDS);
        signerState.nextSequence = firstSequence + uint64(recordCount);
        _batchCommitments[signer][firstSequence] = commitment;

        ModelTerms[] memory models = _loadModels(batch.models, providerId);
        BuyerTally[] memory buyers = _loadBuyers(batch.buyers, providerId);
        _priceRecords(batch, recordCount, models, buyers);
        (Totals memory totals, bytes memory buyerResults) = _applyTallies(buyers, providerId, signer, firstSequence);

        uint256 providerEarnings = totals.paid - totals.protocolFee;
        _earnings[providerId] += providerEarnings;
        _protocolFees += totals.protocolFee;
        emit BatchSettled(
            signer,
            providerId,
            firstSequence,
            recordCount,
            commitment,
            batch.contentRoot,
            totals.cost,
            providerEarnings,
            totals.protocolFee,
            totals.shortfall,
            buyerResults
        );
    }

    /// @inheritdoc IUsageSettlement
    function hashUsageBatch(UsageTypes.UsageBatch calldata batch) external view returns (bytes32) {
        return _hashTypedDataV4(batch.hash());
    }

    /// @inheritdoc IUsageSettlement
    function hashUsageReceipt(UsageTypes.UsageReceipt calldata receipt) external view returns (bytes32) {
        return _hashTypedDataV4(receipt.hash());
    }

    /// @inheritdoc IUsageSettlement
    function batchCommitmentOf(address signer, uint64 firstSequence) external view returns (bytes32) {
        return _batchCommitments[signer][firstSequence];
    }

    /// @inheritdoc IUsageSettlement
    function verifyReceiptSettled(
        address signer,
        UsageTypes.UsageBatchHeader calldata header,
        UsageTypes.UsageReceipt calldata receipt,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 stored = _batchCommitments[signer][header.firstSequence];
        if (stored == bytes32(0) || stored != header.hash()) {
            revert SettlementUnknownBatch(signer, header.firstSequence);
        }
        return receipt.sequence >= header.firstSequence
            && MerkleProof.verifyCalldata(proof, header.contentRoot, receipt.hash());
    }

    /// @dev Prices every record and adds its cost to its buyer's tally: to `eligibleCost` when the buyer's
    /// named credit plan covers the record (model in the plan, served before expiry), else to `otherCost`.
    /// The loop is assembly because it runs once per record and is most of a large batch's gas; when it
    /// meets an invalid record it stops, and `_revertInvalidRecord` names the error in plain Solidity.
    function _priceRecords(
        UsageTypes.UsageBatch calldata batch,
        uint256 recordCount,
        ModelTerms[] memory models,
        BuyerTally[] memory buyers
    ) private view {
        uint256 baseTime = batch.baseTime;
        bytes calldata records = batch.records;
        uint256 badRecord; // 1 + index of the first invalid record, or 0
        assembly ("memory-safe") {
            let buyerCount := mload(buyers)
            let modelCount := mload(models)
            let buyerData := add(buyers, 0x20)
            let modelData := add(models, 0x20)
            let start := records.offset
            let end := add(start, mul(recordCount, 18))
            // Counts < 2^32 and prices < 2^72, so a record costs < 2^106 and no sum over at most 2^24
            // records can overflow 256 bits.
            for { let ptr := start } lt(ptr, end) { ptr := add(ptr, 18) } {
                let word := calldataload(ptr)
                let buyerIndex := shr(240, word)
                let modelIndex := and(shr(232, word), 0xff)
                let input := and(shr(200, word), 0xffffffff)
                let cached := and(shr(168, word), 0xffffffff)
                let servedAt := add(baseTime, and(shr(112, word), 0xffffff))
                // Indices first: a record must never make the loop read memory outside the tables.
                if iszero(and(and(lt(buyerIndex, buyerCount), lt(modelIndex, modelCount)), iszero(gt(cached, input)))) {
                    badRecord := add(div(sub(ptr, start), 18), 1)
                    break
                }
                let terms := mload(add(modelData, shl(5, modelIndex)))
                // from <= servedAt < until, where until <= now + 1
                if iszero(and(iszero(lt(servedAt, mload(terms))), lt(servedAt, mload(add(terms, 0x20))))) {
                    badRecord := add(div(sub(ptr, start), 18), 1)
                    break
                }
                let cost := div(
                    add(
                        add(mul(sub(input, cached), mload(add(terms, 0x40))), mul(cached, mload(add(terms, 0x60)))),
                        add(mul(and(shr(136, word), 0xffffffff), mload(add(terms, 0x80))), 999999)
                    ),
                    1000000
                )
                let tally := mload(add(buyerData, shl(5, buyerIndex)))
                // otherCost is field 12 (0x180), eligibleCost field 13 (0x1a0)
                let eligible := and(
                    iszero(iszero(and(mload(add(tally, 0xe0)), mload(add(terms, 0xa0))))),
                    lt(servedAt, mload(add(tally, 0xc0)))
                )
                let slot := add(tally, add(0x180, shl(5, eligible)))
                mstore(slot, add(mload(slot), cost))
            }
        }
        if (badRecord != 0) _revertInvalidRecord(batch, badRecord - 1, buyers.length, models);
    }

    /// @dev Reverts with the named error for record `index`, which the record loop found invalid.
    function _revertInvalidRecord(
        UsageTypes.UsageBatch calldata batch,
        uint256 index,
        uint256 buyerCount,
        ModelTerms[] memory models
    ) private view {
        uint256 word = uint256(bytes32(batch.records[index * 18:index * 18 + 18]));
        uint256 buyerIndex = word >> 240;
        uint256 modelIndex = (word >> 232) & 0xff;
        if (buyerIndex >= buyerCount) revert SettlementEntryOutOfRange(index, buyerIndex);
        if (modelIndex >= models.length) revert SettlementEntryOutOfRange(index, modelIndex);
        if ((word >> 168) & 0xffffffff > (word >> 200) & 0xffffffff) revert SettlementCachedExceedsInput(index);
        uint256 servedAt = batch.baseTime + ((word >> 112) & 0xffffff);
        if (servedAt > block.timestamp) revert SettlementServedInFuture(index, servedAt, block.timestamp);
        ModelTerms memory terms = models[modelIndex];
        revert SettlementPriceEpochMismatch(index, servedAt, terms.from, terms.until);
    }

    /// @dev Draws a buyer's batch total: the spending cap first limits what may be charged; credits of the
    /// named plan cover the eligible part; the balance (pending withdrawal included) pays the rest; what is
    /// left is shortfall. The fee is taken once per buyer and batch on what came from balance, rounded up,
    /// so splitting usage into more or smaller records never lowers it.
    function _drawTally(BuyerTally memory tally, uint256 feeBps) private pure returns (uint256 fee) {
        // Unchecked: costs sum below 2^130, allowances and balances below 2^113, and every subtraction
        // takes away at most what the min() just above it allows.
        unchecked {
            uint256 total = tally.otherCost + tally.eligibleCost;
            uint256 chargeable = total;
            if (tally.limited && chargeable > tally.allowance) chargeable = tally.allowance;
            uint256 available = tally.balance + tally.pending;
            // Eligible usage is charged first, so the cap leaves it to credits where it can.
            uint256 toCredits = tally.eligibleCost < chargeable ? tally.eligibleCost : chargeable;
            uint256 rest = chargeable;
            uint256 credits = tally.credits;
            if (toCredits != 0 && credits != 0) {
                uint256 value = tally.creditValue;
                uint256 burned = toCredits / value;
                if (burned > credits) burned = credits;
                uint256 remainder = toCredits - burned * value;
                rest -= burned * value;
                // A remainder worth less than a credit goes to balance; if the balance cannot cover what is
                // left, one more credit covers it, so a buyer holding credits is never short by a fraction of one.
                if (remainder != 0 && burned < credits && available < rest) {
                    ++burned;
                    rest -= remainder;
                }
                tally.creditsBurned = burned;
            }
            uint256 paid = rest <= available ? rest : available;
            tally.fromBalance = paid;
            tally.shortfall = total - chargeable + rest - paid;
            // The cap counts what was actually charged (credits and balance), not what went unpaid.
            if (tally.limited) tally.spent += chargeable - (rest - paid);
            fee = _feeOn(paid, feeBps);
        }
    }

    /// @dev Draws and writes back each buyer's tally, and packs what the batch did to it into `results`:
    /// 32 bytes per buyer, in table order, uint128 fromBalance | uint128 shortfall.
    function _applyTallies(BuyerTally[] memory buyers, uint32 providerId, address signer, uint64 firstSequence)
        private
        returns (Totals memory totals, bytes memory results)
    {
        uint256 count = buyers.length;
        uint256 feeBps = _feeBps;
        results = new bytes(count * 32);
        for (uint256 j; j < count; ++j) {
            BuyerTally memory tally = buyers[j];
            totals.protocolFee += _drawTally(tally, feeBps);
            uint256 packed = _applyTally(tally, providerId, signer, firstSequence);
            assembly ("memory-safe") {
                mstore(add(add(results, 0x20), shl(5, j)), packed)
            }
            totals.cost += tally.otherCost + tally.eligibleCost;
            totals.paid += tally.fromBalance;
            totals.shortfall += tally.shortfall;
        }
    }

    /// @dev One account slot, one credit burn, one limit window per buyer and batch; an indexed
    /// `ShortfallRecorded` when the buyer could not pay for everything.
    function _applyTally(BuyerTally memory tally, uint32 providerId, address signer, uint64 firstSequence)
        private
        returns (uint256 packed)
    {
        uint256 fromBalance = tally.fromBalance;
        uint256 shortfall = tally.shortfall;
        if (fromBalance != 0) {
            // Spendable balance first; pending withdrawals are still the buyer's money until withdrawn.
            uint256 balance = tally.balance;
            uint256 fromSpendable = fromBalance <= balance ? fromBalance : balance;
            Account storage account = _accounts[tally.buyer];
            account.balance = uint112(balance - fromSpendable);
            account.pendingWithdrawal = uint104(tally.pending - (fromBalance - fromSpendable));
        }
        if (tally.creditsBurned != 0) _burn(tally.buyer, tally.planId, tally.creditsBurned);
        if (tally.limited) _recordSpending(tally.buyer, providerId, tally.windowStart, tally.spent);
        if (shortfall != 0) emit ShortfallRecorded(tally.buyer, signer, firstSequence, shortfall);
        // fromBalance <= balance + pending < 2^106. A shortfall can pass 128 bits only in theory
        // (2^24 records at the highest prices): it saturates here; BatchSettled's total is exact.
        packed = (fromBalance << 128) | (shortfall > type(uint128).max ? type(uint128).max : shortfall);
    }

    function _loadModels(bytes calldata table, uint32 providerId) private view returns (ModelTerms[] memory models) {
        uint256 count = _entryCount(SECTION_MODELS, table.length, UsageTypes.MODEL_ENTRY_SIZE, MAX_MODELS);
        models = new ModelTerms[](count);
        for (uint256 k; k < count; ++k) {
            uint256 word = uint256(bytes32(table[k * 8:k * 8 + 8]));
            uint32 modelId = uint32(word >> 224);
            uint256 epochIndex = (word >> 192) & 0xffffffff;
            Model storage model = _models[modelId];
            if (model.providerId != providerId) revert SettlementModelNotOfProvider(modelId, providerId);
            PriceEpoch[] storage epochs = _priceEpochs[modelId];
            uint256 epochCount = epochs.length;
            if (epochIndex >= epochCount) revert RegistryUnknownPriceEpoch(modelId, epochIndex);
            PriceEpoch memory epoch = epochs[epochIndex];
            uint256 until = epochIndex + 1 < epochCount ? epochs[epochIndex + 1].effectiveFrom : type(uint256).max;
            // Nothing can have been served after now: capping `until` lets one check in the record loop cover both.
            if (until > block.timestamp) until = block.timestamp + 1;
            models[k] = ModelTerms({
                from: epoch.effectiveFrom,
                until: until,
                inputPrice: epoch.input,
                cachedInputPrice: epoch.cachedInput,
                outputPrice: epoch.output,
                maskBit: uint256(1) << model.localIndex
            });
        }
    }

    function _loadBuyers(bytes calldata table, uint32 providerId) private view returns (BuyerTally[] memory buyers) {
        uint256 count = _entryCount(SECTION_BUYERS, table.length, UsageTypes.BUYER_ENTRY_SIZE, MAX_BUYERS);
        buyers = new BuyerTally[](count);
        address previous;
        for (uint256 j; j < count; ++j) {
            uint256 word = uint256(bytes32(table[j * 24:j * 24 + 24]));
            address buyer = address(uint160(word >> 96));
            uint256 planId = (word >> 64) & 0xffffffff;
            // Strictly ascending: a buyer listed twice would be written twice from stale state.
            if (buyer <= previous) revert SettlementBuyersNotSorted(j);
            previous = buyer;
            Account memory account = _accounts[buyer];
            BuyerTally memory tally = buyers[j];
            tally.buyer = buyer;
            tally.balance = account.balance;
            tally.pending = account.pendingWithdrawal;
            if (planId != 0) {
                CreditPlan storage plan = _plans[planId];
                if (plan.providerId != providerId) revert SettlementPlanNotOfProvider(planId, providerId);
                uint256 expiresAt = plan.expiresAt;
                tally.planId = planId;
                tally.credits = balanceOf(buyer, planId);
                tally.creditValue = plan.valuePerCredit;
                tally.creditExpiry = expiresAt == 0 ? type(uint256).max : expiresAt;
                tally.creditMask = plan.modelMask;
            }
            if (account.flags & FLAG_HAS_LIMITS != 0) {
                (tally.allowance, tally.windowStart, tally.spent, tally.limited) =
                    _remainingAllowance(buyer, providerId);
            }
        }
    }

    function _entryCount(uint256 section, uint256 length, uint256 entrySize, uint256 maxEntries)
        private
        pure
        returns (uint256 count)
    {
        if (length == 0 || length % entrySize != 0) revert SettlementMalformedSection(section, length, entrySize);
        count = length / entrySize;
        if (count > maxEntries) revert SettlementTooManyEntries(section, count, maxEntries);
    }
}
