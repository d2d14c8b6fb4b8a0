// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";

/// @title The ERC-1155 token of API-access credits: one id per provider credit plan.
/// @notice Tollgate deploys it and is the only one that mints (on purchase) and burns (on settlement).
/// Holders transfer and trade credits like any ERC-1155, so usage rights can be resold.
interface ITollgateCredits is IERC1155 {
    /// @notice Only the Tollgate that deployed this token mints and burns; `caller` is not it.
    error CreditsOnlyTollgate(address caller);

    /// @notice The Tollgate contract that mints and burns these credits.
    function tollgate() external view returns (address);

    /// @notice Mints `amount` credits of plan `id` to `to`. Only Tollgate, after payment.
    function mint(address to, uint256 id, uint256 amount) external;

    /// @notice Burns `amount` credits of plan `id` from `from`. Only Tollgate, in settlement.
    function burn(address from, uint256 id, uint256 amount) external;
}
