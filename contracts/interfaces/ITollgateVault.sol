// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Prepaid balances of buyers, earnings of providers and the protocol fee.
/// @notice Every token the vault holds belongs to exactly one of: a buyer's balance, a buyer's
/// pending withdrawal, a provider's earnings, the protocol's uncollected fees, or a provider's bond
/// (available or pending, `IProviderBonds`) (DESIGN invariant 1).
interface ITollgateVault {
    /// @notice A buyer's money in the vault.
    /// @param balance Spendable balance.
    /// @param pendingWithdrawal Requested for withdrawal; still chargeable by settlement until withdrawn.
    /// @param withdrawableAt When `withdraw` may release the pending amount (0 if none pending).
    struct AccountView {
        uint256 balance;
        uint256 pendingWithdrawal;
        uint256 withdrawableAt;
    }

    /// @notice The amount is zero where it must not be.
    error VaultZeroAmount();
    /// @notice The address is zero where it must not be.
    error VaultZeroAddress();
    /// @notice `buyer` has `balance` but the operation needs `needed`.
    error VaultInsufficientBalance(address buyer, uint256 balance, uint256 needed);
    /// @notice Crediting `amount` would push `buyer`'s balance past the largest representable one.
    error VaultBalanceOverflow(address buyer, uint256 balance, uint256 amount);
    /// @notice `buyer` has no withdrawal pending.
    error VaultNoPendingWithdrawal(address buyer);
    /// @notice `buyer`'s withdrawal unlocks at `withdrawableAt`; it is `nowTime`.
    error VaultWithdrawalNotReady(address buyer, uint256 withdrawableAt, uint256 nowTime);
    /// @notice The vault expected `expected` tokens to arrive and saw `received`.
    error VaultTransferShortfall(uint256 expected, uint256 received);
    /// @notice Provider `providerId` has no earnings to withdraw.
    error VaultNoEarnings(uint32 providerId);
    /// @notice There are no protocol fees to collect.
    error VaultNoProtocolFees();
    /// @notice A protocol fee of `feeBps` exceeds the cap `maxFeeBps`.
    error VaultFeeTooHigh(uint256 feeBps, uint256 maxFeeBps);
    /// @notice A withdrawal delay of `delay` seconds exceeds the cap `maxDelay` (withdrawal times are uint32).
    error VaultWithdrawalDelayTooLong(uint256 delay, uint256 maxDelay);

    /// @notice `payer` deposited and `buyer`'s balance grew by `credited` (what actually arrived).
    event Deposited(address indexed buyer, address indexed payer, uint256 credited);
    /// @notice `buyer` moved `amount` into its pending withdrawal, released at `withdrawableAt`.
    event WithdrawalRequested(address indexed buyer, uint256 amount, uint256 pendingWithdrawal, uint256 withdrawableAt);
    /// @notice `buyer` moved its pending withdrawal of `amount` back into its balance.
    event WithdrawalCancelled(address indexed buyer, uint256 amount);
    /// @notice `buyer` received `amount` from its pending withdrawal.
    event Withdrawn(address indexed buyer, uint256 amount);
    /// @notice Provider `providerId` was paid `amount` of earnings at `payout`.
    event EarningsWithdrawn(uint32 indexed providerId, address indexed payout, uint256 amount);
    /// @notice `amount` of protocol fees went to `treasury`.
    event ProtocolFeesCollected(address indexed treasury, uint256 amount);
    /// @notice The protocol fee changed to `feeBps` basis points.
    event ProtocolFeeChanged(uint256 feeBps);
    /// @notice The treasury changed to `treasury`.
    event TreasuryChanged(address indexed treasury);

    /// @notice The ERC-20 every balance, price and fee is denominated in; fixed at deploy.
    function paymentToken() external view returns (IERC20);

    /// @notice Seconds between `requestWithdrawal` and the earliest `withdraw`; fixed at deploy.
    function withdrawalDelay() external view returns (uint256);

    /// @notice Largest protocol fee the owner may set, in basis points.
    function MAX_FEE_BPS() external view returns (uint256);

    /// @notice Largest balance a deposit may bring an account to, and largest pending withdrawal, in token
    /// base units. Cancelling a withdrawal may return the balance to at most twice this; settlement's
    /// arithmetic stays bounded either way.
    function MAX_ACCOUNT_BALANCE() external view returns (uint256);

    /// @notice The longest withdrawal delay a deployment may set: 365 days.
    function MAX_WITHDRAWAL_DELAY() external view returns (uint256);

    /// @notice Pulls `amount` from the caller and credits what actually arrived to `buyer`.
    /// @dev Fee-on-transfer tokens credit the received amount, never the requested one.
    function deposit(address buyer, uint256 amount) external;

    /// @notice Like `deposit`, first applying an EIP-2612 permit signed by the caller.
    /// @dev If the permit was already used (front-run) but the allowance is there, the deposit still succeeds.
    function depositWithPermit(address buyer, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;

    /// @notice Moves `amount` of the caller's balance into its pending withdrawal and restarts the delay.
    /// @dev Pending money can still be charged by settlement until it is withdrawn, so providers are
    /// paid for usage served before the request.
    function requestWithdrawal(uint256 amount) external;

    /// @notice Returns the caller's whole pending withdrawal to its balance.
    function cancelWithdrawal() external;

    /// @notice Sends the caller whatever remains of its pending withdrawal, once the delay has passed.
    /// @dev Works while the protocol is paused: a buyer can always get its money out.
    function withdraw() external returns (uint256 amount);

    /// @notice Sends provider `providerId`'s earnings to its payout address. Only the provider's owner.
    function withdrawEarnings(uint32 providerId) external returns (uint256 amount);

    /// @notice Sends the uncollected protocol fees to the treasury. Anyone may call it.
    function collectProtocolFees() external returns (uint256 amount);

    /// @notice Sets the protocol fee in basis points, at most `MAX_FEE_BPS`. Only the owner.
    function setProtocolFee(uint256 feeBps) external;

    /// @notice Sets where protocol fees go. Only the owner.
    function setTreasury(address treasury) external;

    /// @notice Stops settlement and credit purchases. Deposits and withdrawals keep working. Only the owner.
    function pause() external;

    /// @notice Resumes settlement and credit purchases. Only the owner.
    function unpause() external;

    /// @notice A buyer's balance, pending withdrawal and its unlock time.
    function accountOf(address buyer) external view returns (AccountView memory);

    /// @notice Earnings of provider `providerId` not yet withdrawn.
    function earningsOf(uint32 providerId) external view returns (uint256);

    /// @notice Protocol fees not yet collected.
    function protocolFeesAccrued() external view returns (uint256);

    /// @notice Current protocol fee in basis points.
    function protocolFeeBps() external view returns (uint256);

    /// @notice Where protocol fees go.
    function treasury() external view returns (address);
}
