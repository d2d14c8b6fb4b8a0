// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Caps a buyer puts on what each provider may charge it per period.
/// @notice Settlement enforces the cap on-chain: usage beyond it is recorded as shortfall, not charged,
/// so even a stolen gateway key cannot take more than the cap per period.
interface ISpendingLimits {
    struct SpendingLimit {
        /// @dev Most the provider may charge (credits and balance together) per period.
        uint96 limitPerPeriod;
        /// @dev Period length in seconds; 0 means no limit is set.
        uint32 period;
        /// @dev Start of the current window, in settlement (block) time.
        uint32 windowStart;
        /// @dev Charged so far in the current window (credits and balance; unpaid shortfall does not count).
        uint96 spentInWindow;
    }

    /// @notice A limit needs a period between 1 second and `maxPeriod`; `period` was given.
    error LimitInvalidPeriod(uint256 period, uint256 maxPeriod);
    /// @notice A limit must fit 96 bits; `limit` did not.
    error LimitOutOfRange(uint256 limit);

    event SpendingLimitSet(address indexed buyer, uint32 indexed providerId, uint256 limitPerPeriod, uint256 period);
    event SpendingLimitCleared(address indexed buyer, uint32 indexed providerId);

    /// @notice Caps what provider `providerId` may charge the caller per `period` seconds.
    /// @dev What was spent in the current window still counts, so raising and lowering cannot reset it.
    function setSpendingLimit(uint32 providerId, uint256 limitPerPeriod, uint32 period) external;

    /// @notice Removes the caller's cap for provider `providerId`.
    function clearSpendingLimit(uint32 providerId) external;

    function spendingLimitOf(address buyer, uint32 providerId) external view returns (SpendingLimit memory);
}
