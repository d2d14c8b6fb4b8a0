// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISpendingLimits} from "./interfaces/ISpendingLimits.sol";
import {TollgateVault} from "./TollgateVault.sol";
import {AccountPacking, PackedAccount} from "./libraries/AccountPacking.sol";

/// @title Per-provider spending caps a buyer sets on itself, enforced by settlement.
abstract contract SpendingLimits is ISpendingLimits, TollgateVault {
    uint256 internal constant MAX_LIMIT_PERIOD = 366 days;

    mapping(address buyer => mapping(uint32 providerId => SpendingLimit)) internal _limits;

    /// @inheritdoc ISpendingLimits
    function setSpendingLimit(uint32 providerId, uint256 limitPerPeriod, uint32 period) external {
        _providerOrRevert(providerId);
        if (period == 0 || period > MAX_LIMIT_PERIOD) revert LimitInvalidPeriod(period, MAX_LIMIT_PERIOD);
        if (limitPerPeriod > type(uint96).max) revert LimitOutOfRange(limitPerPeriod);
        SpendingLimit storage limit = _limits[msg.sender][providerId];
        limit.limitPerPeriod = uint96(limitPerPeriod);
        limit.period = period;
        if (limit.windowStart == 0) limit.windowStart = uint32(block.timestamp);
        // Settlement skips the limits lookup for buyers that never set one.
        Account storage slot = _accountSlot(msg.sender);
        PackedAccount account = _readAccount(slot);
        if (!account.hasLimits()) _writeAccount(slot, account.withFlag(AccountPacking.FLAG_HAS_LIMITS));
        emit SpendingLimitSet(msg.sender, providerId, limitPerPeriod, period);
    }

    /// @inheritdoc ISpendingLimits
    function clearSpendingLimit(uint32 providerId) external {
        _providerOrRevert(providerId);
        delete _limits[msg.sender][providerId];
        emit SpendingLimitCleared(msg.sender, providerId);
    }

    /// @inheritdoc ISpendingLimits
    function spendingLimitOf(address buyer, uint32 providerId) external view returns (SpendingLimit memory) {
        return _limits[buyer][providerId];
    }

    /// @dev What `providerId` may still charge `buyer` now, and the window it counts in. Unlimited if no limit is set.
    function _remainingAllowance(address buyer, uint32 providerId)
        internal
        view
        returns (uint256 remaining, uint256 windowStart, uint256 spent, bool limited)
    {
        SpendingLimit memory limit = _limits[buyer][providerId];
        if (limit.period == 0) return (type(uint256).max, 0, 0, false);
        windowStart = limit.windowStart;
        spent = limit.spentInWindow;
        if (block.timestamp >= windowStart + limit.period) {
            // Windows tile time from the first one, so a buyer's period boundaries are predictable.
            windowStart += ((block.timestamp - windowStart) / limit.period) * limit.period;
            spent = 0;
        }
        remaining = spent >= limit.limitPerPeriod ? 0 : limit.limitPerPeriod - spent;
        limited = true;
    }

    /// @dev Records that `providerId` charged `buyer` so that `spent` is now used in the window starting at `windowStart`.
    function _recordSpending(address buyer, uint32 providerId, uint256 windowStart, uint256 spent) internal {
        SpendingLimit storage limit = _limits[buyer][providerId];
        limit.windowStart = uint32(windowStart);
        // spent <= limitPerPeriod, which fits 96 bits.
        limit.spentInWindow = uint96(spent);
    }
}
