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

    /// @dev The terms a record is priced by, loaded once per batch.
    struct ModelTerms {
        uint256 from;
        uint256 until;
        uint256 inputPrice;
        uint256 cachedInputPrice;
        uint256 outputPrice;
        uint256 maskBit;
    }

    /// @dev A buyer's state during one batch: loaded once, updated per record in memory, written once.
    struct BuyerTally {
        address buyer;
        uint256 planId;
        uint256 balance;
        uint256 pending;
        uint256 available;
        uint256 credits;
        uint256 creditValue;
        uint256 creditExpiry;
        uint256 creditMask;
        bool limited;
        uint256 allowance;
        uint256 windowStart;
        uint256 spent;
        uint256 cost;
        uint256 creditsBurned;
        uint256 creditCovered;
        uint256 fromBalance;
        uint256 shortfall;
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
        uint256 protocolFee = _chargeRecords(batch, recordCount, models, buyers);
        (uint256 totalCost, uint256 totalPaid, uint256 totalShortfall) =
            _applyTallies(buyers, providerId, signer, firstSequence);

        uint256 providerEarnings = totalPaid - protocolFee;
        _earnings[providerId] += providerEarnings;
        _protocolFees += protocolFee;
        emit BatchSettled(
            signer,
            providerId,
            firstSequence,
            recordCount,
            commitment,
            batch.contentRoot,
            totalCost,
            providerEarnings,
            protocolFee,
            totalShortfall
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

    /// @dev Prices every record and draws it from its buyer's tally: credits, then balance, else shortfall.
    /// Returns the protocol fee, taken per record (rounded up) on what was drawn from balance.
    function _chargeRecords(
        UsageTypes.UsageBatch calldata batch,
        uint256 recordCount,
        ModelTerms[] memory models,
        BuyerTally[] memory buyers
    ) private view returns (uint256 protocolFee) {
        uint256 baseTime = batch.baseTime;
        uint256 feeBps = _feeBps;
        uint256 buyerCount = buyers.length;
        uint256 modelCount = models.length;
        bytes calldata records = batch.records;
        uint256 offset;
        assembly ("memory-safe") {
            offset := records.offset
        }
        for (uint256 i; i < recordCount; ++i) {
            uint256 word;
            assembly ("memory-safe") {
                word := calldataload(add(offset, mul(i, 18)))
            }
            uint256 buyerIndex = word >> 240;
            uint256 modelIndex = (word >> 232) & 0xff;
            if (buyerIndex >= buyerCount) revert SettlementEntryOutOfRange(i, buyerIndex);
            if (modelIndex >= modelCount) revert SettlementEntryOutOfRange(i, modelIndex);
            uint256 input = (word >> 200) & 0xffffffff;
            uint256 cached = (word >> 168) & 0xffffffff;
            uint256 output = (word >> 136) & 0xffffffff;
            uint256 servedAt = baseTime + ((word >> 112) & 0xffffff);
            if (cached > input) revert SettlementCachedExceedsInput(i);
            if (servedAt > block.timestamp) revert SettlementServedInFuture(i, servedAt, block.timestamp);
            ModelTerms memory terms = models[modelIndex];
            if (servedAt < terms.from || servedAt >= terms.until) {
                revert SettlementPriceEpochMismatch(i, servedAt, terms.from, terms.until);
            }
            uint256 cost;
            unchecked {
                // Counts < 2^32 and prices < 2^72, so the sum stays below 2^106: no overflow.
                cost = (
                    (input - cached) * terms.inputPrice + cached * terms.cachedInputPrice
                        + output * terms.outputPrice + (TOKENS_PER_PRICE - 1)
                ) / TOKENS_PER_PRICE;
            }
            uint256 paid = _drawRecord(buyers[buyerIndex], terms.maskBit, servedAt, cost);
            protocolFee += _feeOn(paid, feeBps);
        }
    }

    /// @dev Draws one record's `cost` from a buyer's tally and returns what came from its balance.
    function _drawRecord(BuyerTally memory tally, uint256 maskBit, uint256 servedAt, uint256 cost)
        private
        pure
        returns (uint256 paid)
    {
        tally.cost += cost;
        uint256 chargeable = cost;
        if (tally.limited) {
            uint256 allowance = tally.allowance;
            if (chargeable > allowance) chargeable = allowance;
            tally.allowance = allowance - chargeable;
            tally.spent += chargeable;
        }
        uint256 rest = chargeable;
        uint256 credits = tally.credits;
        if (credits != 0 && tally.creditMask & maskBit != 0 && servedAt < tally.creditExpiry) {
            uint256 value = tally.creditValue;
            uint256 burned = rest / value;
            if (burned > credits) burned = credits;
            rest -= burned * value;
            // A remainder worth less than a credit goes to balance; if the balance cannot cover it, one
            // more credit does, so a buyer holding credits is never short for a fraction of one.
            if (rest != 0 && burned < credits && tally.available < rest) {
                ++burned;
                rest = 0;
            }
            tally.credits = credits - burned;
            tally.creditsBurned += burned;
            tally.creditCovered += chargeable - rest;
        }
        uint256 available = tally.available;
        paid = rest <= available ? rest : available;
        tally.available = available - paid;
        tally.fromBalance += paid;
        tally.shortfall += cost - chargeable + rest - paid;
    }

    /// @dev Writes each buyer's tally back: one account slot, one credit burn, one limit window, one event.
    function _applyTallies(BuyerTally[] memory buyers, uint32 providerId, address signer, uint64 firstSequence)
        private
        returns (uint256 totalCost, uint256 totalPaid, uint256 totalShortfall)
    {
        for (uint256 j; j < buyers.length; ++j) {
            BuyerTally memory tally = buyers[j];
            uint256 fromBalance = tally.fromBalance;
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
            _emitBuyerSettled(tally, signer, firstSequence);
            totalCost += tally.cost;
            totalPaid += fromBalance;
            totalShortfall += tally.shortfall;
        }
    }

    function _emitBuyerSettled(BuyerTally memory tally, address signer, uint64 firstSequence) private {
        emit BuyerSettled(
            tally.buyer,
            signer,
            firstSequence,
            tally.cost,
            tally.planId,
            tally.creditsBurned,
            tally.creditCovered,
            tally.fromBalance,
            tally.shortfall
        );
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
            models[k] = ModelTerms({
                from: epoch.effectiveFrom,
                until: epochIndex + 1 < epochCount ? epochs[epochIndex + 1].effectiveFrom : type(uint256).max,
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
            tally.available = uint256(account.balance) + account.pendingWithdrawal;
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
