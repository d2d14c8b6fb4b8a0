// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IProviderBonds} from "./interfaces/IProviderBonds.sol";
import {UsageSettlement} from "./UsageSettlement.sol";

/// @title Providers' bonds, in the vault's payment token, behind their gateway signers.
/// @dev Tokens come in through the vault's `_pull` and leave through `_push`; a bond shrinks otherwise only
/// through `_debitBond`, the one door a proof of fraud takes. Above settlement in the inheritance chain so
/// its storage is appended after everything settlement's assembly addresses.
abstract contract ProviderBonds is IProviderBonds, UsageSettlement {
    /// @inheritdoc IProviderBonds
    uint256 public constant BOND_WITHDRAWAL_DELAY = 15 days;
    /// @inheritdoc IProviderBonds
    uint256 public constant MAX_BOND = MAX_ACCOUNT_BALANCE;

    /// @dev One slot per provider. available + pending <= MAX_BOND < 2^104.
    struct Bond {
        uint112 available;
        uint112 pending;
        uint32 withdrawableAt;
    }

    mapping(uint32 providerId => Bond) private _bonds;

    /// @inheritdoc IProviderBonds
    function postBond(uint32 providerId, uint256 amount) external nonReentrant {
        _providerOrRevert(providerId);
        if (amount == 0) revert BondZeroAmount();
        uint256 received = _pull(msg.sender, amount);
        if (received == 0) revert VaultTransferShortfall(amount, received);
        Bond storage bond = _bonds[providerId];
        uint256 held = uint256(bond.available) + bond.pending;
        if (held + received > MAX_BOND) revert BondOverflow(providerId, held, received);
        bond.available += uint112(received);
        emit BondPosted(providerId, msg.sender, received);
    }

    /// @inheritdoc IProviderBonds
    function requestBondWithdrawal(uint32 providerId, uint256 amount) external nonReentrant {
        _checkProviderOwner(providerId);
        if (amount == 0) revert BondZeroAmount();
        Bond storage bond = _bonds[providerId];
        uint256 available = bond.available;
        if (amount > available) revert BondInsufficient(providerId, available, amount);
        // Each request restarts the delay, so any batch settled before it stays disputable while the bond is here.
        uint256 withdrawableAt = block.timestamp + BOND_WITHDRAWAL_DELAY;
        uint256 pending = bond.pending + amount;
        bond.available = uint112(available - amount);
        bond.pending = uint112(pending);
        bond.withdrawableAt = uint32(withdrawableAt);
        emit BondWithdrawalRequested(providerId, amount, pending, withdrawableAt);
    }

    /// @inheritdoc IProviderBonds
    function cancelBondWithdrawal(uint32 providerId) external nonReentrant {
        _checkProviderOwner(providerId);
        Bond storage bond = _bonds[providerId];
        uint256 pending = bond.pending;
        if (bond.withdrawableAt == 0) revert BondNoPendingWithdrawal(providerId);
        _bonds[providerId] = Bond({available: uint112(bond.available + pending), pending: 0, withdrawableAt: 0});
        emit BondWithdrawalCancelled(providerId, pending);
    }

    /// @inheritdoc IProviderBonds
    function withdrawBond(uint32 providerId) external nonReentrant returns (uint256 amount) {
        _checkProviderOwner(providerId);
        Bond storage bond = _bonds[providerId];
        uint256 withdrawableAt = bond.withdrawableAt;
        if (withdrawableAt == 0) revert BondNoPendingWithdrawal(providerId);
        if (block.timestamp < withdrawableAt) revert BondWithdrawalNotReady(providerId, withdrawableAt, block.timestamp);
        amount = bond.pending;
        bond.pending = 0;
        bond.withdrawableAt = 0;
        address payout = _providers[providerId].payout;
        emit BondWithdrawn(providerId, payout, amount);
        // A dispute may have taken the whole pending bond; the request still closes cleanly.
        if (amount != 0) _push(payout, amount);
    }

    /// @inheritdoc IProviderBonds
    function bondOf(uint32 providerId)
        external
        view
        returns (uint256 available, uint256 pending, uint256 withdrawableAt)
    {
        Bond storage bond = _bonds[providerId];
        return (bond.available, bond.pending, bond.withdrawableAt);
    }

    /// @dev Everything provider `providerId` has bonded, pending included: what a proof of fraud can reach.
    function _bondHeld(uint32 providerId) internal view returns (uint256) {
        Bond storage bond = _bonds[providerId];
        return uint256(bond.available) + bond.pending;
    }

    /// @dev The one door through which a bond is slashed: takes `amount`, available bond first, then pending
    /// (still the provider's until withdrawn, so still answerable). Callers cap `amount` at `_bondHeld` and
    /// award exactly it to buyers, so the vault's tokens stay accounted for; more reverts (checked arithmetic).
    function _debitBond(uint32 providerId, uint256 amount) internal {
        Bond storage bond = _bonds[providerId];
        uint256 available = bond.available;
        if (amount <= available) {
            bond.available = uint112(available - amount);
        } else {
            bond.available = 0;
            bond.pending = uint112(bond.pending - (amount - available));
        }
    }
}
