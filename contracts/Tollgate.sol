// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ProviderRegistry} from "./ProviderRegistry.sol";
import {TollgateVault} from "./TollgateVault.sol";
import {GatewayDisputes} from "./GatewayDisputes.sol";

/// @title Tollgate: prepaid AI usage, settled by contract.
/// @notice One deployment holds the vault, the provider registry, the credit plans, the buyers' spending
/// limits and settlement, so settlement touches each buyer's money and prices without external calls.
/// It deploys its own ERC-1155 credits token (`credits()`). Providers bond their gateways (`ProviderBonds`), and
/// anyone holding a receipt can prove a gateway lied (`GatewayDisputes`).
contract Tollgate is GatewayDisputes {
    /// @param paymentToken_ The ERC-20 of every balance and price (fixed for the deployment's life).
    /// @param withdrawalDelay_ Seconds a buyer waits between requesting and executing a withdrawal; make
    /// it longer than the settlement window so providers are paid before money can leave.
    /// @param priceNoticePeriod_ Seconds before a scheduled price change applies.
    /// @param feeBps_ Protocol fee in basis points (at most MAX_FEE_BPS).
    /// @param treasury_ Where protocol fees go.
    /// @param owner_ Who may set the fee and treasury and pause; ownership moves by Ownable2Step.
    constructor(
        IERC20 paymentToken_,
        uint256 withdrawalDelay_,
        uint256 priceNoticePeriod_,
        uint256 feeBps_,
        address treasury_,
        address owner_
    )
        ProviderRegistry(priceNoticePeriod_)
        TollgateVault(paymentToken_, withdrawalDelay_, feeBps_, treasury_, owner_)
        EIP712("Tollgate", "1")
    {}
}
