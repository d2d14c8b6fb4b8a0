/**
 * Whatever went wrong, as the page says it: a title, the detail (the decoded custom error with its named
 * arguments), and what to do. A rejection in the wallet is not a failure of ours and says so; a revert is
 * decoded against every Tollgate ABI before anything was signed (actions simulate first).
 */
import { BaseError, HttpRequestError, InsufficientFundsError, TimeoutError, UserRejectedRequestError } from "viem";
import { GatewayRequestError, revertOf, TollgateClientError, TransactionRevertedError } from "../../../client";
import { formatAmount, type TokenInfo } from "./amounts";
import { formatTime } from "./time";

export interface ExplainedError {
  title: string;
  detail?: string;
  hint?: string;
  /** The custom error's name, when a contract reverted with one. */
  revert?: string;
  /** The user said no in the wallet: nothing happened, and nothing needs fixing. */
  rejected?: boolean;
}

type Args = Record<string, unknown>;
type Hint = (args: Args, amount: (value: unknown) => string) => string;

/** What to do about the custom errors a buyer or provider can meet from the app. */
const REVERT_HINTS: Record<string, Hint> = {
  VaultZeroAmount: () => "Enter an amount above zero.",
  VaultInsufficientBalance: (a, amount) => `Your vault balance is ${amount(a.balance)} and this needs ${amount(a.needed)}. Deposit more or ask for less.`,
  VaultBalanceOverflow: () => "The deposit would pass the largest balance one account may hold. Deposit less.",
  VaultNoPendingWithdrawal: () => "Request a withdrawal first.",
  VaultWithdrawalNotReady: (a) => `The withdrawal unlocks at ${formatTime(Number(a.withdrawableAt))}. Execute it after that.`,
  VaultTransferShortfall: (a, amount) => `The token delivered ${amount(a.received)} of ${amount(a.expected)}: it takes a fee on transfers, which the vault does not accept.`,
  VaultNoEarnings: () => "There are no earnings to withdraw yet: they accrue as usage settles.",
  RegistryNotProviderOwner: (a) => `This wallet does not own provider ${a.providerId}. Connect the provider's owner wallet.`,
  RegistryPriceTooHigh: (a, amount) => `A price per million tokens may be at most ${amount(a.maxPrice)}.`,
  RegistryInvalidModelName: (a) => `A model name must be 1 to ${a.maxLength} bytes long.`,
  RegistryTooManyModels: (a) => `Provider ${a.providerId} already lists the most models one provider can (${a.maxModels}).`,
  RegistrySignerOfOtherProvider: (a) => `That gateway key belongs to provider ${a.providerId}. A key serves one provider for life: generate a new one.`,
  RegistrySignerUnchanged: (a) => `That key is already ${a.authorized ? "authorized" : "revoked"}: nothing to do.`,
  RegistrySignerCompromised: () => "Fraud by that key was proven on-chain, so it can never be authorized again. Generate a new gateway key.",
  RegistryPauseUnchanged: (a) => `The model is already ${a.paused ? "paused" : "active"}.`,
  RegistryUnknownProvider: (a) => `There is no provider ${a.providerId}. Pick one from the market.`,
  RegistryUnknownModel: (a) => `There is no model ${a.modelId}. Reload the page.`,
  RegistryZeroAddress: () => "An address must not be the zero address (0x000…000). Enter a real one.",
  BondZeroAmount: () => "Enter a bond amount above zero.",
  BondOverflow: () => "The bond would pass the largest amount it can hold. Post less.",
  BondNoPendingWithdrawal: () => "Request a bond withdrawal first.",
  BondWithdrawalNotReady: (a) => `The bond withdrawal unlocks at ${formatTime(Number(a.withdrawableAt))}. Withdraw it after that.`,
  CreditsUnknownPlan: (a) => `There is no credit plan ${a.planId}. Pick one from the list.`,
  CreditsInvalidPlan: () => "A plan needs a value per credit above zero and at least one model.",
  CreditsModelNotOfProvider: (a) => `Model ${a.modelId} is not this provider's: a plan may cover only its provider's models.`,
  CreditsPlanExpired: (a) => `Plan ${a.planId} expired at ${formatTime(Number(a.expiresAt))}. Pick a current plan.`,
  CreditsAmountOutOfRange: (a) => `Buy at most ${a.maxAmount} credits at once.`,
  CreditsPriceOutOfRange: () => "A plan's price and value per credit must each fit 96 bits.",
  SubscriptionsUnknownPlan: (a) => `There is no subscription plan ${a.planId}. Pick one from the market.`,
  SubscriptionsNotProviderOwner: (a) => `This wallet does not own provider ${a.providerId}. Connect the provider's owner wallet.`,
  SubscriptionsInvalidPeriod: (a) => `A plan's period must be between 1 second and ${Number(a.maxPeriod) / 86_400} days.`,
  SubscriptionsInvalidPlan: () => "A plan needs included usage above zero and at least one model.",
  SubscriptionsValueOutOfRange: () => "A plan's price and included usage must each fit 96 bits.",
  SubscriptionsModelNotOfProvider: (a) => `Model ${a.modelId} is not this provider's: a plan may cover only its provider's models.`,
  SubscriptionsAlreadySubscribed: (a) => `You already hold plan ${a.planId} with provider ${a.providerId}. Cancel it on the Funds page and subscribe after it ends.`,
  SubscriptionsNotSubscribed: (a) => `There is no live subscription with provider ${a.providerId}. Reload the page.`,
  SubscriptionsAlreadyCancelled: (a) => `The subscription is already cancelled; it ends at ${formatTime(Number(a.endsAt))}.`,
  SubscriptionsRenewalNotDue: (a) => `The subscription is paid until ${formatTime(Number(a.paidUntil))}. Renew after that.`,
  SubscriptionsInsufficientBalance: (a, amount) => `Your vault balance is ${amount(a.balance)}, less than the period price ${amount(a.price)}. Deposit more first.`,
  LimitInvalidPeriod: (a) => `The period must be between 1 second and ${a.maxPeriod} seconds.`,
  LimitOutOfRange: () => "The limit per period is too large.",
  EnforcedPause: () => "The operator has paused settlement and credit purchases. Deposits and withdrawals still work.",
  BondInsufficient: (a, amount) => `The bond available is ${amount(a.available)}, less than ${amount(a.requested)}.`,
  ERC20InsufficientAllowance: (_a, _amount) => "The vault may not spend that much of your tokens yet. Try again: the app approves first.",
  ERC20InsufficientBalance: (a, amount) => `Your wallet holds ${amount(a.balance)} of the token but this needs ${amount(a.needed)}. Fund the wallet first.`,
  ERC2612ExpiredSignature: () => "The permit expired before it was mined. Try again.",
  ERC2612InvalidSigner: () => "The permit was not signed by the depositing wallet. Try again from the same account.",
  ERC1155InsufficientBalance: (a) => `You hold ${a.balance} credits of plan ${a.tokenId} but tried to move ${a.needed}.`,
  ERC1155InvalidReceiver: () => "That address cannot receive credits (a contract without onERC1155Received, or the zero address).",
};

