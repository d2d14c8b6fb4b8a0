// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Tollgate's side of subscriptions: the vault door its `TollgateSubscriptions` satellite pays through.
/// @notice Plans, subscriptions and included usage live in the satellite (`subscriptions()`), so Tollgate stays under
/// the 24 KiB code limit; a period's payment moves money inside the vault, so it happens here.
interface ISubscriptionBilling {
    /// @notice Only the subscriptions contract Tollgate deployed may charge a period; `caller` is not it.
    error SubscriptionsOnlySatellite(address caller);

    /// @notice The `ITollgateSubscriptions` contract this Tollgate deployed.
    function subscriptions() external view returns (address);

    /// @notice Charges `buyer`'s vault balance (not its pending withdrawal) `amount` for a subscription period of
    /// `providerId`, crediting the provider's earnings minus the protocol fee. Returns `paid = false` and changes
    /// nothing when the balance is short. Only the subscriptions contract, which emits the event.
    function chargeSubscription(address buyer, uint32 providerId, uint256 amount)
        external
        returns (bool paid, uint256 fee);
}
