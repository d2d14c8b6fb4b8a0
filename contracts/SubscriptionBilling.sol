// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISubscriptionBilling} from "./interfaces/ISubscriptionBilling.sol";
import {TollgateSubscriptions} from "./TollgateSubscriptions.sol";
import {AccessCredits} from "./AccessCredits.sol";
import {AccountPacking, PackedAccount} from "./libraries/AccountPacking.sol";

/// @title The vault's door for subscription payments; plans and included usage live in `TollgateSubscriptions`.
/// @dev The satellite holds the subscription logic because Tollgate had 23 bytes of its 24 KiB left; what must stay
/// here is what touches the vault: a period's payment (`chargeSubscription`) and, in `UsageSettlement`, taking the
/// included usage the satellite drew out of what a batch charges.
abstract contract SubscriptionBilling is ISubscriptionBilling, AccessCredits {
    /// @dev Deployed by this contract, so only it can charge through `chargeSubscription`.
    TollgateSubscriptions internal immutable _subscriptions;

    constructor() {
        _subscriptions = new TollgateSubscriptions(address(this));
    }

    /// @inheritdoc ISubscriptionBilling
    function subscriptions() external view returns (address) {
        return address(_subscriptions);
    }

    /// @inheritdoc ISubscriptionBilling
    function chargeSubscription(address buyer, uint32 providerId, uint256 amount)
        external
        nonReentrant
        whenNotPaused
        returns (bool paid, uint256 fee)
    {
        if (msg.sender != address(_subscriptions)) revert SubscriptionsOnlySatellite(msg.sender);
        Account storage slot = _accountSlot(buyer);
        PackedAccount account = _readAccount(slot);
        uint256 balance = account.balance();
        if (amount > balance) return (false, 0);
        // The flag sends the buyer's batches through the general settlement path, which asks the satellite.
        _writeAccount(slot, account.withBalance(balance - amount).withFlag(AccountPacking.FLAG_HAS_SUBSCRIPTION));
        fee = _creditEarnings(providerId, amount);
        paid = true;
    }
}
