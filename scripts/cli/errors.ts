/**
 * Turns whatever went wrong into one message and a hint of what to do. Contract reverts are decoded into
 * their custom error (name and named arguments) against every ABI the CLI talks to, because a call to
 * Tollgate can revert inside the payment token or the credits token and bubble that token's error up.
 */
import { BaseError, HttpRequestError, InsufficientFundsError, TimeoutError } from "viem";
import { GatewayRequestError, revertOf, TollgateClientError, TransactionRevertedError } from "../../client";
import { DeploymentFileError } from "../../server/chain/deployment";

/** An error the CLI raises itself: the message says what is wrong, the hint what to do about it. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/**
 * The client's hints say what to do in any program; the CLI's name the command, flag or variable to use.
 * Gateway error codes not named here keep the client's hint (GATEWAY_HINTS in client/internal/gateway-request.ts).
 */
const GATEWAY_COMMAND_HINTS: Record<string, string> = {
  signature_expired: "the gateway's clock and this machine's differ by more than it allows; sync the system clock and run the command again",
  invalid_signature:
    "the signature binds the chain id and Tollgate address of --deployment; check it is the deployment the gateway serves",
  nonce_reused: "run the command again; each run signs with a fresh nonce",
  model_not_found: "`curl <gateway>/v1/models` lists the models on sale; name them as the gateway does",
  key_not_found: "`tollgate buyer keys list` shows your keys and which are revoked",
  invalid_api_key: "TOLLGATE_API_KEY is not a live key of this gateway; create one with `tollgate buyer keys create`",
  invalid_value: "fix the value named above and run the command again",
};

export function gatewayHint(error: GatewayRequestError): string | undefined {
  if (error.code && GATEWAY_COMMAND_HINTS[error.code]) return GATEWAY_COMMAND_HINTS[error.code];
  // No HTTP status: the gateway never answered (the fetch failed, its cause kept), or answered with no JSON.
  if (error.status === undefined) {
    return error.cause !== undefined
      ? `${error.hint} Start it with \`tollgate operator start-gateway\`, or point --gateway / TOLLGATE_GATEWAY_URL at yours`
      : "is --gateway a Tollgate gateway?";
  }
  return error.hint;
}

export interface ErrorReport {
  message: string;
  hint?: string;
  /** The custom error's name, when a contract reverted with one. */
  error?: string;
  /** Its arguments by name, as strings (bigints in base units). */
  args?: Record<string, string>;
}

export interface ErrorContext {
  rpcUrl: string;
  /** Formats base units when the token is known; hints show amounts with decimals and symbol then. */
  formatAmount?: (value: bigint) => string;
}

type Args = Record<string, unknown>;
type Hint = (args: Args, amount: (value: unknown) => string) => string;

const when = (seconds: unknown) => {
  const date = new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
  return `${date} (unix ${String(seconds)})`;
};

