// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ITollgateCredits} from "./interfaces/ITollgateCredits.sol";

/// @title API-access credits as a standalone ERC-1155, minted and burned only by its Tollgate.
/// @dev Its own contract so wallets and marketplaces see a plain ERC-1155, and so Tollgate's settlement
/// code stays within the 24 KiB limit with room to be compiled for gas.
contract TollgateCredits is ITollgateCredits, ERC1155 {
    /// @inheritdoc ITollgateCredits
    address public immutable tollgate;

    constructor(address tollgate_) ERC1155("") {
        tollgate = tollgate_;
    }

    modifier onlyTollgate() {
        if (msg.sender != tollgate) revert CreditsOnlyTollgate(msg.sender);
        _;
    }

    /// @inheritdoc ITollgateCredits
    function mint(address to, uint256 id, uint256 amount) external onlyTollgate {
        _mint(to, id, amount, "");
    }

    /// @inheritdoc ITollgateCredits
    function burn(address from, uint256 id, uint256 amount) external onlyTollgate {
        _burn(from, id, amount);
    }
}
