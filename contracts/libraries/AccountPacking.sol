// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev `AccountPacking.FLAG_HAS_LIMITS` where it sits in the word. At file level because settlement's buyer
/// loop, in assembly, tests it on the word it has just loaded, and inline assembly cannot name a library's members.
uint256 constant ACCOUNT_HAS_LIMITS_BIT = 0x0100000000000000000000000000000000000000000000000000000000000000;
/// @dev `AccountPacking.FLAG_HAS_SUBSCRIPTION` where it sits in the word, for the same assembly.
uint256 constant ACCOUNT_HAS_SUBSCRIPTION_BIT = 0x0200000000000000000000000000000000000000000000000000000000000000;

/// @dev A buyer's `TollgateVault.Account` as the single storage word it is.
type PackedAccount is uint256;

using AccountPacking for PackedAccount global;

/// @title The bit layout of a buyer's account slot, and the one definition of how settlement draws from it.
/// @notice `TollgateVault.Account` declares the slot, low bits first:
/// uint112 balance | uint104 pendingWithdrawal | uint32 withdrawableAt | uint8 flags.
/// Every read and write of those bits goes through this library (the vault's `_readAccount` and
/// `_writeAccount` move whole words), so the layout is stated once. `test/contracts/storage-layout.test.ts`
/// checks these constants against the layout the compiler reports for `Account`.
library AccountPacking {
    // Literals, not expressions of each other: the compiler folds a literal for sure (an expression it may
    // evaluate, overflow check and all, on every use), and the layout test checks each one independently.
    uint256 internal constant BALANCE_OFFSET = 0;
    uint256 internal constant BALANCE_BITS = 112;
    uint256 internal constant BALANCE_MASK = 0xffffffffffffffffffffffffffff;
    uint256 internal constant PENDING_OFFSET = 112;
    uint256 internal constant PENDING_BITS = 104;
    uint256 internal constant PENDING_MASK = 0xffffffffffffffffffffffffff;
    uint256 internal constant WITHDRAWABLE_AT_OFFSET = 216;
    uint256 internal constant WITHDRAWABLE_AT_BITS = 32;
    uint256 internal constant WITHDRAWABLE_AT_MASK = 0xffffffff;
    uint256 internal constant FLAGS_OFFSET = 248;
    uint256 internal constant FLAGS_BITS = 8;
    uint256 internal constant FLAGS_MASK = 0xff;
    /// @dev Balance and pending withdrawal together (bits 0-215): the bits settlement rewrites.
    uint256 internal constant MONEY_MASK = 0xffffffffffffffffffffffffffffffffffffffffffffffffffffff;

    /// @dev Flag: the buyer has set a spending limit, so settlement must read its limits. In the word it is
    /// `ACCOUNT_HAS_LIMITS_BIT`, which a reader tests with one AND and no shift.
    uint256 internal constant FLAG_HAS_LIMITS = 1;
    /// @dev Flag: the buyer has paid for a subscription at some time, so settlement asks `TollgateSubscriptions`
    /// about its included usage. It stays set when the subscription ends (late records of paid periods still draw
    /// included value); `ACCOUNT_HAS_SUBSCRIPTION_BIT` in the word.
    uint256 internal constant FLAG_HAS_SUBSCRIPTION = 2;

    function balance(PackedAccount account) internal pure returns (uint256) {
        return (PackedAccount.unwrap(account) >> BALANCE_OFFSET) & BALANCE_MASK;
    }

    function pendingWithdrawal(PackedAccount account) internal pure returns (uint256) {
        return (PackedAccount.unwrap(account) >> PENDING_OFFSET) & PENDING_MASK;
    }

    function withdrawableAt(PackedAccount account) internal pure returns (uint256) {
        return (PackedAccount.unwrap(account) >> WITHDRAWABLE_AT_OFFSET) & WITHDRAWABLE_AT_MASK;
    }

    function flags(PackedAccount account) internal pure returns (uint256) {
        return (PackedAccount.unwrap(account) >> FLAGS_OFFSET) & FLAGS_MASK;
    }

    function hasLimits(PackedAccount account) internal pure returns (bool) {
        return PackedAccount.unwrap(account) & ACCOUNT_HAS_LIMITS_BIT != 0;
    }

    function hasSubscription(PackedAccount account) internal pure returns (bool) {
        return PackedAccount.unwrap(account) & ACCOUNT_HAS_SUBSCRIPTION_BIT != 0;
    }

    /// @dev Each value is masked to its field, so a value too wide can never spill into its neighbour; callers
    /// bound their values first (with named errors), the mask only keeps a mistake inside its own field.
    function pack(uint256 balance_, uint256 pending_, uint256 withdrawableAt_, uint256 flags_)
        internal
        pure
        returns (PackedAccount)
    {
        return PackedAccount.wrap(
            ((balance_ & BALANCE_MASK) << BALANCE_OFFSET) | ((pending_ & PENDING_MASK) << PENDING_OFFSET)
                | ((withdrawableAt_ & WITHDRAWABLE_AT_MASK) << WITHDRAWABLE_AT_OFFSET)
                | ((flags_ & FLAGS_MASK) << FLAGS_OFFSET)
        );
    }

    /// @dev `account` with a new balance; everything else kept.
    function withBalance(PackedAccount account, uint256 balance_) internal pure returns (PackedAccount) {
        return PackedAccount.wrap(
            (PackedAccount.unwrap(account) & ~(BALANCE_MASK << BALANCE_OFFSET)) | ((balance_ & BALANCE_MASK) << BALANCE_OFFSET)
        );
    }

    /// @dev `account` with a new balance and pending withdrawal; its withdrawal time and flags kept.
    function withMoney(PackedAccount account, uint256 balance_, uint256 pending_)
        internal
        pure
        returns (PackedAccount)
    {
        return PackedAccount.wrap(
            (PackedAccount.unwrap(account) & ~MONEY_MASK) | ((balance_ & BALANCE_MASK) << BALANCE_OFFSET)
                | ((pending_ & PENDING_MASK) << PENDING_OFFSET)
        );
    }

    /// @dev `account` with `flag` set.
    function withFlag(PackedAccount account, uint256 flag) internal pure returns (PackedAccount) {
        return PackedAccount.wrap(PackedAccount.unwrap(account) | ((flag & FLAGS_MASK) << FLAGS_OFFSET));
    }

    /// @dev Settlement's draw, for both of its paths: charges as much of `amount` as the account holds,
    /// spendable balance first, then the pending withdrawal, which stays the buyer's money (and chargeable)
    /// until it is withdrawn; the withdrawal's unlock time is left alone. Returns the account after the
    /// charge and what was charged; `amount - paid` is the buyer's shortfall.
    function draw(PackedAccount account, uint256 amount) internal pure returns (PackedAccount updated, uint256 paid) {
        uint256 spendable = account.balance();
        uint256 pending = account.pendingWithdrawal();
        // Unchecked: a 112-bit and a 104-bit field sum below 2^113, and each subtraction takes away at most
        // what the min() just above it allows.
        unchecked {
            uint256 available = spendable + pending;
            paid = amount < available ? amount : available;
            uint256 fromSpendable = paid < spendable ? paid : spendable;
            updated = account.withMoney(spendable - fromSpendable, pending - (paid - fromSpendable));
        }
    }
}
