// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title A token that, once armed, calls back into a target during its transfers, to prove the
/// vault's reentrancy guard holds against a malicious payment token.
contract ReentrantToken is ERC20 {
    address public callbackTarget;
    bytes public callbackData;
    bool public lastCallbackSucceeded;
    bytes public lastCallbackResult;

    constructor() ERC20("Reentrant", "REE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target_, bytes calldata callbackData_) external {
        callbackTarget = target_;
        callbackData = callbackData_;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        address t = callbackTarget;
        if (t != address(0) && from != address(0) && to != address(0)) {
            callbackTarget = address(0); // one shot
            (lastCallbackSucceeded, lastCallbackResult) = t.call(callbackData);
        }
    }
}
