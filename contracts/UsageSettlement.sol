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

    /// @dev The terms a record is priced by, loaded once per batch. The assembly in `_priceRecords` reads
    /// the fields by offset: keep the order.
    struct ModelTerms {
        uint256 from; // 0x00
        uint256 until; // 0x20: the next epoch's start, or now + 1
        uint256 inputPrice; // 0x40
        uint256 cachedInputPrice; // 0x60
        uint256 outputPrice; // 0x80
        uint256 maskBit; // 0xa0: the model's bit in a credit plan's mask
    }

    /// @dev A buyer's state during one batch: loaded once, each of its records added in, drawn and written
    /// back once. The assembly in `_loadBuyers`, `_priceRecords` and `_applyTallies` addresses fields by
    /// offset (field n at n * 32): keep the order.
    struct BuyerTally {
        address buyer; // 0x00
        uint256 planId; // 0x20
        uint256 balance; // 0x40
        uint256 pending; // 0x60
        uint256 credits; // 0x80
        uint256 creditValue; // 0xa0
        uint256 creditExpiry; // 0xc0
        uint256 creditMask; // 0xe0
        bool limited; // 0x100
        uint256 allowance; // 0x120
        uint256 windowStart; // 0x140
        uint256 spent; // 0x160
        uint256 otherCost; // 0x180
        uint256 eligibleCost; // 0x1a0
        uint256 creditsBurned; // 0x1c0
        uint256 fromBalance; // 0x1e0
        uint256 shortfall; // 0x200
        uint256 accountSlot; // 0x220: storage slot of the buyer's Account
        uint256 accountWord; // 0x240: that slot as read at the start of the batch
        uint256 creditChange; // 0x260: value left from a partly used credit of `planId`
        uint256 creditChangeBefore; // 0x280
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
        (BuyerTally[] memory buyers, bool anyPlan, bool anySpecial) = _loadBuyers(batch.buyers, providerId);
        _priceRecords(batch, recordCount, models, buyers, anyPlan);
        (Totals memory totals, bytes memory buyerResults) =
            _applyTallies(buyers, anySpecial, providerId, signer, firstSequence);

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
        BuyerTally[] memory buyers,
        bool anyPlan
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
                // ceil(weighted / 1e6): prices are per million tokens
                let cost := div(
                    add(
                        add(mul(sub(input, cached), mload(add(terms, 0x40))), mul(cached, mload(add(terms, 0x60)))),
                        add(mul(and(shr(136, word), 0xffffffff), mload(add(terms, 0x80))), 999999)
                    ),
                    1000000
                )
                let tally := mload(add(buyerData, shl(5, buyerIndex)))
                // otherCost is field 12 (0x180), eligibleCost field 13 (0x1a0)
                let slot := add(tally, 0x180)
                if anyPlan {
                    let eligible := and(
                        iszero(iszero(and(mload(add(tally, 0xe0)), mload(add(terms, 0xa0))))),
                        lt(servedAt, mload(add(tally, 0xc0)))
                    )
                    slot := add(slot, shl(5, eligible))
                }
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

    /// @dev Draws a buyer's batch total: the spending cap first limits what may be charged; the named plan's
    /// credits cover the eligible part (first the change left from a credit burned earlier, then whole credits,
    /// the unused value of the last one kept as change); the balance (pending withdrawal included) pays the
    /// rest; what is left is shortfall. The fee is taken once per buyer and batch on what came from balance,
    /// rounded up, so splitting usage into more or smaller records never lowers it.
    function _drawTally(BuyerTally memory tally, uint256 feeBps) private pure returns (uint256 fee) {
        // Unchecked: costs sum below 2^130, allowances and balances below 2^113, credit values below 2^96,
        // and every subtraction takes away at most what the min() just above it allows.
        unchecked {
            uint256 total = tally.otherCost + tally.eligibleCost;
            uint256 chargeable = total;
            if (tally.limited && chargeable > tally.allowance) chargeable = tally.allowance;
            // Eligible usage is charged first, so the cap leaves it to credits where it can.
            uint256 toCredits = tally.eligibleCost < chargeable ? tally.eligibleCost : chargeable;
            uint256 change = tally.creditChange;
            uint256 covered = toCredits < change ? toCredits : change;
            change -= covered;
            uint256 need = toCredits - covered;
            uint256 credits = tally.credits;
            if (need != 0 && credits != 0) {
                uint256 value = tally.creditValue;
                uint256 burned = (need + value - 1) / value;
                if (burned > credits) burned = credits;
                uint256 burnedValue = burned * value;
                uint256 fromBurned = need < burnedValue ? need : burnedValue;
                // Whole credits are burned; what the last one is worth beyond this batch's usage stays the
                // buyer's as change, so rounding up never costs a buyer value and never counts against its cap.
                change += burnedValue - fromBurned;
                covered += fromBurned;
                tally.creditsBurned = burned;
            }
            tally.creditChange = change;
            uint256 rest = chargeable - covered;
            uint256 available = tally.balance + tally.pending;
            uint256 paid = rest <= available ? rest : available;
            tally.fromBalance = paid;
            tally.shortfall = total - chargeable + rest - paid;
            // The cap counts what was actually charged (credits and balance), not what went unpaid.
            if (tally.limited) tally.spent += covered + paid;
            fee = _feeOn(paid, feeBps);
        }
    }

    /// @dev Draws and writes back each buyer's tally, and packs what the batch did to it into `results`:
    /// 32 bytes per buyer, in table order, uint128 fromBalance | uint128 shortfall. Buyers with credits or
    /// limits go through `_drawTally` and `_applyTally` first; the rest, most of them, are drawn and written
    /// in one assembly pass: one SSTORE of the account word read in `_loadBuyers`.
    function _applyTallies(
        BuyerTally[] memory buyers,
        bool anySpecial,
        uint32 providerId,
        address signer,
        uint64 firstSequence
    ) private returns (Totals memory totals, bytes memory results) {
        uint256 count = buyers.length;
        uint256 feeBps = _feeBps;
        uint256 protocolFee;
        if (anySpecial) {
            for (uint256 j; j < count; ++j) {
                BuyerTally memory tally = buyers[j];
                if (tally.planId != 0 || tally.limited) {
                    protocolFee += _drawTally(tally, feeBps);
                    _applyTally(tally, providerId, signer, firstSequence);
                }
            }
        }
        results = new bytes(count * 32);
        totals.protocolFee = protocolFee;
        bytes32 shortfallTopic = ShortfallRecorded.selector;
        // Totals accumulate in memory (cost 0x00, paid 0x20, shortfall 0x40, protocolFee 0x60): the stack is full.
        assembly ("memory-safe") {
            for { let j := 0 } lt(j, count) { j := add(j, 1) } {
                let tally := mload(add(add(buyers, 0x20), shl(5, j)))
                let total := add(mload(add(tally, 0x180)), mload(add(tally, 0x1a0)))
                // planId (0x20) and limited (0x100) both zero: balance only, not drawn yet
                if iszero(or(mload(add(tally, 0x20)), mload(add(tally, 0x100)))) {
                    let spendable := mload(add(tally, 0x40))
                    let pending := mload(add(tally, 0x60))
                    let paid := total
                    if gt(paid, add(spendable, pending)) { paid := add(spendable, pending) }
                    let shortfall := sub(total, paid)
                    mstore(add(tally, 0x1e0), paid)
                    mstore(add(tally, 0x200), shortfall)
                    mstore(add(totals, 0x60), add(mload(add(totals, 0x60)), div(add(mul(paid, feeBps), 9999), 10000)))
                    if paid {
                        // Spendable balance first; pending withdrawals are the buyer's money until withdrawn.
                        let fromSpendable := paid
                        if gt(fromSpendable, spendable) { fromSpendable := spendable }
                        let newSpendable := sub(spendable, fromSpendable)
                        let newPending := sub(pending, sub(paid, fromSpendable))
                        // Replace bits 0-215 (balance, pending); keep withdrawableAt and flags.
                        let word := and(mload(add(tally, 0x240)), not(sub(shl(216, 1), 1)))
                        sstore(mload(add(tally, 0x220)), or(word, or(newSpendable, shl(112, newPending))))
                    }
                    if shortfall {
                        // Event data in the scratch space: ShortfallRecorded(buyer, signer, firstSequence, shortfall)
                        mstore(0x00, firstSequence)
                        mstore(0x20, shortfall)
                        log3(0x00, 0x40, shortfallTopic, mload(tally), signer)
                    }
                }
                let fromBalance := mload(add(tally, 0x1e0))
                let shortfall := mload(add(tally, 0x200))
                // fromBalance <= balance + pending < 2^106. A shortfall passes 128 bits only in theory
                // (2^24 records at the highest prices): it saturates here; BatchSettled's total is exact.
                let packedShortfall := shortfall
                if gt(packedShortfall, 0xffffffffffffffffffffffffffffffff) {
                    packedShortfall := 0xffffffffffffffffffffffffffffffff
                }
                mstore(add(add(results, 0x20), shl(5, j)), or(shl(128, fromBalance), packedShortfall))
                mstore(totals, add(mload(totals), total))
                mstore(add(totals, 0x20), add(mload(add(totals, 0x20)), fromBalance))
                mstore(add(totals, 0x40), add(mload(add(totals, 0x40)), shortfall))
            }
        }
    }

    /// @dev One account slot, one credit burn, one limit window per buyer and batch; an indexed
    /// `ShortfallRecorded` when the buyer could not pay for everything.
    function _applyTally(BuyerTally memory tally, uint32 providerId, address signer, uint64 firstSequence) private {
        uint256 fromBalance = tally.fromBalance;
        if (fromBalance != 0) {
            // Spendable balance first; pending withdrawals are still the buyer's money until withdrawn.
            uint256 balance = tally.balance;
            uint256 fromSpendable = fromBalance <= balance ? fromBalance : balance;
            Account storage account = _accounts[tally.buyer];
            account.balance = uint112(balance - fromSpendable);
            account.pendingWithdrawal = uint104(tally.pending - (fromBalance - fromSpendable));
        }
        if (tally.creditsBurned != 0) _credits.burn(tally.buyer, tally.planId, tally.creditsBurned);
        if (tally.creditChange != tally.creditChangeBefore) {
            _creditChange[tally.buyer][tally.planId] = tally.creditChange;
        }
        if (tally.limited) _recordSpending(tally.buyer, providerId, tally.windowStart, tally.spent);
        if (tally.shortfall != 0) emit ShortfallRecorded(tally.buyer, signer, firstSequence, tally.shortfall);
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

    /// @dev Reads the buyer table and each buyer's account slot (one SLOAD). Buyers with a credit plan named
    /// or a spending limit set take a second, Solidity pass (`_loadCreditsAndLimits`); most take none.
    function _loadBuyers(bytes calldata table, uint32 providerId)
        private
        view
        returns (BuyerTally[] memory buyers, bool anyPlan, bool anySpecial)
    {
        uint256 count = _entryCount(SECTION_BUYERS, table.length, UsageTypes.BUYER_ENTRY_SIZE, MAX_BUYERS);
        buyers = new BuyerTally[](count);
        uint256 unsorted; // 1 + index of the first buyer not above its predecessor, or 0
        uint256 plans; // non-zero if any buyer names a plan
        uint256 special; // non-zero if any buyer names a plan or has limits
        uint8 limitsFlag = FLAG_HAS_LIMITS;
        assembly ("memory-safe") {
            let accountsSlot := _accounts.slot
            let previous := 0
            for { let j := 0 } lt(j, count) { j := add(j, 1) } {
                let entry := calldataload(add(table.offset, mul(j, 24)))
                let buyer := shr(96, entry)
                // Strictly ascending: a buyer listed twice would be written back twice from stale state.
                if iszero(gt(buyer, previous)) {
                    unsorted := add(j, 1)
                    break
                }
                previous := buyer
                mstore(0x00, buyer)
                mstore(0x20, accountsSlot)
                let slot := keccak256(0x00, 0x40)
                let word := sload(slot)
                let planId := and(shr(64, entry), 0xffffffff)
                let hasLimits := iszero(iszero(and(shr(248, word), limitsFlag)))
                let tally := mload(add(add(buyers, 0x20), shl(5, j)))
                mstore(tally, buyer)
                mstore(add(tally, 0x20), planId)
                mstore(add(tally, 0x40), and(word, 0xffffffffffffffffffffffffffff)) // balance: bits 0-111
                mstore(add(tally, 0x60), and(shr(112, word), 0xffffffffffffffffffffffffff)) // pending: 112-215
                mstore(add(tally, 0x100), hasLimits) // limited, refined by _loadCreditsAndLimits
                mstore(add(tally, 0x220), slot)
                mstore(add(tally, 0x240), word)
                plans := or(plans, planId)
                special := or(special, or(planId, hasLimits))
            }
        }
        if (unsorted != 0) revert SettlementBuyersNotSorted(unsorted - 1);
        anyPlan = plans != 0;
        anySpecial = special != 0;
        if (anySpecial) _loadCreditsAndLimits(buyers, providerId);
    }

    function _loadCreditsAndLimits(BuyerTally[] memory buyers, uint32 providerId) private view {
        for (uint256 j; j < buyers.length; ++j) {
            BuyerTally memory tally = buyers[j];
            uint256 planId = tally.planId;
            if (planId != 0) {
                CreditPlan storage plan = _plans[planId];
                if (plan.providerId != providerId) revert SettlementPlanNotOfProvider(planId, providerId);
                uint256 expiresAt = plan.expiresAt;
                tally.credits = _credits.balanceOf(tally.buyer, planId);
                tally.creditValue = plan.valuePerCredit;
                tally.creditExpiry = expiresAt == 0 ? type(uint256).max : expiresAt;
                tally.creditMask = plan.modelMask;
                uint256 change = _creditChange[tally.buyer][planId];
                tally.creditChange = change;
                tally.creditChangeBefore = change;
            }
            if (tally.limited) {
                (tally.allowance, tally.windowStart, tally.spent, tally.limited) =
                    _remainingAllowance(tally.buyer, providerId);
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
