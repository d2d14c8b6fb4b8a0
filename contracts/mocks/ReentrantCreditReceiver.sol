// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC1155Receiver} from "@openzeppelin/contracts/token/ERC1155/IERC1155Receiver.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/// @title An ERC-1155 receiver that tries to re-enter Tollgate when credits are minted to it.
contract ReentrantCreditReceiver is IERC1155Receiver {
    address public immutable tollgate;
    bytes public callbackData;
    bool public reentered;
    bool public lastCallbackSucceeded;
    bytes public lastCallbackResult;

    constructor(address tollgate_) {
        tollgate = tollgate_;
    }

    function arm(bytes calldata callbackData_) external {
        callbackData = callbackData_;
    }

    /// @notice Forwards any call to Tollgate as this contract (to deposit, approve or buy).
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }

    function onERC1155Received(address, address, uint256, uint256, bytes calldata) external returns (bytes4) {
        if (callbackData.length != 0 && !reentered) {
            reentered = true;
            (lastCallbackSucceeded, lastCallbackResult) = tollgate.call(callbackData);
        }
        return IERC1155Receiver.onERC1155Received.selector;
    }

    function onERC1155BatchReceived(address, address, uint256[] calldata, uint256[] calldata, bytes calldata)
        external
        pure
        returns (bytes4)
    {
        return IERC1155Receiver.onERC1155BatchReceived.selector;
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC1155Receiver).interfaceId || interfaceId == type(IERC165).interfaceId;
    }
}
