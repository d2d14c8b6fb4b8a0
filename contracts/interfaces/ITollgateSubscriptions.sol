// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Subscriptions: a period price that includes a usage value per period on a provider's models.
/// @notice A provider defines a plan: a period length, a price per period, the usage value (payment-token base
/// units, priced at list prices) each paid period includes, the models it covers, and an overage rule. A buyer
/// subscribes by paying the first period from its vault balance; the period price is the provider's revenue
/// (minus the protocol fee) when it is paid, and drawing included usage later moves no money.
/// Periods tile time from the moment of subscribing: period k is [startedAt + k * period, startedAt + (k+1) * period).
/// At each period's start the subscription renews from the buyer's vault balance (not its pending withdrawal)
/// when anyone calls `renew` (a keeper, the oracle before it settles, the buyer); a cancelled subscription ends at
/// its period's end instead, and one the buyer cannot pay ends without charging anything.
/// Included usage does NOT roll over: what a period leaves unused is forfeited when the period ends
/// (`SubscriptionRenewed.forfeited`, `SubscriptionEnded.forfeited` state how much).
/// Settlement draws a record of a covered model served within a paid period first from that period's remaining
/// included value, then (beyond it) by the overage rule: `BILL_BALANCE` charges the rest like any usage (the
/// buyer's named credits, then its balance, at list prices); `REFUSE` charges nothing more and records the excess
/// as shortfall (a gateway must refuse such calls before serving them). Settlement never reverts over it.
interface ITollgateSubscriptions {
    /// @notice What happens to covered usage beyond a period's included value.
    enum Overage {
        BILL_BALANCE,
        REFUSE
    }

    /// @notice Why a subscription ended.
    enum EndReason {
        CANCELLED,
        UNPAID
    }

    struct SubscriptionPlan {
        uint32 providerId;
        /// @dev Period length in seconds, at least 1.
        uint32 period;
        Overage overage;
        uint96 price;
        uint96 includedValue;
        /// @dev Bit i set = covers the provider's model with local index i (as credit plans).
        uint256 modelMask;
    }

    /// @notice A buyer's subscription to one provider (at most one per provider at a time).
    struct Subscription {
        /// @dev Unique across all subscriptions; keys the included usage drawn per period.
        uint64 id;
        uint32 planId;
        uint32 startedAt;
        /// @dev Periods [0, paidPeriods) are paid; usage served in them draws included value.
        uint32 paidPeriods;
        /// @dev Renews at each period start; false once ended (its paid periods stay covered for late records).
        bool active;
        /// @dev Ends at the current paid period's end instead of renewing.
        bool cancelled;
    }

    /// @notice Only the Tollgate that deployed this contract may call; `caller` is not it.
    error SubscriptionsOnlyTollgate(address caller);
    /// @notice No subscription plan has id `planId`.
    error SubscriptionsUnknownPlan(uint256 planId);
    /// @notice `caller` does not own provider `providerId`.
    error SubscriptionsNotProviderOwner(uint32 providerId, address caller);
    /// @notice A plan's period must be between 1 and `maxPeriod` seconds; `period` was given.
    error SubscriptionsInvalidPeriod(uint256 period, uint256 maxPeriod);
    /// @notice A plan needs a non-zero included value and at least one model.
    error SubscriptionsInvalidPlan(uint256 includedValue, uint256 modelCount);
    /// @notice A plan's price and included value must each fit 96 bits; `value` did not.
    error SubscriptionsValueOutOfRange(uint256 value);
    /// @notice Model `modelId` does not belong to provider `providerId`, so its plans cannot cover it.
    error SubscriptionsModelNotOfProvider(uint32 modelId, uint32 providerId);
    /// @notice `buyer` already holds subscription plan `planId` of provider `providerId`, which has not ended.
    error SubscriptionsAlreadySubscribed(address buyer, uint32 providerId, uint256 planId);
    /// @notice `buyer` has no live subscription to provider `providerId`.
    error SubscriptionsNotSubscribed(address buyer, uint32 providerId);
    /// @notice `buyer`'s subscription to `providerId` is already cancelled; it ends at `endsAt`.
    error SubscriptionsAlreadyCancelled(address buyer, uint32 providerId, uint256 endsAt);
    /// @notice `buyer`'s subscription to `providerId` is paid until `paidUntil`; renewal is due then, not at `nowTime`.
    error SubscriptionsRenewalNotDue(address buyer, uint32 providerId, uint256 paidUntil, uint256 nowTime);
    /// @notice `buyer` holds `balance` in the vault, less than the period price `price`.
    error SubscriptionsInsufficientBalance(address buyer, uint256 balance, uint256 price);

