/**
 * The errors actions throw, in viem's shape: a short message that says what is wrong, details, a hint of
 * what to do, and the cause. Contract reverts stay viem errors (their custom error is decoded by
 * `revertOf`, re-exported here, against every Tollgate ABI).
 */
export { revertOf, decodeRevertData, isChainUnreachable, type DecodedRevert } from "../server/chain/revert";

export class TollgateClientError extends Error {
  override name = "TollgateClientError";
  readonly shortMessage: string;
  readonly hint?: string;
  constructor(shortMessage: string, options: { hint?: string; details?: string; cause?: unknown } = {}) {
    super([shortMessage, options.details].filter(Boolean).join(": "), { cause: options.cause });
    this.shortMessage = shortMessage;
    this.hint = options.hint;
  }
}

/** An action that signs was given a client without a wallet. */
export class WalletRequiredError extends TollgateClientError {
  override name = "WalletRequiredError";
  constructor(action: string) {
    super(`${action} signs, but the Tollgate client has no wallet`, { hint: "create the client with a walletClient (a local account or a browser wallet)" });
  }
}

/** A transaction was mined but reverted (the chain changed between the simulation and the transaction). */
export class TransactionRevertedError extends TollgateClientError {
  override name = "TransactionRevertedError";
  constructor(
    readonly hash: `0x${string}`,
    description: string,
  ) {
    super(`transaction ${hash} (${description}) reverted`, { hint: "the chain changed between the check and the transaction; try again" });
  }
}

/** The gateway answered with OpenAI's error JSON, or could not be reached (status undefined). */
export class GatewayRequestError extends TollgateClientError {
  override name = "GatewayRequestError";
  constructor(
    shortMessage: string,
    options: { hint?: string; cause?: unknown; status?: number; code?: string } = {},
  ) {
    super(shortMessage, options);
    this.status = options.status;
    this.code = options.code;
  }
  readonly status?: number;
  readonly code?: string;
}
