// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ITollgateVault} from "./interfaces/ITollgateVault.sol";
import {ProviderRegistry} from "./ProviderRegistry.sol";
import {AccountPacking, PackedAccount} from "./libraries/AccountPacking.sol";

/// @title Prepaid buyer balances, provider earnings and protocol fees, in one ERC-20.
/// @dev Conservation (DESIGN invariant 1): token.balanceOf(this) == sum of buyer balances and pending
/// withdrawals + sum of provider earnings + uncollected protocol fees + providers' bonds, available and
/// pending (`ProviderBonds`) + unclaimed dispute awards (`GatewayDisputes`; a proof of fraud moves bond into
/// award buckets, never into buyer balances). Tokens enter only through `_pull`,
/// leave only through `_push`, and every internal move debits exactly what it credits.
/// One door per kind of change: a buyer's account changes only through `_writeAccount`, and provider earnings
/// and protocol fees grow only through `_creditProvider`. Both mappings are private, so the compiler holds
/// every derived contract to those doors.
abstract contract TollgateVault is ITollgateVault, ProviderRegistry, Ownable2Step, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @inheritdoc ITollgateVault
    uint256 public constant MAX_FEE_BPS = 1_000;
    /// @inheritdoc ITollgateVault
    uint256 public constant MAX_ACCOUNT_BALANCE = type(uint104).max;
    /// @inheritdoc ITollgateVault
    uint256 public constant MAX_WITHDRAWAL_DELAY = 365 days;
    uint256 internal constant BPS = 10_000;

    /// @dev One slot per buyer, so settlement reads and writes a buyer's money once per batch. The struct
    /// declares the slot; `AccountPacking` is the only code that reads or writes its fields.
    struct Account {
        uint112 balance;
        uint104 pendingWithdrawal;
        uint32 withdrawableAt;
        uint8 flags;
    }

    IERC20 private immutable _paymentToken;
    /// @inheritdoc ITollgateVault
    uint256 public immutable withdrawalDelay;

    mapping(address buyer => Account) private _accounts;
    mapping(uint32 providerId => uint256) private _earnings;
    uint256 private _protocolFees;
    uint16 internal _feeBps;
    address private _treasury;

    constructor(IERC20 paymentToken_, uint256 withdrawalDelay_, uint256 feeBps_, address treasury_, address owner_)
        Ownable(owner_)
    {
        if (address(paymentToken_) == address(0) || treasury_ == address(0)) revert VaultZeroAddress();
        // withdrawableAt is stored as uint32: an unbounded delay could wrap it into the past.
        if (withdrawalDelay_ > MAX_WITHDRAWAL_DELAY) revert VaultWithdrawalDelayTooLong(withdrawalDelay_, MAX_WITHDRAWAL_DELAY);
        _paymentToken = paymentToken_;
        withdrawalDelay = withdrawalDelay_;
        _setProtocolFee(feeBps_);
        _setTreasury(treasury_);
    }

    /// @inheritdoc ITollgateVault
    function paymentToken() external view returns (IERC20) {
        return _paymentToken;
    }

    /// @inheritdoc ITollgateVault
    function deposit(address buyer, uint256 amount) external nonReentrant {
        _deposit(buyer, amount);
    }

    /// @inheritdoc ITollgateVault
    function depositWithPermit(address buyer, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        // A permit seen in the mempool can be submitted by anyone first; then ours reverts but the
        // allowance is already there. Ignore the failure and let the transfer decide.
        try IERC20Permit(address(_paymentToken)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(buyer, amount);
    }

    /// @inheritdoc ITollgateVault
    function requestWithdrawal(uint256 amount) external nonReentrant {
        if (amount == 0) revert VaultZeroAmount();
        Account storage slot = _accountSlot(msg.sender);
        PackedAccount account = _readAccount(slot);
        uint256 balance = account.balance();
        if (amount > balance) revert VaultInsufficientBalance(msg.sender, balance, amount);
        uint256 pending = account.pendingWithdrawal() + amount;
        if (pending > MAX_ACCOUNT_BALANCE) revert VaultBalanceOverflow(msg.sender, account.pendingWithdrawal(), amount);
        // withdrawalDelay <= MAX_WITHDRAWAL_DELAY keeps this inside 32 bits until 2105.
        uint256 withdrawableAt = block.timestamp + withdrawalDelay;
        // Each request restarts the delay, so settlement always has the full window to charge pending money.
        _writeAccount(slot, AccountPacking.pack(balance - amount, pending, withdrawableAt, account.flags()));
        emit WithdrawalRequested(msg.sender, amount, pending, withdrawableAt);
    }

    /// @inheritdoc ITollgateVault
    function cancelWithdrawal() external nonReentrant {
        Account storage slot = _accountSlot(msg.sender);
        PackedAccount account = _readAccount(slot);
        uint256 pending = account.pendingWithdrawal();
        if (pending == 0) revert VaultNoPendingWithdrawal(msg.sender);
        // balance + pending <= 2 * MAX_ACCOUNT_BALANCE < 2^112: a deposit bounds the balance, a request bounds
        // pending, and requests, cancellations and settlement only move money between the two or take it away.
        _writeAccount(slot, AccountPacking.pack(account.balance() + pending, 0, 0, account.flags()));
        emit WithdrawalCancelled(msg.sender, pending);
    }

    /// @inheritdoc ITollgateVault
    function withdraw() external nonReentrant returns (uint256 amount) {
        Account storage slot = _accountSlot(msg.sender);
        PackedAccount account = _readAccount(slot);
        amount = account.pendingWithdrawal();
        uint256 withdrawableAt = account.withdrawableAt();
        if (withdrawableAt == 0) revert VaultNoPendingWithdrawal(msg.sender);
        if (block.timestamp < withdrawableAt) {
            revert VaultWithdrawalNotReady(msg.sender, withdrawableAt, block.timestamp);
        }
        _writeAccount(slot, AccountPacking.pack(account.balance(), 0, 0, account.flags()));
        emit Withdrawn(msg.sender, amount);
        // Settlement may have drawn the whole pending amount; the request still closes cleanly.
        if (amount != 0) _push(msg.sender, amount);
    }

    /// @inheritdoc ITollgateVault
    function withdrawEarnings(uint32 providerId) external nonReentrant returns (uint256 amount) {
        _checkProviderOwner(providerId);
        amount = _earnings[providerId];
        if (amount == 0) revert VaultNoEarnings(providerId);
        _earnings[providerId] = 0;
        address payout = _providers[providerId].payout;
        emit EarningsWithdrawn(providerId, payout, amount);
        _push(payout, amount);
    }

    /// @inheritdoc ITollgateVault
    function collectProtocolFees() external nonReentrant returns (uint256 amount) {
        amount = _protocolFees;
        if (amount == 0) revert VaultNoProtocolFees();
        _protocolFees = 0;
        address to = _treasury;
        emit ProtocolFeesCollected(to, amount);
        _push(to, amount);
    }

    /// @inheritdoc ITollgateVault
    function setProtocolFee(uint256 feeBps) external onlyOwner {
        _setProtocolFee(feeBps);
    }

    /// @inheritdoc ITollgateVault
    function setTreasury(address treasury_) external onlyOwner {
        _setTreasury(treasury_);
    }

    /// @inheritdoc ITollgateVault
    function pause() external onlyOwner {
        _pause();
    }

    /// @inheritdoc ITollgateVault
    function unpause() external onlyOwner {
        _unpause();
    }

    /// @inheritdoc ITollgateVault
    function accountOf(address buyer) external view returns (AccountView memory) {
        PackedAccount account = _readAccount(_accountSlot(buyer));
        return AccountView({
            balance: account.balance(),
            pendingWithdrawal: account.pendingWithdrawal(),
            withdrawableAt: account.withdrawableAt()
        });
    }

    /// @inheritdoc ITollgateVault
    function earningsOf(uint32 providerId) external view returns (uint256) {
        return _earnings[providerId];
    }

    /// @inheritdoc ITollgateVault
    function protocolFeesAccrued() external view returns (uint256) {
        return _protocolFees;
    }

    /// @inheritdoc ITollgateVault
    function protocolFeeBps() external view returns (uint256) {
        return _feeBps;
    }

    /// @inheritdoc ITollgateVault
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @dev The protocol fee on `amount`, rounded up so that splitting a charge into small ones never lowers it.
    /// Both settlement paths and credit sales take their fee here, so the formula exists once.
    function _feeOn(uint256 amount, uint256 feeBps) internal pure returns (uint256) {
        // Unchecked: every amount charged is below 2^224 (a credit sale: a 128-bit count at a 96-bit price;
        // a settlement: below 2^113 from balance) and feeBps <= MAX_FEE_BPS, so the product cannot overflow.
        unchecked {
            return (amount * feeBps + BPS - 1) / BPS;
        }
    }

    /// @dev Splits a payment received by the vault between provider earnings and the protocol fee.
    function _creditEarnings(uint32 providerId, uint256 amount) internal returns (uint256 fee) {
        fee = _feeOn(amount, _feeBps);
        _creditProvider(providerId, amount - fee, fee);
    }

    /// @dev The one door through which provider earnings and protocol fees grow: what a buyer paid, split.
    /// Callers emit their event (`CreditsPurchased`, `BatchSettled`) right after it.
    function _creditProvider(uint32 providerId, uint256 earnings, uint256 fee) internal {
        _earnings[providerId] += earnings;
        _protocolFees += fee;
    }

    /// @dev Debits `amount` from `buyer`'s spendable balance (not its pending withdrawal).
    function _debitBalance(address buyer, uint256 amount) internal {
        Account storage slot = _accountSlot(buyer);
        PackedAccount account = _readAccount(slot);
        uint256 balance = account.balance();
        if (amount > balance) revert VaultInsufficientBalance(buyer, balance, amount);
        _writeAccount(slot, account.withBalance(balance - amount));
    }

    /// @dev Where `buyer`'s account lives. Settlement keeps the pointer for the whole batch, so it hashes
    /// each buyer's key once.
    function _accountSlot(address buyer) internal view returns (Account storage) {
        return _accounts[buyer];
    }

    /// @dev The storage slot of the `_accounts` mapping itself, for assembly that derives buyers' slots.
    function _accountsMappingSlot() internal pure returns (uint256 slot) {
        assembly ("memory-safe") {
            slot := _accounts.slot
        }
    }

    function _readAccount(Account storage slot) internal view returns (PackedAccount account) {
        assembly ("memory-safe") {
            account := sload(slot.slot)
        }
    }

    /// @dev The one door through which a buyer's account changes: deposits, withdrawal requests and their
    /// cancellation, withdrawals, credit purchases from balance, the spending-limit flag and settlement all
    /// end here, with the whole new word (`AccountPacking` builds it). Callers emit their event right after.
    function _writeAccount(Account storage slot, PackedAccount account) internal {
        assembly ("memory-safe") {
            sstore(slot.slot, account)
        }
    }

    /// @dev Pulls `amount` from `from` and returns what actually arrived (fee-on-transfer tokens deliver less).
    function _pull(address from, uint256 amount) internal returns (uint256 received) {
        uint256 before = _paymentToken.balanceOf(address(this));
        _paymentToken.safeTransferFrom(from, address(this), amount);
        received = _paymentToken.balanceOf(address(this)) - before;
    }

    function _push(address to, uint256 amount) internal {
        _paymentToken.safeTransfer(to, amount);
    }

    function _deposit(address buyer, uint256 amount) private {
        if (buyer == address(0)) revert VaultZeroAddress();
        if (amount == 0) revert VaultZeroAmount();
        uint256 received = _pull(msg.sender, amount);
        if (received == 0) revert VaultTransferShortfall(amount, received);
        Account storage slot = _accountSlot(buyer);
        PackedAccount account = _readAccount(slot);
        uint256 balance = account.balance();
        if (balance + received > MAX_ACCOUNT_BALANCE) revert VaultBalanceOverflow(buyer, balance, received);
        _writeAccount(slot, account.withBalance(balance + received));
        emit Deposited(buyer, msg.sender, received);
    }

    function _setProtocolFee(uint256 feeBps) private {
        if (feeBps > MAX_FEE_BPS) revert VaultFeeTooHigh(feeBps, MAX_FEE_BPS);
        _feeBps = uint16(feeBps);
        emit ProtocolFeeChanged(feeBps);
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert VaultZeroAddress();
        _treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }
}