/** What to do about each custom error; the message already shows its name and arguments. */
const HINTS: Record<string, Hint> = {
  VaultZeroAmount: () => "give an amount above zero",
  VaultZeroAddress: () => "give a non-zero address",
  VaultInsufficientBalance: (a, amount) =>
    `${a.buyer} has ${amount(a.balance)} in the vault but this needs ${amount(a.needed)}; deposit more with \`tollgate buyer deposit <amount>\` or ask for less`,
  VaultBalanceOverflow: () => "the deposit would exceed the largest balance one account may hold (MAX_ACCOUNT_BALANCE); deposit less",
  VaultNoPendingWithdrawal: () => "request a withdrawal first: `tollgate buyer withdraw request <amount>`",
  VaultWithdrawalNotReady: (a) =>
    `the withdrawal unlocks at ${when(a.withdrawableAt)}; chain time is ${when(a.nowTime)}. Run \`tollgate buyer withdraw execute\` again after that`,
  VaultTransferShortfall: () => "the payment token delivered less than it was asked to (a fee-on-transfer token?)",
  VaultNoEarnings: (a) => `provider ${a.providerId} has no earnings to withdraw yet; they accrue as usage settles`,
  VaultNoProtocolFees: () => "there are no protocol fees to collect yet",
  VaultFeeTooHigh: (a) => `the protocol fee may be at most ${a.maxFeeBps} basis points`,
  VaultWithdrawalDelayTooLong: (a) => `the withdrawal delay may be at most ${a.maxDelay} seconds`,
  RegistryUnknownProvider: (a) => `no provider has id ${a.providerId}; \`tollgate operator status\` shows how many exist`,
  RegistryUnknownModel: (a) => `no model has id ${a.modelId}; \`tollgate provider show <providerId>\` lists a provider's models`,
  RegistryNotProviderOwner: (a) =>
    `${a.caller} does not own provider ${a.providerId}; sign with the owner's key (TOLLGATE_PRIVATE_KEY or TOLLGATE_KEYSTORE)`,
  RegistryPriceTooHigh: (a, amount) => `a price per million tokens may be at most ${amount(a.maxPrice)}`,
  RegistryInvalidModelName: (a) => `a model name must be 1 to ${a.maxLength} bytes long`,
  RegistryTooManyModels: (a) => `provider ${a.providerId} already lists ${a.maxModels} models, the most one provider can`,
  RegistrySignerOfOtherProvider: (a) =>
    `a gateway key serves one provider for life and ${a.signer} belongs to provider ${a.providerId}; generate a new key for this provider`,
  RegistrySignerUnchanged: (a) => `${a.signer} is already ${a.authorized ? "authorized" : "revoked"} for provider ${a.providerId}; nothing to do`,
  RegistryUnknownPriceEpoch: (a) => `model ${a.modelId} has no price epoch ${a.epochIndex}`,
  RegistryZeroAddress: () => "give a non-zero address",
  RegistryPauseUnchanged: (a) => `model ${a.modelId} is already ${a.paused ? "paused" : "active"}`,
  RegistrySignerCompromised: (a) =>
    `fraud by ${a.signer} was proven on-chain, so it can never be authorized again; generate a new gateway key and authorize that one`,
  SettlementSignerCompromised: (a) => `fraud by ${a.signer} was proven on-chain: its batches are refused for good; retire that gateway`,
  BondZeroAmount: () => "give a bond amount above zero",
  BondInsufficient: (a, amount) =>
    `provider ${a.providerId} has ${amount(a.available)} of bond available, less than ${amount(a.requested)}; \`tollgate provider bond show ${a.providerId}\` shows it`,
  BondOverflow: (a, amount) => `provider ${a.providerId}'s bond of ${amount(a.bond)} would pass the largest bond one provider may hold (MAX_BOND); post less`,
  BondNoPendingWithdrawal: (a) => `provider ${a.providerId} has no bond withdrawal pending; request one with \`tollgate provider bond request-withdrawal\``,
  BondWithdrawalNotReady: (a) =>
    `the bond unlocks at ${when(a.withdrawableAt)}; chain time is ${when(a.nowTime)}. Run \`tollgate provider bond withdraw\` again after that`,
  DisputeUnknownSigner: (a) =>
    `the receipt's signature recovers to ${a.signer}, a key no provider ever authorized: the receipt is forged, or signed for another chain or contract`,
  DisputeUnknownBatch: (a) => `no batch of ${a.signer} settled from sequence ${a.firstSequence} matches the one given; take the batch from its settleBatch transaction or BatchDataPublished event`,
  DisputeSequenceNotInBatch: (a) => `sequence ${a.sequence} is not among the ${a.recordCount} records from ${a.firstSequence}; give the batch that holds it`,
  DisputeSequenceMismatch: (a) => `the two receipts carry sequences ${a.first} and ${a.second}; a proof compares receipts for one sequence`,
  DisputeSignerMismatch: (a) => `the receipts were signed by ${a.first} and ${a.second}; equivocation needs two receipts of one key`,
  DisputeWindowClosed: (a) => `the dispute window closed at ${when(a.closedAt)}; chain time is ${when(a.nowTime)}. Disputes must come within DISPUTE_WINDOW (14 days) of settlement`,
  DisputeAlreadyProven: (a) => `fraud at ${a.signer}'s sequence ${a.sequence} was already proven and paid; nothing more to claim`,
  DisputeNoDiscrepancy: (a) => `what ${a.signer} settled or signed for sequence ${a.sequence} agrees with the receipt: the gateway was honest there`,
  DisputeInvalidMerkleProof: () => "the settled receipt is not under the batch's content root by this proof; rebuild the proof from the batch's leaves",
  DisputeProofTooLong: (a) => `a Merkle proof has at most ${a.maxLength} hashes`,
  DisputeNoAward: (a) => `${a.beneficiary} has no unclaimed dispute award; \`tollgate buyer balance\` shows awards and when they can be claimed`,
  DisputeAwardNotReady: (a) =>
    `${a.beneficiary}'s dispute awards can be claimed from ${when(a.claimableAt)}; chain time is ${when(a.nowTime)}. ` +
    "Awards wait BOND_WITHDRAWAL_DELAY (15 days) after the latest one so a provider cannot take its bond out faster by proving its own fraud; run `tollgate buyer claim-awards` again after that",
  CreditsUnknownPlan: (a) => `no credit plan has id ${a.planId}; \`tollgate provider show <providerId>\` lists a provider's plans`,
  CreditsInvalidPlan: () => "a plan needs a value per credit above zero and at least one model (--models 1,2)",
  CreditsModelNotOfProvider: (a) => `model ${a.modelId} is not provider ${a.providerId}'s; a plan may cover only its provider's models`,
  CreditsPlanExpired: (a) => `plan ${a.planId} expired at ${when(a.expiresAt)}; pick a current plan`,
  CreditsAmountOutOfRange: (a) => `buy at most ${a.maxAmount} credits in one purchase`,
  CreditsPriceOutOfRange: () => "a plan's price and value per credit must each fit 96 bits",
  SubscriptionsUnknownPlan: (a) => `no subscription plan has id ${a.planId}; \`tollgate provider subscription-plan list <providerId>\` lists a provider's plans`,
  SubscriptionsNotProviderOwner: (a) => `${a.caller} does not own provider ${a.providerId}; sign with the owner's key (TOLLGATE_PRIVATE_KEY or TOLLGATE_KEYSTORE)`,
  SubscriptionsInvalidPeriod: (a) => `a plan's period must be between 1 second and ${a.maxPeriod} seconds (366 days)`,
  SubscriptionsInvalidPlan: () => "a plan needs an included usage value above zero and at least one model (--included, --models 1,2)",
  SubscriptionsValueOutOfRange: () => "a plan's price and included value must each fit 96 bits",
  SubscriptionsModelNotOfProvider: (a) => `model ${a.modelId} is not provider ${a.providerId}'s; a plan may cover only its provider's models`,
  SubscriptionsAlreadySubscribed: (a) => `${a.buyer} already holds plan ${a.planId} with provider ${a.providerId}; cancel it (\`tollgate buyer unsubscribe\`) and subscribe after it ends`,
  SubscriptionsNotSubscribed: (a) => `${a.buyer} has no live subscription with provider ${a.providerId}; \`tollgate buyer subscription\` shows its subscriptions`,
  SubscriptionsAlreadyCancelled: (a) => `the subscription is already cancelled; it ends at ${when(a.endsAt)}`,
  SubscriptionsRenewalNotDue: (a) => `the subscription is paid until ${when(a.paidUntil)}; chain time is ${when(a.nowTime)}. Renew after that`,
  SubscriptionsInsufficientBalance: (a, amount) =>
    `${a.buyer} has ${amount(a.balance)} in the vault, less than the period price ${amount(a.price)}; deposit more with \`tollgate buyer deposit <amount>\``,
  LimitInvalidPeriod: (a) => `the period must be between 1 second and ${a.maxPeriod} seconds`,
  LimitOutOfRange: () => "the limit per period must fit 96 bits",
  EnforcedPause: () => "the operator paused settlement and credit purchases; deposits and withdrawals still work",
  ExpectedPause: () => "the contract is not paused",
  OwnableUnauthorizedAccount: (a) => `${a.account} is not the contract owner; sign with the owner's key`,
  ERC20InsufficientAllowance: (a, amount) =>
    `${a.spender} may spend only ${amount(a.allowance)} of your tokens but needs ${amount(a.needed)}; approve more (deposit and buy-credits approve automatically when run again)`,
  ERC20InsufficientBalance: (a, amount) => `${a.sender} holds ${amount(a.balance)} of the token but this needs ${amount(a.needed)}; fund the wallet first`,
  ERC20InvalidReceiver: (a) => `${a.receiver} cannot receive the token (the zero address?)`,
  ERC2612ExpiredSignature: () => "the permit expired before it was mined; run the command again",
  ERC2612InvalidSigner: () => "the permit was not signed by the depositing wallet; run the command again with the same key",
  ERC1155InsufficientBalance: (a) => `${a.sender} holds ${a.balance} credits of plan ${a.tokenId} but tried to move ${a.needed}`,
  ERC1155InvalidReceiver: (a) => `${a.receiver} cannot receive ERC-1155 credits (a contract without onERC1155Received, or the zero address)`,
  ERC1155MissingApprovalForAll: (a) => `${a.operator} is not approved to move ${a.owner}'s credits`,
  SafeERC20FailedOperation: (a) => `the token ${a.token} refused the transfer`,
};