    event SubscriptionPlanDefined(
        uint256 indexed planId,
        uint32 indexed providerId,
        uint256 period,
        uint256 price,
        uint256 includedValue,
        uint256 modelMask,
        Overage overage
    );
    /// @notice `buyer` subscribed to `planId`, paying `price` (of which `fee` went to the protocol) for its first
    /// period, [`periodStart`, `periodEnd`), which includes `includedValue` of usage that does not roll over.
    event Subscribed(
        address indexed buyer,
        uint32 indexed providerId,
        uint256 indexed planId,
        uint256 subscriptionId,
        uint256 periodStart,
        uint256 periodEnd,
        uint256 price,
        uint256 fee,
        uint256 includedValue
    );
    /// @notice `buyer`'s subscription renewed for period `periodIndex`, [`periodStart`, `periodEnd`), paying
    /// `price` (`fee` to the protocol). `forfeited` is the included value the previous period left unused as
    /// settled so far: it does not roll over.
    event SubscriptionRenewed(
        address indexed buyer,
        uint32 indexed providerId,
        uint256 indexed subscriptionId,
        uint256 periodIndex,
        uint256 periodStart,
        uint256 periodEnd,
        uint256 price,
        uint256 fee,
        uint256 forfeited
    );
    /// @notice `buyer` cancelled; the subscription stays paid and covered until `endsAt`, then ends. No refund.
    event SubscriptionCancelled(address indexed buyer, uint32 indexed providerId, uint256 indexed subscriptionId, uint256 endsAt);
    /// @notice The subscription ended at `endedAt` (cancelled, or a renewal of `due` the buyer's `balance` could not pay).
    /// `forfeited` is the last period's included value left unused as settled so far: it does not roll over.
    event SubscriptionEnded(
        address indexed buyer,
        uint32 indexed providerId,
        uint256 indexed subscriptionId,
        EndReason reason,
        uint256 endedAt,
        uint256 due,
        uint256 balance,
        uint256 forfeited
    );
    /// @notice Settlement of a batch starting at `firstSequence` drew `drawn` of period `periodIndex`'s included value for
    /// `buyer` (now `usedInPeriod` of `includedValue` used), and, under `REFUSE`, left `refused` of covered usage unpaid.
    event IncludedUsageDrawn(
        address indexed buyer,
        uint32 indexed providerId,
        uint256 indexed subscriptionId,
        uint64 firstSequence,
        uint256 periodIndex,
        uint256 drawn,
        uint256 refused,
        uint256 usedInPeriod,
        uint256 includedValue
    );

    /// @notice The Tollgate whose vault pays for subscriptions and whose settlement draws included usage.
    function tollgate() external view returns (address);

    /// @notice Longest period a plan may have.
    function MAX_PERIOD() external view returns (uint256);

    /// @notice Most periods one `renew` call pays; call again to catch up further.
    function MAX_RENEWALS_PER_CALL() external view returns (uint256);

    /// @notice Defines a plan of provider `providerId` covering `modelIds`. Only the provider's owner. Plans never change.
    function defineSubscriptionPlan(
        uint32 providerId,
        uint256 period,
        uint256 price,
        uint256 includedValue,
        uint32[] calldata modelIds,
        Overage overage
    ) external returns (uint256 planId);

    /// @notice Subscribes the caller to `planId`, paying its first period from the caller's vault balance.
    function subscribe(uint256 planId) external returns (uint256 subscriptionId);

    /// @notice Cancels the caller's subscription to `providerId`: it stays covered until the paid period's end, then
    /// ends. Nothing is refunded.
    function cancelSubscription(uint32 providerId) external;

    /// @notice Renews `buyer`'s subscription to `providerId` for every period that has started and is not yet paid (at
    /// most `MAX_RENEWALS_PER_CALL`), each from the buyer's vault balance; or ends it if it was cancelled or a period
    /// cannot be paid. Anyone may call. Returns the periods paid.
    function renew(address buyer, uint32 providerId) external returns (uint256 periodsPaid);

    /// @notice Settlement's draw of included usage; only the Tollgate, inside `settleBatch`, after it has validated
    /// the batch. `settleBatchCall` is that call's whole calldata; `subscribed[j]` is non-zero for each buyer of the
    /// batch's buyer table whose account carries the subscription flag. Returns 3 words per buyer of the table:
    /// covered usage that was credit-eligible, covered usage that was not (both either drawn from included value
    /// or refused), and the refused part of them.
    function drawIncluded(uint32 providerId, bytes calldata settleBatchCall, bytes calldata subscribed)
        external
        returns (bytes memory taken);

    function subscriptionPlanOf(uint256 planId) external view returns (SubscriptionPlan memory);
    function subscriptionPlanCount() external view returns (uint256);
    function subscriptionOf(address buyer, uint32 providerId) external view returns (Subscription memory);

    /// @notice End of `buyer`'s paid periods with `providerId` (0 if it never subscribed).
    function paidUntil(address buyer, uint32 providerId) external view returns (uint256);

    /// @notice Included value of period `periodIndex` of `subscriptionId` drawn by settlement so far.
    function includedUsedOf(uint256 subscriptionId, uint256 periodIndex) external view returns (uint256);
}
