// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/// @title Providers, models, price epochs and gateway signers.
/// @dev Names and metadata URIs live in events only (`ProviderRegistered`, `ModelListed`): clients index
/// them, and keeping them out of storage keeps this contract under the 24 KiB code limit.
/// Price history is append-only (only a not-yet-effective last epoch may be replaced), so the price
/// in force when any past record was served can always be found, and settlement names the epoch per model.
abstract contract ProviderRegistry is IProviderRegistry {
    /// @inheritdoc IProviderRegistry
    uint256 public constant MAX_PRICE = type(uint72).max;
    uint256 internal constant MAX_MODEL_NAME_LENGTH = 64;
    /// @dev Local indices are bits of a credit plan's 256-bit model mask.
    uint256 internal constant MAX_MODELS_PER_PROVIDER = 256;

    struct Provider {
        address owner;
        uint32 modelCount;
        address payout;
    }

    struct Model {
        uint32 providerId;
        uint8 localIndex;
        bool paused;
    }

    struct Signer {
        uint32 providerId;
        bool authorized;
        uint64 nextSequence;
        // Set by a proof of fraud, with `authorized` cleared, so settlement's hot path tests one flag only.
        bool compromised;
    }

    /// @inheritdoc IProviderRegistry
    uint256 public immutable priceNoticePeriod;

    uint32 private _providerCount;
    uint32 private _modelCount;
    mapping(uint32 providerId => Provider) internal _providers;
    mapping(uint32 modelId => Model) internal _models;
    mapping(uint32 modelId => PriceEpoch[]) internal _priceEpochs;
    mapping(address signer => Signer) internal _signers;

    constructor(uint256 priceNoticePeriod_) {
        priceNoticePeriod = priceNoticePeriod_;
    }

    modifier onlyProviderOwner(uint32 providerId) {
        _checkProviderOwner(providerId);
        _;
    }

    /// @inheritdoc IProviderRegistry
    function registerProvider(address payout, string calldata metadataURI) external returns (uint32 providerId) {
        _requireNonZeroPayout(payout);
        providerId = ++_providerCount;
        _providers[providerId] = Provider({owner: msg.sender, modelCount: 0, payout: payout});
        emit ProviderRegistered(providerId, msg.sender, payout, metadataURI);
    }

    /// @inheritdoc IProviderRegistry
    function updateProvider(uint32 providerId, address payout, string calldata metadataURI)
        external
        onlyProviderOwner(providerId)
    {
        _requireNonZeroPayout(payout);
        _providers[providerId].payout = payout;
        emit ProviderUpdated(providerId, payout, metadataURI);
    }

    /// @inheritdoc IProviderRegistry
    function listModel(uint32 providerId, string calldata name, ModelPrices calldata prices)
        external
        onlyProviderOwner(providerId)
        returns (uint32 modelId)
    {
        uint256 nameLength = bytes(name).length;
        if (nameLength == 0 || nameLength > MAX_MODEL_NAME_LENGTH) {
            revert RegistryInvalidModelName(nameLength, MAX_MODEL_NAME_LENGTH);
        }
        Provider storage provider = _providers[providerId];
        uint32 localIndex = provider.modelCount;
        if (localIndex == MAX_MODELS_PER_PROVIDER) revert RegistryTooManyModels(providerId, MAX_MODELS_PER_PROVIDER);
        provider.modelCount = localIndex + 1;

        modelId = ++_modelCount;
        _models[modelId] = Model({providerId: providerId, localIndex: uint8(localIndex), paused: false});
        emit ModelListed(modelId, providerId, uint8(localIndex), name);
        _pushEpoch(modelId, block.timestamp, prices);
    }

    /// @inheritdoc IProviderRegistry
    function scheduleModelPrice(uint32 modelId, ModelPrices calldata prices)
        external
        returns (uint256 effectiveFrom)
    {
        _checkProviderOwner(_modelOrRevert(modelId).providerId);
        PriceEpoch[] storage epochs = _priceEpochs[modelId];
        uint256 last = epochs.length - 1;
        if (epochs[last].effectiveFrom > block.timestamp) {
            // No record can carry a serving time in the future, so nothing was priced by this epoch.
            epochs.pop();
            emit PriceScheduleReplaced(modelId, last);
        }
        effectiveFrom = block.timestamp + priceNoticePeriod;
        _pushEpoch(modelId, effectiveFrom, prices);
    }

    /// @inheritdoc IProviderRegistry
    function setModelPaused(uint32 modelId, bool paused) external {
        Model storage model = _modelOrRevert(modelId);
        _checkProviderOwner(model.providerId);
        if (model.paused == paused) revert RegistryPauseUnchanged(modelId, paused);
        model.paused = paused;
        emit ModelPauseChanged(modelId, paused);
    }

    /// @inheritdoc IProviderRegistry
    function setSignerAuthorization(uint32 providerId, address signer, bool authorized)
        external
        onlyProviderOwner(providerId)
    {
        Signer storage state = _signers[signer];
        uint32 owner = state.providerId;
        if (owner != 0 && owner != providerId) revert RegistrySignerOfOtherProvider(signer, owner);
        if (state.compromised) revert RegistrySignerCompromised(signer);
        if (signer == address(0)) revert RegistryZeroAddress();
        if (owner == providerId && state.authorized == authorized) {
            revert RegistrySignerUnchanged(signer, providerId, authorized);
        }
        if (owner == 0 && !authorized) revert RegistrySignerUnchanged(signer, providerId, authorized);
        state.providerId = providerId;
        state.authorized = authorized;
        emit SignerAuthorizationChanged(signer, providerId, authorized);
    }

    /// @inheritdoc IProviderRegistry
    function providerCount() external view returns (uint256) {
        return _providerCount;
    }

    /// @inheritdoc IProviderRegistry
    function providerOf(uint32 providerId) external view returns (ProviderView memory) {
        Provider storage provider = _providerOrRevert(providerId);
        return ProviderView({
            owner: provider.owner,
            payout: provider.payout,
            modelCount: provider.modelCount
        });
    }

    /// @inheritdoc IProviderRegistry
    function modelCount() external view returns (uint256) {
        return _modelCount;
    }

    /// @inheritdoc IProviderRegistry
    function modelOf(uint32 modelId) external view returns (ModelView memory) {
        Model storage model = _modelOrRevert(modelId);
        return ModelView({
            providerId: model.providerId,
            localIndex: model.localIndex,
            paused: model.paused,
            epochCount: _priceEpochs[modelId].length
        });
    }

    /// @inheritdoc IProviderRegistry
    function priceEpochOf(uint32 modelId, uint256 epochIndex) external view returns (PriceEpoch memory) {
        _modelOrRevert(modelId);
        PriceEpoch[] storage epochs = _priceEpochs[modelId];
        if (epochIndex >= epochs.length) revert RegistryUnknownPriceEpoch(modelId, epochIndex);
        return epochs[epochIndex];
    }

    /// @inheritdoc IProviderRegistry
    function signerOf(address signer) external view returns (SignerView memory) {
        Signer storage state = _signers[signer];
        return SignerView({
            providerId: state.providerId,
            authorized: state.authorized,
            nextSequence: state.nextSequence,
            compromised: state.compromised
        });
    }

    /// @dev Marks `signer` compromised for good: no longer authorized, and never again.
    function _compromiseSigner(address signer) internal {
        Signer storage state = _signers[signer];
        if (state.compromised) return;
        bool wasAuthorized = state.authorized;
        state.authorized = false;
        state.compromised = true;
        if (wasAuthorized) emit SignerAuthorizationChanged(signer, state.providerId, false);
    }

    function _pushEpoch(uint32 modelId, uint256 effectiveFrom, ModelPrices calldata prices) private {
        _checkPrice(prices.input);
        _checkPrice(prices.cachedInput);
        _checkPrice(prices.output);
        PriceEpoch[] storage epochs = _priceEpochs[modelId];
        epochs.push(
            PriceEpoch({
                effectiveFrom: uint32(effectiveFrom),
                input: uint72(prices.input),
                cachedInput: uint72(prices.cachedInput),
                output: uint72(prices.output)
            })
        );
        emit PriceScheduled(
            modelId, epochs.length - 1, effectiveFrom, prices.input, prices.cachedInput, prices.output
        );
    }

    function _checkPrice(uint256 price) private pure {
        if (price > MAX_PRICE) revert RegistryPriceTooHigh(price, MAX_PRICE);
    }

    function _requireNonZeroPayout(address payout) private pure {
        if (payout == address(0)) revert RegistryZeroAddress();
    }

    function _checkProviderOwner(uint32 providerId) internal view {
        if (_providerOrRevert(providerId).owner != msg.sender) revert RegistryNotProviderOwner(providerId, msg.sender);
    }

    function _providerOrRevert(uint32 providerId) internal view returns (Provider storage provider) {
        provider = _providers[providerId];
        if (provider.owner == address(0)) revert RegistryUnknownProvider(providerId);
    }

    function _modelOrRevert(uint32 modelId) internal view returns (Model storage model) {
        model = _models[modelId];
        if (model.providerId == 0) revert RegistryUnknownModel(modelId);
    }
}
