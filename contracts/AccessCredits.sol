// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAccessCredits} from "./interfaces/IAccessCredits.sol";
import {TollgateCredits} from "./TollgateCredits.sol";
import {SpendingLimits} from "./SpendingLimits.sol";

/// @title Credit plans and their sale; the credits themselves are the `TollgateCredits` ERC-1155.
/// @dev Buying credits pays the provider at once (minus the protocol fee); settlement later burns credits
/// instead of moving tokens, so credits never affect conservation of the vault's tokens.
abstract contract AccessCredits is IAccessCredits, SpendingLimits {
    /// @inheritdoc IAccessCredits
    uint256 public constant MAX_CREDITS_PER_PURCHASE = type(uint128).max;

    /// @dev Deployed by this contract, so it can mint and burn and nothing else can.
    TollgateCredits internal immutable _credits;

    uint32 private _planCount;
    mapping(uint256 planId => CreditPlan) internal _plans;
    /// @dev Value left from the last credit settlement burned for a holder, used before burning another.
    mapping(address holder => mapping(uint256 planId => uint256 value)) internal _creditChange;

    constructor() {
        _credits = new TollgateCredits(address(this));
    }

    /// @inheritdoc IAccessCredits
    function credits() external view returns (address) {
        return address(_credits);
    }

    /// @inheritdoc IAccessCredits
    function defineCreditPlan(
        uint32 providerId,
        uint256 pricePerCredit,
        uint256 valuePerCredit,
        uint32[] calldata modelIds,
        uint32 expiresAt
    ) external onlyProviderOwner(providerId) returns (uint256 planId) {
        if (pricePerCredit > type(uint96).max) revert CreditsPriceOutOfRange(pricePerCredit);
        if (valuePerCredit > type(uint96).max) revert CreditsPriceOutOfRange(valuePerCredit);
        if (valuePerCredit == 0 || modelIds.length == 0) revert CreditsInvalidPlan();
        uint256 modelMask;
        for (uint256 i; i < modelIds.length; ++i) {
            Model storage model = _modelOrRevert(modelIds[i]);
            if (model.providerId != providerId) revert CreditsModelNotOfProvider(modelIds[i], providerId);
            modelMask |= 1 << model.localIndex;
        }
        planId = ++_planCount;
        _plans[planId] = CreditPlan({
            providerId: providerId,
            expiresAt: expiresAt,
            pricePerCredit: uint96(pricePerCredit),
            valuePerCredit: uint96(valuePerCredit),
            modelMask: modelMask
        });
        emit CreditPlanDefined(planId, providerId, pricePerCredit, valuePerCredit, modelMask, expiresAt);
    }

    /// @inheritdoc IAccessCredits
    function buyCredits(uint256 planId, uint256 amount, address recipient) external nonReentrant whenNotPaused {
        (CreditPlan storage plan, uint256 price) = _quote(planId, amount);
        uint256 received = _pull(msg.sender, price);
        // A plan sells at its price: a token that delivers less than it was asked to cannot buy credits.
        if (received < price) revert VaultTransferShortfall(price, received);
        _sell(plan, planId, amount, price, recipient);
    }

    /// @inheritdoc IAccessCredits
    function buyCreditsWithBalance(uint256 planId, uint256 amount, address recipient)
        external
        nonReentrant
        whenNotPaused
    {
        (CreditPlan storage plan, uint256 price) = _quote(planId, amount);
        _debitBalance(msg.sender, price);
        _sell(plan, planId, amount, price, recipient);
    }

    /// @inheritdoc IAccessCredits
    function creditPlanOf(uint256 planId) external view returns (CreditPlan memory) {
        return _planOrRevert(planId);
    }

    /// @inheritdoc IAccessCredits
    function creditChangeOf(address holder, uint256 planId) external view returns (uint256) {
        return _creditChange[holder][planId];
    }

    /// @inheritdoc IAccessCredits
    function creditPlanCount() external view returns (uint256) {
        return _planCount;
    }

    function _planOrRevert(uint256 planId) internal view returns (CreditPlan storage plan) {
        plan = _plans[planId];
        if (plan.providerId == 0) revert CreditsUnknownPlan(planId);
    }

    function _quote(uint256 planId, uint256 amount) private view returns (CreditPlan storage plan, uint256 price) {
        plan = _planOrRevert(planId);
        if (amount == 0 || amount > MAX_CREDITS_PER_PURCHASE) {
            revert CreditsAmountOutOfRange(amount, MAX_CREDITS_PER_PURCHASE);
        }
        uint256 expiresAt = plan.expiresAt;
        if (expiresAt != 0 && block.timestamp >= expiresAt) revert CreditsPlanExpired(planId, expiresAt);
        price = amount * plan.pricePerCredit;
    }

    /// @dev Books the payment, then mints last: the recipient's ERC-1155 hook runs after every state change.
    function _sell(CreditPlan storage plan, uint256 planId, uint256 amount, uint256 price, address recipient) private {
        uint256 fee = _creditEarnings(plan.providerId, price);
        emit CreditsPurchased(planId, msg.sender, recipient, amount, price, fee);
        _credits.mint(recipient, planId, amount);
    }
}
