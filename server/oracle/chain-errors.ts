/**
 * What a transaction broadcast answers (already known, nonce too low), and one-line messages for logs.
 * Reverts are decoded by `server/chain/revert.ts`, shared with the CLI.
 */
import { BaseError } from "viem";

/** One line for logs: viem's short message without the multi-line request dump. */
export function describeRpcError(error: unknown): string {
  if (error instanceof BaseError) return error.shortMessage;
  return error instanceof Error ? error.message : String(error);
}

const text = (error: unknown) => (error instanceof BaseError ? `${error.shortMessage} ${error.details}` : String(error)).toLowerCase();

export function isNonceTooLow(error: unknown): boolean {
  return /nonce too low|nonce has already been used/.test(text(error));
}

export function isAlreadyKnown(error: unknown): boolean {
  return /already known|known transaction|already imported/.test(text(error));
}
