// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Providers, their models, the prices in force over time, and their gateway signers.
/// @notice Prices are per million tokens, in payment-token base units. A price change takes effect
/// only after the notice period, and every record is priced by the epoch in force when it was served.
interface IProviderRegistry {
    /// @notice Prices per million tokens for one model, in payment-token base units.
    struct ModelPrices {
        uint256 input;
        uint256 cachedInput;
        uint256 output;
    }

    /// @notice One span of time over which a model's prices hold: from `effectiveFrom` until the next epoch.
    struct PriceEpoch {
        uint32 effectiveFrom;
        uint72 input;
        uint72 cachedInput;
        uint72 output;
    }

    struct ProviderView {
        address owner;
        address payout;
        uint256 modelCount;
    }

    struct ModelView {
        uint32 providerId;
        uint8 localIndex;
        bool paused;
        uint256 epochCount;
    }

    /// @notice Where a gateway signer stands. `nextSequence` is the first sequence number its next batch must carry;
    /// `compromised`: fraud by it was proven, so it is unauthorized for good.
    struct SignerView {
        uint32 providerId;
        bool authorized;
        uint64 nextSequence;
        bool compromised;
    }

    /// @notice No provider has id `providerId`.
    error RegistryUnknownProvider(uint32 providerId);
    /// @notice No model has id `modelId`.
    error RegistryUnknownModel(uint32 modelId);
    /// @notice `caller` does not own provider `providerId`.
    error RegistryNotProviderOwner(uint32 providerId, address caller);
    /// @notice A price of `price` exceeds the bound `maxPrice` that keeps cost arithmetic from overflowing.
    error RegistryPriceTooHigh(uint256 price, uint256 maxPrice);
    /// @notice A model name must be 1 to `maxLength` bytes; it was `length`.
    error RegistryInvalidModelName(uint256 length, uint256 maxLength);
    /// @notice Provider `providerId` already lists the most models one provider can (`maxModels`).
    error RegistryTooManyModels(uint32 providerId, uint256 maxModels);
    /// @notice `signer` already belongs to provider `providerId`; a key serves one provider for life.
    error RegistrySignerOfOtherProvider(address signer, uint32 providerId);
    /// @notice `signer` is already in the requested state for provider `providerId`.
    error RegistrySignerUnchanged(address signer, uint32 providerId, bool authorized);
    /// @notice Fraud by `signer` was proven (`GatewayFraudProven`): it can never be authorized again.
    error RegistrySignerCompromised(address signer);
    /// @notice Model `modelId` has no price epoch with index `epochIndex`.
    error RegistryUnknownPriceEpoch(uint32 modelId, uint256 epochIndex);
    /// @notice A payout address or signer key must not be the zero address.
    error RegistryZeroAddress();
    /// @notice Model `modelId` is already in pause state `paused`.
    error RegistryPauseUnchanged(uint32 modelId, bool paused);

    event ProviderRegistered(uint32 indexed providerId, address indexed owner, address payout, string metadataURI);
    event ProviderUpdated(uint32 indexed providerId, address payout, string metadataURI);
    event ModelListed(uint32 indexed modelId, uint32 indexed providerId, uint8 localIndex, string name);
    /// @notice Model `modelId`'s prices become these from `effectiveFrom` on, as epoch `epochIndex`.
    /// @dev With the records in settlement calldata, these events are all an auditor needs to price every record.
    event PriceScheduled(
        uint32 indexed modelId, uint256 epochIndex, uint256 effectiveFrom, uint256 input, uint256 cachedInput, uint256 output
    );
    /// @notice A not-yet-effective price epoch was replaced before any usage could be served under it.
    event PriceScheduleReplaced(uint32 indexed modelId, uint256 epochIndex);
    event ModelPauseChanged(uint32 indexed modelId, bool paused);
    event SignerAuthorizationChanged(address indexed signer, uint32 indexed providerId, bool authorized);

    /// @notice Largest price per million tokens; keeps `tokens * price` within 2^106 for any record.
    function MAX_PRICE() external view returns (uint256);

    /// @notice Seconds a price change waits before it applies; fixed at deploy.
    function priceNoticePeriod() external view returns (uint256);

    /// @notice Registers the caller as owner of a new provider paid at `payout`.
    function registerProvider(address payout, string calldata metadataURI) external returns (uint32 providerId);

    /// @notice Changes a provider's payout address and metadata. Only the provider's owner.
    function updateProvider(uint32 providerId, address payout, string calldata metadataURI) external;

    /// @notice Lists a model at `prices`, in force at once (no usage can precede a listing).
    function listModel(uint32 providerId, string calldata name, ModelPrices calldata prices)
        external
        returns (uint32 modelId);

    /// @notice Schedules new prices for `modelId`, effective after the notice period.
    /// @dev If the latest epoch has not started yet, it is replaced: nothing can have been served under it.
    function scheduleModelPrice(uint32 modelId, ModelPrices calldata prices) external returns (uint256 effectiveFrom);

    /// @notice Pauses or resumes a model. Gateways stop serving a paused model; usage already served still settles.
    function setModelPaused(uint32 modelId, bool paused) external;

    /// @notice Authorizes (or revokes) a gateway key to sign usage batches for provider `providerId`.
    /// @dev A revoked key's unsettled batches can no longer settle: revoke a stolen key at once.
    function setSignerAuthorization(uint32 providerId, address signer, bool authorized) external;

    function providerCount() external view returns (uint256);
    function providerOf(uint32 providerId) external view returns (ProviderView memory);
    function modelCount() external view returns (uint256);
    function modelOf(uint32 modelId) external view returns (ModelView memory);
    /// @notice Epoch `epochIndex` of `modelId`'s prices. Epochs are ordered by `effectiveFrom`; the one in force
    /// at time t is the last starting at or before t (`server/chain` finds it for the oracle).
    function priceEpochOf(uint32 modelId, uint256 epochIndex) external view returns (PriceEpoch memory);

    function signerOf(address signer) external view returns (SignerView memory);
}
