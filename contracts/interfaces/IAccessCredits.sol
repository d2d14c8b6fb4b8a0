// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title API-access credits: provider credit plans, sold as ERC-1155 tokens of `credits()`, one id per plan.
/// @notice One credit of plan P is worth `valuePerCredit` of usage (in payment-token base units) on the
/// plan's models, and costs `pricePerCredit`. Credits are transferable, so usage rights can be resold.
/// Settlement burns the serving provider's credits before it draws on the buyer's balance. It burns whole
/// credits; the value of the last one beyond the usage it paid for stays with the holder as "change"
/// (`creditChangeOf`) and pays for that plan's next usage before another credit is burned.
interface IAccessCredits {
    struct CreditPlan {
        uint32 providerId;
        /// @dev Usage served at or after this time is not covered; 0 means the credits never expire.
        uint32 expiresAt;
        uint96 pricePerCredit;
        uint96 valuePerCredit;
        /// @dev Bit i set = covers the provider's model with local index i.
        uint256 modelMask;
    }

    /// @notice No plan has id `planId`.
    error CreditsUnknownPlan(uint256 planId);
    /// @notice A plan needs a non-zero value per credit and at least one model.
    error CreditsInvalidPlan();
    /// @notice Model `modelId` does not belong to provider `providerId`, so its plans cannot cover it.
    error CreditsModelNotOfProvider(uint32 modelId, uint32 providerId);
    /// @notice Plan `planId` expired at `expiresAt`; credits of it can no longer be bought.
    error CreditsPlanExpired(uint256 planId, uint256 expiresAt);
    /// @notice `amount` credits exceeds the most one purchase may buy, `maxAmount`.
    error CreditsAmountOutOfRange(uint256 amount, uint256 maxAmount);
    /// @notice A plan's price and value must each fit 96 bits; `value` did not.
    error CreditsPriceOutOfRange(uint256 value);

    event CreditPlanDefined(
        uint256 indexed planId,
        uint32 indexed providerId,
        uint256 pricePerCredit,
        uint256 valuePerCredit,
        uint256 modelMask,
        uint256 expiresAt
    );
    /// @notice `payer` bought `amount` credits of `planId` for `recipient`, paying `paid`, of which `fee` went to the protocol.
    event CreditsPurchased(
        uint256 indexed planId, address indexed payer, address indexed recipient, uint256 amount, uint256 paid, uint256 fee
    );

    /// @notice The ERC-1155 credits token (`ITollgateCredits`) this contract mints and burns.
    function credits() external view returns (address);

    /// @notice Most credits one purchase may buy; keeps `amount * pricePerCredit` far from overflow.
    function MAX_CREDITS_PER_PURCHASE() external view returns (uint256);

    /// @notice Defines a credit plan for provider `providerId` covering `modelIds`. Only the provider's owner.
    /// @param expiresAt 0 for credits that never expire.
    function defineCreditPlan(
        uint32 providerId,
        uint256 pricePerCredit,
        uint256 valuePerCredit,
        uint32[] calldata modelIds,
        uint32 expiresAt
    ) external returns (uint256 planId);

    /// @notice Buys `amount` credits of `planId` for `recipient`, paid from the caller's wallet (needs allowance).
    function buyCredits(uint256 planId, uint256 amount, address recipient) external;

    /// @notice Buys `amount` credits of `planId` for `recipient`, paid from the caller's vault balance.
    function buyCreditsWithBalance(uint256 planId, uint256 amount, address recipient) external;

    function creditPlanOf(uint256 planId) external view returns (CreditPlan memory);
    function creditPlanCount() external view returns (uint256);

    /// @notice Usage value (token base units) left from a partly used credit of `planId` held by `holder`.
    /// It is not transferable with the ERC-1155 credits and applies under the plan's terms (models, expiry).
    function creditChangeOf(address holder, uint256 planId) external view returns (uint256);
}