function describeRevert(error: unknown, ctx: ErrorContext): ErrorReport | undefined {
  const revert = revertOf(error);
  if (!revert) return undefined;
  if (revert.name === "unknown") {
    return revert.args.length > 0
      ? { message: `the contract reverted with an ${revert.text}`, hint: "is the deployment file for this version of the contracts?" }
      : { message: "the contract reverted without a reason", hint: "is the address in the deployment file a Tollgate contract on this chain?" };
  }
  if (revert.name === "Error") return { message: `the contract reverted: ${revert.args[0]}` };
  const rawArgs: Args = {};
  Object.keys(revert.named).forEach((name, index) => (rawArgs[name] = revert.values[index]));
  const amount = (value: unknown) => (typeof value === "bigint" && ctx.formatAmount ? ctx.formatAmount(value) : String(value));
  const shown = Object.entries(revert.named).map(([name, value]) => `${name}: ${value}`).join(", ");
  return {
    message: `the contract reverted with ${revert.name}(${shown})`,
    hint: HINTS[revert.name]?.(rawArgs, amount),
    error: revert.name,
    args: revert.named,
  };
}

export function describeError(error: unknown, ctx: ErrorContext): ErrorReport {
  if (error instanceof CliError) return { message: error.message, hint: error.hint };
  if (error instanceof GatewayRequestError) return { message: error.message, hint: gatewayHint(error) };
  if (error instanceof TransactionRevertedError) {
    return { message: error.message, hint: "the chain changed between the check and the transaction; run the command again" };
  }
  // The client's other errors (an action given no wallet).
  if (error instanceof TollgateClientError) return { message: error.message, hint: error.hint };
  if (error instanceof DeploymentFileError) return { message: error.message };
  if (error instanceof BaseError) {
    const revert = describeRevert(error, ctx);
    if (revert) return revert;
    const unreachable = error.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError);
    if (unreachable) {
      // An HTTP status means something answered, just not as a node would (a wrong path, a missing API key).
      const status = unreachable instanceof HttpRequestError ? unreachable.status : undefined;
      return {
        message: status ? `the RPC at ${ctx.rpcUrl} answered HTTP ${status}` : `cannot reach the chain at ${ctx.rpcUrl}`,
        hint: status
          ? "check the URL (and any API key in it) given with --rpc / TOLLGATE_RPC_URL"
          : `is the chain running at ${ctx.rpcUrl}? Start one with \`npx hardhat node\`, or point --rpc / TOLLGATE_RPC_URL at yours`,
      };
    }
    if (error.walk((e) => e instanceof InsufficientFundsError)) {
      return { message: "the sending account cannot pay for gas", hint: "fund the account with the chain's native currency (ETH) and try again" };
    }
    // metaMessages would list the whole request (calldata, gas); the details say what the node objected to.
    const details = error.details && !error.shortMessage.includes(error.details) ? `: ${error.details}` : "";
    return { message: `${error.shortMessage}${details}` };
  }
  if (error instanceof Error) return { message: error.message };
  return { message: String(error) };
}