function isRejection(error: unknown): boolean {
  if (error instanceof BaseError && error.walk((e) => e instanceof UserRejectedRequestError)) return true;
  // Wallets that skip viem's mapping still carry EIP-1193's code.
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) if ((e as { code?: unknown }).code === 4001) return true;
  return false;
}

export function explainError(error: unknown, token: TokenInfo, rpcUrl?: string): ExplainedError {
  if (isRejection(error)) return { title: "You rejected the request in your wallet.", detail: "Nothing was signed or sent, and nothing changed.", rejected: true };
  if (error instanceof GatewayRequestError) {
    if (error.status === undefined) return { title: "Cannot reach the Tollgate gateway.", detail: error.shortMessage, hint: "Check that the gateway is running, then try again. Nothing was changed." };
    return { title: error.shortMessage, hint: error.hint };
  }
  if (error instanceof TransactionRevertedError) return { title: "The transaction was mined but reverted.", detail: error.shortMessage, hint: "The chain changed between the check and the transaction. Try again." };
  if (error instanceof TollgateClientError) return { title: error.shortMessage, hint: error.hint };
  if (error instanceof BaseError) {
    const revert = revertOf(error);
    if (revert && revert.name !== "unknown") {
      if (revert.name === "Error") return { title: `The contract refused: ${revert.args[0]}`, detail: "Nothing was sent." };
      const args: Args = {};
      Object.keys(revert.named).forEach((name, index) => (args[name] = revert.values[index]));
      const amount = (value: unknown) => (typeof value === "bigint" ? formatAmount(value, token) : String(value));
      const shown = Object.entries(revert.named).map(([name, value]) => `${name}: ${value}`).join(", ");
      return {
        title: `The contract would refuse this: ${revert.name}.`,
        detail: `${revert.name}(${shown}). Nothing was sent and no gas was spent.`,
        hint: REVERT_HINTS[revert.name]?.(args, amount),
        revert: revert.name,
      };
    }
    if (revert) return { title: "The contract would refuse this.", detail: revert.text, hint: "Is this the deployment the app was built for?" };
    if (error.walk((e) => e instanceof InsufficientFundsError)) return { title: "Your wallet cannot pay for gas.", hint: "Fund the account with the chain's native currency and try again." };
    const unreachable = error.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError);
    if (unreachable) return { title: "Cannot reach the chain.", detail: rpcUrl ? `The RPC at ${rpcUrl} did not answer.` : error.shortMessage, hint: "Check your connection and try again." };
    return { title: error.shortMessage, detail: error.details && !error.shortMessage.includes(error.details) ? error.details : undefined };
  }
  if (error instanceof Error) return { title: error.message };
  return { title: String(error) };
}
