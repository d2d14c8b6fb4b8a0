// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title A relayer that forwards calls in one transaction, as a multicall, a Safe-style wallet or a
/// settlement relayer would: the calls it makes are internal, so their calldata is not the transaction's.
/// Tests and the gas bench submit batches through it to prove they stay auditable.
contract BatchRelay {
    /// @notice Call `index` of a relayed bundle reverted with `reason`.
    error RelayCallFailed(uint256 index, bytes reason);

    /// @notice Calls `target` with each of `calls` in order; reverts with the first failure.
    function relay(address target, bytes[] calldata calls) external {
        for (uint256 i; i < calls.length; ++i) {
            (bool ok, bytes memory reason) = target.call(calls[i]);
            if (!ok) revert RelayCallFailed(i, reason);
        }
    }
}
