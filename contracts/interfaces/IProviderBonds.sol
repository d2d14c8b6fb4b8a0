// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title A provider's bond: payment tokens it stakes behind its gateway signers' honesty.
/// @notice Anyone may add to a provider's bond; only the provider's owner may take it out, and only
/// `BOND_WITHDRAWAL_DELAY` after asking, which is longer than the dispute window, so a bond cannot leave
/// ahead of a proof of fraud against a batch settled before the request. Pending bond stays slashable.
/// Bonds are part of the vault's conservation: tokens held == buyer balances + pending withdrawals +
/// provider earnings + protocol fees + bonds (available + pending) + unclaimed dispute awards.
interface IProviderBonds {
    /// @notice The bond amount is zero where it must not be.
    error BondZeroAmount();
    /// @notice Provider `providerId` has `available` bond, less than the `requested` amount.
    error BondInsufficient(uint32 providerId, uint256 available, uint256 requested);
    /// @notice Adding `amount` to provider `providerId`'s bond of `bond` would pass `MAX_BOND`.
    error BondOverflow(uint32 providerId, uint256 bond, uint256 amount);
    /// @notice Provider `providerId` has no bond withdrawal pending.
    error BondNoPendingWithdrawal(uint32 providerId);
    /// @notice Provider `providerId`'s bond withdrawal unlocks at `withdrawableAt`; it is `nowTime`.
    error BondWithdrawalNotReady(uint32 providerId, uint256 withdrawableAt, uint256 nowTime);

    /// @notice `payer` added `amount` (what actually arrived) to provider `providerId`'s bond.
    event BondPosted(uint32 indexed providerId, address indexed payer, uint256 amount);
    /// @notice `amount` of the bond moved to pending (now `pending` in all), released at `withdrawableAt`.
    event BondWithdrawalRequested(uint32 indexed providerId, uint256 amount, uint256 pending, uint256 withdrawableAt);
    /// @notice The pending bond of `amount` went back to the available bond.
    event BondWithdrawalCancelled(uint32 indexed providerId, uint256 amount);
    /// @notice `amount` of pending bond was paid to the provider's `payout` address.
    event BondWithdrawn(uint32 indexed providerId, address indexed payout, uint256 amount);

    /// @notice Seconds between `requestBondWithdrawal` and the earliest `withdrawBond`: 15 days, longer than
    /// the dispute window (`DISPUTE_WINDOW`, 14 days).
    function BOND_WITHDRAWAL_DELAY() external view returns (uint256);

    /// @notice Largest bond (available + pending) one provider may hold, in token base units: the largest
    /// account balance, so one slash always fits an award bucket's arithmetic.
    function MAX_BOND() external view returns (uint256);

    /// @notice Pulls `amount` from the caller into provider `providerId`'s bond; credits what arrived.
    function postBond(uint32 providerId, uint256 amount) external;

    /// @notice Moves `amount` of the available bond to pending and restarts the delay. Only the provider's owner.
    function requestBondWithdrawal(uint32 providerId, uint256 amount) external;

    /// @notice Returns the whole pending bond to the available bond. Only the provider's owner.
    function cancelBondWithdrawal(uint32 providerId) external;

    /// @notice Pays what is left of the pending bond to the provider's payout address once the delay has
    /// passed (disputes may have taken some of it). Only the provider's owner.
    function withdrawBond(uint32 providerId) external returns (uint256 amount);

    /// @notice Provider `providerId`'s bond: available, pending withdrawal, and when pending unlocks (0: none).
    function bondOf(uint32 providerId)
        external
        view
        returns (uint256 available, uint256 pending, uint256 withdrawableAt);
}
