// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IUsageSettlement} from "./interfaces/IUsageSettlement.sol";
import {UsageTypes, USAGE_BUYER_ENTRY_SIZE, USAGE_RECORD_SIZE} from "./libraries/UsageTypes.sol";
import {PackedAccount, ACCOUNT_HAS_LIMITS_BIT, ACCOUNT_HAS_SUBSCRIPTION_BIT} from "./libraries/AccountPacking.sol";
import {SubscriptionBilling} from "./SubscriptionBilling.sol";
import {ITollgateSubscriptions} from "./interfaces/ITollgateSubscriptions.sol";

/// @title Settlement of gateway-signed usage batches.
/// @dev Gas is the design constraint: a batch reads and writes each buyer's account slot once, prices
/// records from memory, and keeps a single storage word per batch: its commitment's first 28 bytes and the
/// settlement time, which the dispute window counts from (a second preimage on 224 bits is out of reach). Records stay in calldata, which
/// (with the price events) is all an auditor needs to recompute every charge; a batch relayed through another
/// contract is published in `BatchDataPublished`, since its calldata is then inside an internal call.
abstract contract UsageSettlement is IUsageSettlement, SubscriptionBilling, EIP712 {
    using UsageTypes for UsageTypes.UsageBatch;
    using UsageTypes for UsageTypes.UsageBatchHeader;
    using UsageTypes for UsageTypes.UsageReceipt;

    uint256 private constant SECTION_BUYERS = 0;
    uint256 private constant SECTION_MODELS = 1;
    uint256 private constant SECTION_RECORDS = 2;
    uint256 private constant MAX_BUYERS = 1 << 16;
    uint256 private constant MAX_MODELS = 1 << 8;
    uint256 private constant MAX_RECORDS = 1 << 24;

    /// @dev The terms a record is priced by, loaded once per batch. `_priceRecords` reads the fields by the
    /// `TERMS_*` offsets below; test/contracts/storage-layout.test.ts pins them to this order.
    struct ModelTerms {
        uint256 from;
        uint256 until; // the next epoch's start, or now + 1
        uint256 inputPrice;
        uint256 cachedInputPrice;
        uint256 outputPrice;
        uint256 maskBit; // the model's bit in a credit plan's mask
    }

    /// @dev A buyer's state during one batch: loaded once, each of its records added in, drawn and written
    /// back once. The assembly in `_loadBuyers` and `_priceRecords` addresses fields by the `TALLY_*` offsets
    /// below; test/contracts/storage-layout.test.ts pins them to this order.
    struct BuyerTally {
        address buyer;
        uint256 planId;
        uint256 credits;
        uint256 creditValue;
        uint256 creditExpiry;
        uint256 creditMask;
        bool limited;
        uint256 allowance;
        uint256 windowStart;
        uint256 spent;
        uint256 otherCost;
        uint256 eligibleCost; // must follow otherCost: the record loop picks one of the two by adding 32
        uint256 creditsBurned;
        uint256 fromBalance;
        uint256 shortfall;
        uint256 accountSlot; // storage slot of the buyer's Account
        PackedAccount account; // that slot as read at the start of the batch; `_drawTally` leaves it drawn
        uint256 creditChange; // value left from a partly used credit of `planId`
        uint256 creditChangeBefore;
        uint256 subscriptionCovered; // cost the subscription took out of the two costs: included, or refused
        uint256 subscriptionRefused; // the part of it refused under a REFUSE plan: shortfall, not charged
    }

    // Memory offsets of the struct fields the assembly touches: a memory struct keeps field n at n * 32.
    // test/contracts/storage-layout.test.ts checks each against its field's position in the struct.
    uint256 private constant TERMS_FROM = 0x00;
    uint256 private constant TERMS_UNTIL = 0x20;
    uint256 private constant TERMS_INPUT_PRICE = 0x40;
    uint256 private constant TERMS_CACHED_INPUT_PRICE = 0x60;
    uint256 private constant TERMS_OUTPUT_PRICE = 0x80;
    uint256 private constant TERMS_MASK_BIT = 0xa0;
    uint256 private constant TALLY_BUYER = 0x00;
    uint256 private constant TALLY_PLAN_ID = 0x20;
    uint256 private constant TALLY_CREDIT_EXPIRY = 0x80;
    uint256 private constant TALLY_CREDIT_MASK = 0xa0;
    uint256 private constant TALLY_LIMITED = 0xc0;
    uint256 private constant TALLY_OTHER_COST = 0x140;
    uint256 private constant TALLY_ELIGIBLE_COST = 0x160;
    uint256 private constant TALLY_ACCOUNT_SLOT = 0x1e0;
    uint256 private constant TALLY_ACCOUNT = 0x200;
    uint256 private constant TALLY_SUBSCRIPTION_COVERED = 0x260;
    uint256 private constant TALLY_SUBSCRIPTION_REFUSED = 0x280;
    /// @dev Bytes of one BuyerTally in memory: 21 fields.
    uint256 private constant TALLY_SIZE = 0x2a0;
    /// @dev A memory array's or bytes' length word comes first; its data follows.
    uint256 private constant ARRAY_DATA = 0x20;

    // Bit positions in a calldata word loaded at the start of an entry (layout in `IUsageSettlement`).
    uint256 internal constant BUYER_ENTRY_BUYER_SHIFT = 96; // address: bytes 0-19
    uint256 private constant BUYER_ENTRY_PLAN_SHIFT = 64; // uint32: bytes 20-23
    uint256 internal constant MODEL_ENTRY_MODEL_SHIFT = 224; // uint32: bytes 0-3
    uint256 internal constant MODEL_ENTRY_EPOCH_SHIFT = 192; // uint32: bytes 4-7
    uint256 internal constant RECORD_BUYER_INDEX_SHIFT = 240; // uint16: bytes 0-1
    uint256 internal constant RECORD_MODEL_INDEX_SHIFT = 232; // uint8: byte 2
    uint256 internal constant RECORD_INPUT_SHIFT = 200; // uint32: bytes 3-6
    uint256 internal constant RECORD_CACHED_SHIFT = 168; // uint32: bytes 7-10
    uint256 internal constant RECORD_OUTPUT_SHIFT = 136; // uint32: bytes 11-14
    uint256 internal constant RECORD_SERVED_OFFSET_SHIFT = 112; // uint24: bytes 15-17
    uint256 internal constant UINT8_MASK = 0xff;
    uint256 internal constant UINT24_MASK = 0xffffff;
    uint256 internal constant UINT32_MASK = 0xffffffff;
    uint256 private constant UINT128_MAX = 0xffffffffffffffffffffffffffffffff;
    /// @dev Prices are per million tokens.
    uint256 internal constant TOKENS_PER_PRICE = 1_000_000;

    struct Totals {
        uint256 cost;
        uint256 paid;
        uint256 shortfall;
        uint256 protocolFee;
    }

    /// @dev The low 32 bits of a stored commitment word, where the batch's settlement time replaces the hash's last 4 bytes.
    uint256 private constant COMMITMENT_TIME_MASK = 0xffffffff;

    /// @dev bytes 0-27: the batch's struct hash's first 28 bytes | bytes 28-31: uint32 settlement time (never 0).
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
        if (!signerState.authorized) _revertUnauthorized(signerState, signer);
        uint64 firstSequence = signerState.nextSequence;
        if (batch.firstSequence != firstSequence) {
            revert SettlementSequenceMismatch(signer, firstSequence, batch.firstSequence);
        }
        uint32 providerId = signerState.providerId;
        uint256 recordCount =
            _entryCount(SECTION_RECORDS, batch.records.length, UsageTypes.RECORD_SIZE, MAX_RECORDS);
        signerState.nextSequence = firstSequence + uint64(recordCount);
        // uint32 time: good until 2106, and the word is never 0, so "settled" needs no other flag.
        _batchCommitments[signer][firstSequence] =
            (commitment & ~bytes32(COMMITMENT_TIME_MASK)) | bytes32(block.timestamp & COMMITMENT_TIME_MASK);

        ModelTerms[] memory models = _loadModels(batch.models, providerId);
        (BuyerTally[] memory buyers, bool anyPlan, bool anySpecial) = _loadBuyers(batch.buyers, providerId);
        _priceRecords(batch, recordCount, models, buyers, anyPlan);
        if (anySpecial) _drawSubscriptions(buyers, providerId);
        (Totals memory totals, bytes memory buyerResults) =
            _applyTallies(buyers, anySpecial, providerId, signer, firstSequence);

        uint256 providerEarnings = totals.paid - totals.protocolFee;
        _creditProvider(providerId, providerEarnings, totals.protocolFee);
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
        // A caller that is an account without code made the transaction's top-level call, so the batch is in
        // the transaction's calldata for anyone to read. Any other caller (a contract, or an account with
        // EIP-7702 delegated code) may have wrapped it: publish the data, paid by the relayed submission only.
        if (msg.sender != tx.origin || msg.sender.code.length != 0) _publishBatchData(signer, firstSequence);
    }

    /// @dev Off the hot path: a compromised signer is also unauthorized, so settlement tests one flag.
    function _revertUnauthorized(Signer storage signerState, address signer) private view {
        if (signerState.compromised) revert SettlementSignerCompromised(signer);
        revert SettlementUnauthorizedSigner(signer);
    }

    /// @dev `emit BatchDataPublished(signer, firstSequence, msg.data)`, written out: the compiler's event encoder
    /// here made every batch's record loop dearer (about 40 gas a record, measured by bench:gas), relayed or not.
    function _publishBatchData(address signer, uint64 firstSequence) private {
        bytes32 topic = BatchDataPublished.selector;
        assembly ("memory-safe") {
            let data := mload(0x40)
            let size := calldatasize()
            mstore(data, 0x20) // offset of the bytes
            mstore(add(data, 0x20), size) // its length
            calldatacopy(add(data, 0x40), 0, size)
            mstore(add(add(data, 0x40), size), 0) // zero the padding after the last partial word
            log3(data, add(0x40, and(add(size, 31), not(31))), topic, signer, firstSequence)
        }
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
    function batchCommitmentOf(address signer, uint64 firstSequence)
        external
        view
        returns (bytes28 commitmentPrefix, uint32 settledAt)
    {
        bytes32 stored = _batchCommitments[signer][firstSequence];
        return (bytes28(stored), uint32(uint256(stored)));
    }

    /// @dev When `signer`'s batch from `firstSequence` was settled, if it is the batch of struct hash
    /// `commitment`; 0 if no batch settled there or another one did.
    function _batchSettledAt(address signer, uint64 firstSequence, bytes32 commitment)
        internal
        view
        returns (uint256 settledAt)
    {
        bytes32 stored = _batchCommitments[signer][firstSequence];
        if (stored == bytes32(0) || (stored ^ commitment) & ~bytes32(COMMITMENT_TIME_MASK) != 0) return 0;
        return uint256(stored) & COMMITMENT_TIME_MASK;
    }

    /// @inheritdoc IUsageSettlement
    function verifyReceiptSettled(
        address signer,
        UsageTypes.UsageBatchHeader calldata header,
        UsageTypes.UsageReceipt calldata receipt,
        bytes32[] calldata proof
    ) external view returns (bool) {
        if (_batchSettledAt(signer, header.firstSequence, header.hash()) == 0) {
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
            let buyerData := add(buyers, ARRAY_DATA)
            let modelData := add(models, ARRAY_DATA)
            let start := records.offset
            let end := add(start, mul(recordCount, USAGE_RECORD_SIZE))
            // Counts < 2^32 and prices < 2^72, so a record costs < 2^106 and no sum over at most 2^24
            // records can overflow 256 bits.
            for { let ptr := start } lt(ptr, end) { ptr := add(ptr, USAGE_RECORD_SIZE) } {
                let word := calldataload(ptr)
                let buyerIndex := shr(RECORD_BUYER_INDEX_SHIFT, word)
                let modelIndex := and(shr(RECORD_MODEL_INDEX_SHIFT, word), UINT8_MASK)
                let input := and(shr(RECORD_INPUT_SHIFT, word), UINT32_MASK)
                let cached := and(shr(RECORD_CACHED_SHIFT, word), UINT32_MASK)
                let servedAt := add(baseTime, and(shr(RECORD_SERVED_OFFSET_SHIFT, word), UINT24_MASK))
                // Indices first: a record must never make the loop read memory outside the tables.
                if iszero(and(and(lt(buyerIndex, buyerCount), lt(modelIndex, modelCount)), iszero(gt(cached, input)))) {
                    badRecord := add(div(sub(ptr, start), USAGE_RECORD_SIZE), 1)
                    break
                }
                let terms := mload(add(modelData, shl(5, modelIndex)))
                // from <= servedAt < until, where until <= now + 1
                if iszero(and(iszero(lt(servedAt, mload(add(terms, TERMS_FROM)))), lt(servedAt, mload(add(terms, TERMS_UNTIL))))) {
                    badRecord := add(div(sub(ptr, start), USAGE_RECORD_SIZE), 1)
                    break
                }
                // ceil(weighted / TOKENS_PER_PRICE), the formula `IUsageSettlement` states
                let cost := div(
                    add(
                        add(
                            mul(sub(input, cached), mload(add(terms, TERMS_INPUT_PRICE))),
                            mul(cached, mload(add(terms, TERMS_CACHED_INPUT_PRICE)))
                        ),
                        add(
                            mul(and(shr(RECORD_OUTPUT_SHIFT, word), UINT32_MASK), mload(add(terms, TERMS_OUTPUT_PRICE))),
                            sub(TOKENS_PER_PRICE, 1)
                        )
                    ),
                    TOKENS_PER_PRICE
                )
                let tally := mload(add(buyerData, shl(5, buyerIndex)))
                let slot := add(tally, TALLY_OTHER_COST)
                if anyPlan {
                    let eligible := and(
                        iszero(iszero(and(mload(add(tally, TALLY_CREDIT_MASK)), mload(add(terms, TERMS_MASK_BIT))))),
                        lt(servedAt, mload(add(tally, TALLY_CREDIT_EXPIRY)))
                    )
                    // eligibleCost is the word after otherCost
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
        uint256 word =
            uint256(bytes32(batch.records[index * USAGE_RECORD_SIZE:index * USAGE_RECORD_SIZE + USAGE_RECORD_SIZE]));
        uint256 buyerIndex = word >> RECORD_BUYER_INDEX_SHIFT;
        uint256 modelIndex = (word >> RECORD_MODEL_INDEX_SHIFT) & UINT8_MASK;
        if (buyerIndex >= buyerCount) revert SettlementEntryOutOfRange(index, buyerIndex);
        if (modelIndex >= models.length) revert SettlementEntryOutOfRange(index, modelIndex);
        if ((word >> RECORD_CACHED_SHIFT) & UINT32_MASK > (word >> RECORD_INPUT_SHIFT) & UINT32_MASK) {
            revert SettlementCachedExceedsInput(index);
        }
        uint256 servedAt = batch.baseTime + ((word >> RECORD_SERVED_OFFSET_SHIFT) & UINT24_MASK);
        if (servedAt > block.timestamp) revert SettlementServedInFuture(index, servedAt, block.timestamp);
        ModelTerms memory terms = models[modelIndex];
        revert SettlementPriceEpochMismatch(index, servedAt, terms.from, terms.until);
    }

    /// @dev Draws a buyer's batch total: the spending cap first limits what may be charged; the named plan's
    /// credits cover the eligible part (first the change left from a credit burned earlier, then whole credits,
    /// the unused value of the last one kept as change); the account pays the rest
    /// (`AccountPacking.draw`, as on the fast path); what is left is shortfall. The fee is taken once per buyer and batch on what came from balance,
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
            (PackedAccount account, uint256 paid) = tally.account.draw(rest);
            tally.account = account;
            tally.fromBalance = paid;
            tally.shortfall = total - chargeable + rest - paid;
            // The cap counts what was actually charged (credits and balance), not what went unpaid.
            if (tally.limited) tally.spent += covered + paid;
            fee = _feeOn(paid, feeBps);
            // What the subscription covered goes back into the batch's total cost; what it refused is shortfall.
            tally.otherCost += tally.subscriptionCovered;
            tally.shortfall += tally.subscriptionRefused;
        }
    }

    /// @dev Draws and writes back each buyer's tally, and packs what the batch did to it into `results`:
    /// 32 bytes per buyer, in table order, uint128 fromBalance | uint128 shortfall. Buyers with a plan or a
    /// limit take the general path, `_drawTally` and `_applyTally`, first; the rest, most of them, take the
    /// fast path, `_drawFromAccount`: no credits or cap to read or write, only the account word loaded in
    /// `_loadBuyers`. Both paths draw with `AccountPacking.draw`, take the fee with `_feeOn` and write through
    /// `_writeAccount`; test/contracts/settlement-paths.differential.test.ts settles random batches both ways
    /// and requires identical state and events.
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
                if (_takesGeneralPath(tally)) {
                    protocolFee += _drawTally(tally, feeBps);
                    _applyTally(tally, providerId, signer, firstSequence);
                }
            }
        }
        results = new bytes(count * 32);
        // The sums live in memory, not on the stack, which the caller's record loop needs more.
        totals.protocolFee = protocolFee;
        for (uint256 j; j < count; ++j) {
            BuyerTally memory tally = buyers[j];
            // Unchecked: a record costs below 2^106 and a batch holds at most 2^24 records, so no sum of costs
            // or of fees (each at most its cost) comes near 2^256.
            unchecked {
                uint256 total = tally.otherCost + tally.eligibleCost;
                if (!_takesGeneralPath(tally)) {
                    totals.protocolFee += _drawFromAccount(tally, total, feeBps, signer, firstSequence);
                }
                uint256 fromBalance = tally.fromBalance;
                uint256 buyerShortfall = tally.shortfall;
                // fromBalance <= balance + pending < 2^113. A shortfall passes 128 bits only in theory
                // (2^24 records at the highest prices): it saturates here; BatchSettled's total is exact.
                uint256 packed = (fromBalance << 128) | (buyerShortfall > UINT128_MAX ? UINT128_MAX : buyerShortfall);
                assembly ("memory-safe") {
                    mstore(add(add(results, ARRAY_DATA), shl(5, j)), packed)
                }
                totals.cost += total;
                totals.paid += fromBalance;
                totals.shortfall += buyerShortfall;
            }
        }
    }

    /// @dev Buyers with a credit plan named, a spending limit set or a subscription draw through `_drawTally`.
    function _takesGeneralPath(BuyerTally memory tally) private pure returns (bool) {
        return tally.planId != 0 || tally.limited || tally.account.hasSubscription();
    }

    /// @dev Asks the subscriptions satellite, once per batch with a subscribed buyer, how much of each one's usage its
    /// included value covers (or its REFUSE rule refuses), and takes that out of the costs `_drawTally` charges, from
    /// the bucket each record was in. It runs after `_priceRecords`, so the satellite reads a batch already validated,
    /// from this call's own calldata. Assembly because Tollgate is at the code size limit: the call is
    /// `drawIncluded(providerId, msg.data, subscribed)`, `subscribed` one byte per buyer (its account's flag), and the
    /// answer 3 words per buyer (`ITollgateSubscriptions.drawIncluded`; the satellite is ours, deployed by this contract).
    function _drawSubscriptions(BuyerTally[] memory buyers, uint32 providerId) private {
        address satellite = address(_subscriptions);
        bytes4 selector = ITollgateSubscriptions.drawIncluded.selector;
        assembly ("memory-safe") {
            let count := mload(buyers)
            let buyerData := add(buyers, ARRAY_DATA)
            let size := calldatasize()
            let paddedSize := and(add(size, 31), not(31))
            let paddedCount := and(add(count, 31), not(31))
            // Built past the free memory pointer, used only here.
            let data := mload(0x40)
            mstore(data, selector)
            mstore(add(data, 0x04), providerId)
            mstore(add(data, 0x24), 0x60) // offset of settleBatchCall
            mstore(add(data, 0x44), add(0x80, paddedSize)) // offset of subscribed
            mstore(add(data, 0x64), size)
            let flags := add(add(data, 0x84), paddedSize)
            // Zero the padding after the calldata and the flags' whole area, by copying from past calldata's end.
            calldatacopy(sub(flags, 0x20), size, add(0x40, paddedCount))
            calldatacopy(add(data, 0x84), 0, size)
            mstore(flags, count)
            let any := 0
            for { let j := 0 } lt(j, count) { j := add(j, 1) } {
                let tally := mload(add(buyerData, shl(5, j)))
                let subscribed := iszero(iszero(and(mload(add(tally, TALLY_ACCOUNT)), ACCOUNT_HAS_SUBSCRIPTION_BIT)))
                mstore8(add(add(flags, 0x20), j), subscribed)
                any := or(any, subscribed)
            }
            if any {
                if iszero(call(gas(), satellite, 0, data, sub(add(add(flags, 0x20), paddedCount), data), 0, 0)) {
                    returndatacopy(0, 0, returndatasize())
                    revert(0, returndatasize())
                }
                // The answer is an ABI `bytes`: its offset, its length, then the words.
                returndatacopy(data, 0x40, sub(returndatasize(), 0x40))
                for { let j := 0 } lt(j, count) { j := add(j, 1) } {
                    let tally := mload(add(buyerData, shl(5, j)))
                    let at := add(data, mul(j, 0x60))
                    let fromEligible := mload(at)
                    let fromOther := mload(add(at, 0x20))
                    // The satellite takes from each bucket at most what that buyer's records in it cost.
                    mstore(add(tally, TALLY_ELIGIBLE_COST), sub(mload(add(tally, TALLY_ELIGIBLE_COST)), fromEligible))
                    mstore(add(tally, TALLY_OTHER_COST), sub(mload(add(tally, TALLY_OTHER_COST)), fromOther))
                    mstore(add(tally, TALLY_SUBSCRIPTION_COVERED), add(fromEligible, fromOther))
                    mstore(add(tally, TALLY_SUBSCRIPTION_REFUSED), mload(add(at, 0x40)))
                }
            }
        }
    }

    /// @dev The fast path: the whole total from the account, as `_drawTally` does once credits and cap are
    /// out of the picture. Returns the protocol fee on what was paid.
    function _drawFromAccount(
        BuyerTally memory tally,
        uint256 total,
        uint256 feeBps,
        address signer,
        uint64 firstSequence
    ) private returns (uint256 fee) {
        (PackedAccount account, uint256 paid) = tally.account.draw(total);
        uint256 shortfall;
        unchecked {
            shortfall = total - paid;
        }
        tally.fromBalance = paid;
        tally.shortfall = shortfall;
        if (paid != 0) _writeAccount(_accountSlotOf(tally), account);
        if (shortfall != 0) emit ShortfallRecorded(tally.buyer, signer, firstSequence, shortfall);
        fee = _feeOn(paid, feeBps);
    }

    /// @dev One account write, one credit burn, one limit window per buyer and batch; an indexed
    /// `ShortfallRecorded` when the buyer could not pay for everything.
    function _applyTally(BuyerTally memory tally, uint32 providerId, address signer, uint64 firstSequence) private {
        if (tally.fromBalance != 0) _writeAccount(_accountSlotOf(tally), tally.account);
        if (tally.creditsBurned != 0) _credits.burn(tally.buyer, tally.planId, tally.creditsBurned);
        if (tally.creditChange != tally.creditChangeBefore) {
            _creditChange[tally.buyer][tally.planId] = tally.creditChange;
        }
        if (tally.limited) _recordSpending(tally.buyer, providerId, tally.windowStart, tally.spent);
        if (tally.shortfall != 0) emit ShortfallRecorded(tally.buyer, signer, firstSequence, tally.shortfall);
    }

    /// @dev The buyer's account slot as `_loadBuyers` derived it, so the write-back does not hash its key again.
    function _accountSlotOf(BuyerTally memory tally) private pure returns (Account storage account) {
        uint256 slot = tally.accountSlot;
        assembly ("memory-safe") {
            account.slot := slot
        }
    }

    function _loadModels(bytes calldata table, uint32 providerId) private view returns (ModelTerms[] memory models) {
        uint256 count = _entryCount(SECTION_MODELS, table.length, UsageTypes.MODEL_ENTRY_SIZE, MAX_MODELS);
        models = new ModelTerms[](count);
        for (uint256 k; k < count; ++k) {
            uint256 word = uint256(
                bytes32(table[k * UsageTypes.MODEL_ENTRY_SIZE:k * UsageTypes.MODEL_ENTRY_SIZE + UsageTypes.MODEL_ENTRY_SIZE])
            );
            uint32 modelId = uint32(word >> MODEL_ENTRY_MODEL_SHIFT);
            uint256 epochIndex = (word >> MODEL_ENTRY_EPOCH_SHIFT) & UINT32_MASK;
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
        uint256 unsorted; // 1 + index of the first buyer not above its predecessor, or 0
        uint256 plans; // non-zero if any buyer names a plan
        uint256 special; // non-zero if any buyer names a plan or has limits
        uint256 accountsSlot = _accountsMappingSlot();
        assembly ("memory-safe") {
            // `new BuyerTally[](count)` by hand: the compiler zeroes a struct one field at a time, which cost
            // more per buyer than everything else here but the SLOAD. One block, zeroed by one copy from
            // past the end of calldata; each element points into it.
            buyers := mload(0x40)
            mstore(buyers, count)
            let tallies := add(add(buyers, ARRAY_DATA), shl(5, count))
            calldatacopy(tallies, calldatasize(), mul(count, TALLY_SIZE))
            mstore(0x40, add(tallies, mul(count, TALLY_SIZE)))
            let previous := 0
            for { let j := 0 } lt(j, count) { j := add(j, 1) } {
                let entry := calldataload(add(table.offset, mul(j, USAGE_BUYER_ENTRY_SIZE)))
                let buyer := shr(BUYER_ENTRY_BUYER_SHIFT, entry)
                // Strictly ascending: a buyer listed twice would be written back twice from stale state.
                if iszero(gt(buyer, previous)) {
                    unsorted := add(j, 1)
                    break
                }
                previous := buyer
                // The slot of _accounts[buyer], as Solidity lays out mappings: keccak256(key . mapping slot).
                mstore(0x00, buyer)
                mstore(0x20, accountsSlot)
                let slot := keccak256(0x00, 0x40)
                let word := sload(slot)
                let planId := and(shr(BUYER_ENTRY_PLAN_SHIFT, entry), UINT32_MASK)
                let hasLimits := iszero(iszero(and(word, ACCOUNT_HAS_LIMITS_BIT)))
                let subscribed := and(word, ACCOUNT_HAS_SUBSCRIPTION_BIT)
                let tally := add(tallies, mul(j, TALLY_SIZE))
                mstore(add(add(buyers, ARRAY_DATA), shl(5, j)), tally)
                mstore(add(tally, TALLY_BUYER), buyer)
                mstore(add(tally, TALLY_PLAN_ID), planId)
                mstore(add(tally, TALLY_LIMITED), hasLimits) // refined by _loadCreditsAndLimits
                mstore(add(tally, TALLY_ACCOUNT_SLOT), slot)
                mstore(add(tally, TALLY_ACCOUNT), word)
                plans := or(plans, planId)
                special := or(special, or(or(planId, hasLimits), subscribed))
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
