// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ITollgateSubscriptions} from "./interfaces/ITollgateSubscriptions.sol";
import {ISubscriptionBilling} from "./interfaces/ISubscriptionBilling.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {IAccessCredits} from "./interfaces/IAccessCredits.sol";
import {ITollgateVault} from "./interfaces/ITollgateVault.sol";
import {UsageTypes} from "./libraries/UsageTypes.sol";

/// @title Subscription plans, subscriptions and the included usage drawn per period; deployed by its Tollgate.
/// @dev Its own contract because Tollgate's code is at the 24 KiB limit. It holds no tokens: a period's payment moves
/// inside Tollgate's vault (`ISubscriptionBilling.chargeSubscription`), and drawing included usage moves no money,
/// so conservation of the vault's tokens does not depend on anything here. It reads prices, models, credit plans
/// and balances through Tollgate's views, and trusts Tollgate alone to call `drawIncluded`.
contract TollgateSubscriptions is ITollgateSubscriptions {
    /// @inheritdoc ITollgateSubscriptions
    uint256 public constant MAX_PERIOD = 366 days;
    /// @inheritdoc ITollgateSubscriptions
    uint256 public constant MAX_RENEWALS_PER_CALL = 24;

    // The record layout of `IUsageSettlement`, read from a word loaded at the record's first byte.
    uint256 private constant RECORD_SIZE = 18;
    uint256 private constant MODEL_ENTRY_SIZE = 8;
    uint256 private constant BUYER_ENTRY_SIZE = 24;
    /// @dev Bytes of one buyer's result in `drawIncluded`'s answer: 3 words.
    uint256 private constant TAKEN_SIZE = 0x60;
    uint256 private constant TOKENS_PER_PRICE = 1_000_000;

    /// @inheritdoc ITollgateSubscriptions
    address public immutable tollgate;

    uint32 private _planCount;
    uint64 private _subscriptionCount;
    mapping(uint256 planId => SubscriptionPlan) private _plans;
    mapping(address buyer => mapping(uint32 providerId => Subscription)) private _subscriptionsOf;
    /// @dev Included value drawn by settlement, per subscription and period; a new period starts at 0 (no rollover).
    mapping(uint256 subscriptionId => mapping(uint256 periodIndex => uint256 used)) private _includedUsed;

    /// @dev One subscribed buyer of a batch while `drawIncluded` walks its records: its terms, and the period whose
    /// draws are being summed before they are written and reported once.
    struct Cover {
        address buyer;
        uint256 subscriptionId;
        uint256 startedAt;
        uint256 period;
        uint256 paidUntil;
        uint256 includedValue;
        uint256 modelMask;
        bool refuse;
        uint256 creditMask;
        uint256 creditExpiry;
        uint256 periodIndex;
        uint256 used;
        uint256 drawn;
        uint256 refused;
    }

    /// @dev A batch's model entry: its prices in the named epoch and its bit in a plan's mask.
    struct Terms {
        uint256 inputPrice;
        uint256 cachedInputPrice;
        uint256 outputPrice;
        uint256 maskBit;
    }

    constructor(address tollgate_) {
        tollgate = tollgate_;
    }

    modifier onlyTollgate() {
        if (msg.sender != tollgate) revert SubscriptionsOnlyTollgate(msg.sender);
        _;
    }

    /// @inheritdoc ITollgateSubscriptions
    function defineSubscriptionPlan(
        uint32 providerId,
        uint256 period,
        uint256 price,
        uint256 includedValue,
        uint32[] calldata modelIds,
        Overage overage
    ) external returns (uint256 planId) {
        // Reverts with RegistryUnknownProvider for an unknown provider.
        address owner = IProviderRegistry(tollgate).providerOf(providerId).owner;
        if (msg.sender != owner) revert SubscriptionsNotProviderOwner(providerId, msg.sender);
        if (period == 0 || period > MAX_PERIOD) revert SubscriptionsInvalidPeriod(period, MAX_PERIOD);
        if (price > type(uint96).max) revert SubscriptionsValueOutOfRange(price);
        if (includedValue > type(uint96).max) revert SubscriptionsValueOutOfRange(includedValue);
        if (includedValue == 0 || modelIds.length == 0) revert SubscriptionsInvalidPlan(includedValue, modelIds.length);
        uint256 modelMask;
        for (uint256 i; i < modelIds.length; ++i) {
            IProviderRegistry.ModelView memory model = IProviderRegistry(tollgate).modelOf(modelIds[i]);
            if (model.providerId != providerId) revert SubscriptionsModelNotOfProvider(modelIds[i], providerId);
            modelMask |= uint256(1) << model.localIndex;
        }
        planId = ++_planCount;
        _plans[planId] = SubscriptionPlan({
            providerId: providerId,
            period: uint32(period),
            overage: overage,
            price: uint96(price),
            includedValue: uint96(includedValue),
            modelMask: modelMask
        });
        emit SubscriptionPlanDefined(planId, providerId, period, price, includedValue, modelMask, overage);
    }

    /// @inheritdoc ITollgateSubscriptions
    function subscribe(uint256 planId) external returns (uint256 subscriptionId) {
        SubscriptionPlan memory plan = _planOrRevert(planId);
        uint32 providerId = plan.providerId;
        Subscription storage sub = _subscriptionsOf[msg.sender][providerId];
        if (sub.active) {
            uint256 until = _paidUntil(sub, _plans[sub.planId].period);
            // A cancelled subscription whose last period is over has ended, whether or not anyone said so yet.
            if (!sub.cancelled || block.timestamp < until) {
                revert SubscriptionsAlreadySubscribed(msg.sender, providerId, sub.planId);
            }
            _end(sub, msg.sender, providerId, EndReason.CANCELLED, until, 0, 0);
        }
        (bool paid, uint256 fee) = ISubscriptionBilling(tollgate).chargeSubscription(msg.sender, providerId, plan.price);
        if (!paid) {
            revert SubscriptionsInsufficientBalance(
                msg.sender, ITollgateVault(tollgate).accountOf(msg.sender).balance, plan.price
            );
        }
        subscriptionId = ++_subscriptionCount;
        _subscriptionsOf[msg.sender][providerId] = Subscription({
            id: uint64(subscriptionId),
            planId: uint32(planId),
            startedAt: uint32(block.timestamp),
            paidPeriods: 1,
            active: true,
            cancelled: false
        });
        emit Subscribed(
            msg.sender,
            providerId,
            planId,
            subscriptionId,
            block.timestamp,
            block.timestamp + plan.period,
            plan.price,
            fee,
            plan.includedValue
        );
    }

    /// @inheritdoc ITollgateSubscriptions
    function cancelSubscription(uint32 providerId) external {
        Subscription storage sub = _subscriptionsOf[msg.sender][providerId];
        if (!sub.active) revert SubscriptionsNotSubscribed(msg.sender, providerId);
        uint256 endsAt = _paidUntil(sub, _plans[sub.planId].period);
        if (sub.cancelled) revert SubscriptionsAlreadyCancelled(msg.sender, providerId, endsAt);
        sub.cancelled = true;
        emit SubscriptionCancelled(msg.sender, providerId, sub.id, endsAt);
    }

    /// @inheritdoc ITollgateSubscriptions
    function renew(address buyer, uint32 providerId) external returns (uint256 periodsPaid) {
        Subscription storage sub = _subscriptionsOf[buyer][providerId];
        if (!sub.active) revert SubscriptionsNotSubscribed(buyer, providerId);
        SubscriptionPlan memory plan = _plans[sub.planId];
        uint256 until = _paidUntil(sub, plan.period);
        if (block.timestamp < until) revert SubscriptionsRenewalNotDue(buyer, providerId, until, block.timestamp);
        while (block.timestamp >= until && periodsPaid < MAX_RENEWALS_PER_CALL) {
            if (sub.cancelled) {
                _end(sub, buyer, providerId, EndReason.CANCELLED, until, 0, 0);
                return periodsPaid;
            }
            (bool paid, uint256 fee) = ISubscriptionBilling(tollgate).chargeSubscription(buyer, providerId, plan.price);
            if (!paid) {
                _end(sub, buyer, providerId, EndReason.UNPAID, until, plan.price, ITollgateVault(tollgate).accountOf(buyer).balance);
                return periodsPaid;
            }
            uint256 lastPeriod = sub.paidPeriods - 1;
            emit SubscriptionRenewed(
                buyer,
                providerId,
                sub.id,
                lastPeriod + 1,
                until,
                until + plan.period,
                plan.price,
                fee,
                _unused(sub.id, lastPeriod, plan.includedValue)
            );
            sub.paidPeriods += 1;
            until += plan.period;
            ++periodsPaid;
        }
    }

    /// @inheritdoc ITollgateSubscriptions
    function drawIncluded(uint32 providerId, bytes calldata settleBatchCall, bytes calldata subscribed)
        external
        onlyTollgate
        returns (bytes memory taken)
    {
        (UsageTypes.UsageBatch memory batch,) = abi.decode(settleBatchCall[4:], (UsageTypes.UsageBatch, bytes));
        uint256 buyerCount = subscribed.length;
        taken = new bytes(buyerCount * TAKEN_SIZE);
        (Cover[] memory covers, bool any) = _loadCovers(providerId, batch.buyers, subscribed);
        if (!any) return taken;
        Terms[] memory terms = _loadTerms(batch.models);
        bytes memory records = batch.records;
        uint256 recordCount = records.length / RECORD_SIZE;
        for (uint256 i; i < recordCount; ++i) {
            uint256 word = _wordAt(records, i * RECORD_SIZE);
            // Tollgate validated every index, count and time before calling.
            uint256 buyerIndex = word >> 240;
            Cover memory cover = covers[buyerIndex];
            if (cover.subscriptionId == 0) continue;
            Terms memory t = terms[(word >> 232) & 0xff];
            uint256 servedAt = batch.baseTime + ((word >> 112) & 0xffffff);
            if (cover.modelMask & t.maskBit == 0 || servedAt < cover.startedAt || servedAt >= cover.paidUntil) continue;
            uint256 periodIndex = (servedAt - cover.startedAt) / cover.period;
            if (periodIndex != cover.periodIndex) {
                _flush(cover, providerId, batch.firstSequence);
                cover.periodIndex = periodIndex;
                cover.used = _includedUsed[cover.subscriptionId][periodIndex];
            }
            uint256 cost = _cost(word, t);
            uint256 remaining = cover.includedValue > cover.used ? cover.includedValue - cover.used : 0;
            uint256 drawn = cost < remaining ? cost : remaining;
            cover.used += drawn;
            cover.drawn += drawn;
            uint256 covered = drawn;
            if (cover.refuse) {
                uint256 excess = cost - drawn;
                cover.refused += excess;
                _addTaken(taken, buyerIndex * 3 + 2, excess);
                covered = cost;
            }
            // The record's credit eligibility, as settlement judged it: covered usage leaves that bucket.
            bool creditEligible = cover.creditMask & t.maskBit != 0 && servedAt < cover.creditExpiry;
            _addTaken(taken, buyerIndex * 3 + (creditEligible ? 0 : 1), covered);
        }
        for (uint256 j; j < buyerCount; ++j) {
            if (covers[j].subscriptionId != 0) _flush(covers[j], providerId, batch.firstSequence);
        }
    }

    /// @inheritdoc ITollgateSubscriptions
    function subscriptionPlanOf(uint256 planId) external view returns (SubscriptionPlan memory) {
        return _planOrRevert(planId);
    }

    /// @inheritdoc ITollgateSubscriptions
    function subscriptionPlanCount() external view returns (uint256) {
        return _planCount;
    }

    /// @inheritdoc ITollgateSubscriptions
    function subscriptionOf(address buyer, uint32 providerId) external view returns (Subscription memory) {
        return _subscriptionsOf[buyer][providerId];
    }

    /// @inheritdoc ITollgateSubscriptions
    function paidUntil(address buyer, uint32 providerId) external view returns (uint256) {
        Subscription storage sub = _subscriptionsOf[buyer][providerId];
        return _paidUntil(sub, _plans[sub.planId].period);
    }

    /// @inheritdoc ITollgateSubscriptions
    function includedUsedOf(uint256 subscriptionId, uint256 periodIndex) external view returns (uint256) {
        return _includedUsed[subscriptionId][periodIndex];
    }

    function _planOrRevert(uint256 planId) private view returns (SubscriptionPlan memory plan) {
        plan = _plans[planId];
        if (plan.providerId == 0) revert SubscriptionsUnknownPlan(planId);
    }

    function _paidUntil(Subscription storage sub, uint256 period) private view returns (uint256) {
        return uint256(sub.startedAt) + uint256(sub.paidPeriods) * period;
    }

    function _unused(uint256 subscriptionId, uint256 periodIndex, uint256 includedValue) private view returns (uint256) {
        uint256 used = _includedUsed[subscriptionId][periodIndex];
        return used < includedValue ? includedValue - used : 0;
    }

    /// @dev Ends a subscription at `endedAt`; its paid periods stay covered for records settled late.
    function _end(
        Subscription storage sub,
        address buyer,
        uint32 providerId,
        EndReason reason,
        uint256 endedAt,
        uint256 due,
        uint256 balance
    ) private {
        sub.active = false;
        uint256 forfeited = _unused(sub.id, sub.paidPeriods - 1, _plans[sub.planId].includedValue);
        emit SubscriptionEnded(buyer, providerId, sub.id, reason, endedAt, due, balance, forfeited);
    }

    /// @dev The subscribed buyers of a batch, by their index in its buyer table; `any` if there is one.
    function _loadCovers(uint32 providerId, bytes memory buyers, bytes calldata subscribed)
        private
        view
        returns (Cover[] memory covers, bool any)
    {
        covers = new Cover[](subscribed.length);
        for (uint256 j; j < subscribed.length; ++j) {
            if (subscribed[j] == 0) continue;
            uint256 entry = _wordAt(buyers, j * BUYER_ENTRY_SIZE);
            address buyer = address(uint160(entry >> 96));
            Subscription storage sub = _subscriptionsOf[buyer][providerId];
            uint256 subscriptionId = sub.id;
            if (subscriptionId == 0) continue;
            SubscriptionPlan storage plan = _plans[sub.planId];
            Cover memory cover = covers[j];
            cover.buyer = buyer;
            cover.subscriptionId = subscriptionId;
            cover.startedAt = sub.startedAt;
            cover.period = plan.period;
            cover.paidUntil = _paidUntil(sub, plan.period);
            cover.includedValue = plan.includedValue;
            cover.modelMask = plan.modelMask;
            cover.refuse = plan.overage == Overage.REFUSE;
            cover.periodIndex = type(uint256).max;
            uint32 creditPlanId = uint32(entry >> 64);
            if (creditPlanId != 0) {
                IAccessCredits.CreditPlan memory credit = IAccessCredits(tollgate).creditPlanOf(creditPlanId);
                cover.creditMask = credit.modelMask;
                cover.creditExpiry = credit.expiresAt == 0 ? type(uint256).max : credit.expiresAt;
            }
            any = true;
        }
    }

    function _loadTerms(bytes memory models) private view returns (Terms[] memory terms) {
        uint256 count = models.length / MODEL_ENTRY_SIZE;
        terms = new Terms[](count);
        for (uint256 k; k < count; ++k) {
            uint256 word = _wordAt(models, k * MODEL_ENTRY_SIZE);
            uint32 modelId = uint32(word >> 224);
            IProviderRegistry.PriceEpoch memory epoch =
                IProviderRegistry(tollgate).priceEpochOf(modelId, (word >> 192) & 0xffffffff);
            terms[k] = Terms({
                inputPrice: epoch.input,
                cachedInputPrice: epoch.cachedInput,
                outputPrice: epoch.output,
                maskBit: uint256(1) << IProviderRegistry(tollgate).modelOf(modelId).localIndex
            });
        }
    }

    /// @dev A record's cost: the formula `IUsageSettlement` states, as settlement's record loop computes it.
    function _cost(uint256 word, Terms memory t) private pure returns (uint256) {
        uint256 input = (word >> 200) & 0xffffffff;
        uint256 cached = (word >> 168) & 0xffffffff;
        uint256 output = (word >> 136) & 0xffffffff;
        return ((input - cached) * t.inputPrice + cached * t.cachedInputPrice + output * t.outputPrice
            + TOKENS_PER_PRICE - 1) / TOKENS_PER_PRICE;
    }

    /// @dev The 32 bytes of `data` from `offset`; past its end they read as whatever memory follows, which the
    /// callers' shifts and masks discard (an entry is shorter than a word).
    function _wordAt(bytes memory data, uint256 offset) private pure returns (uint256 word) {
        assembly ("memory-safe") {
            word := mload(add(add(data, 0x20), offset))
        }
    }

    /// @dev Adds `amount` to word `index` of `taken`.
    function _addTaken(bytes memory taken, uint256 index, uint256 amount) private pure {
        assembly ("memory-safe") {
            let at := add(add(taken, 0x20), shl(5, index))
            mstore(at, add(mload(at), amount))
        }
    }

    /// @dev Writes and reports what a batch drew from `cover`'s current period, once per period and batch.
    function _flush(Cover memory cover, uint32 providerId, uint64 firstSequence) private {
        if (cover.drawn == 0 && cover.refused == 0) return;
        if (cover.drawn != 0) _includedUsed[cover.subscriptionId][cover.periodIndex] = cover.used;
        emit IncludedUsageDrawn(
            cover.buyer,
            providerId,
            cover.subscriptionId,
            firstSequence,
            cover.periodIndex,
            cover.drawn,
            cover.refused,
            cover.used,
            cover.includedValue
        );
        cover.drawn = 0;
        cover.refused = 0;
    }
}
