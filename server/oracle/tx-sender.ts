/**
 * Sends the oracle's transactions from its own gas key, one at a time, and sees each through to a
 * confirmed receipt whatever the chain does meanwhile:
 * - nonces come from the chain's pending count, and every signed attempt is journaled before broadcast
 *   (`TxJournal`), so a restart resumes watching what it may already have sent;
 * - a transaction not mined within `stuckAfterMs` is re-signed with the same nonce and fees raised by
 *   `feeBumpPercent` (replacement rules need at least +10%); whichever attempt mines wins;
 * - a transaction the node has forgotten (dropped, node restarted) is broadcast again;
 * - RPC errors while waiting are retried with backoff; nothing is given up while the journal holds it.
 * One transaction at a time keeps nonce handling simple and safe: a batch is one transaction, and one
 * batch per block per oracle is far above what one gateway produces (bench/README.md).
 */
import {
  keccak256,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  type Address,
  type Hex,
  type LocalAccount,
  type PublicClient,
  type TransactionReceipt,
} from "viem";
import type { Logger } from "pino";
import type { OracleSettings } from "./config";
import type { InFlightTx, TxAttempt, TxJournal } from "./tx-journal";
import type { OracleMetrics } from "./metrics";
import { describeRpcError, isNonceTooLow, isAlreadyKnown } from "./chain-errors";

export interface SendRequest {
  to: Address;
  data: Hex;
  gas: bigint;
  label: string;
}

export interface TxSenderOptions {
  client: PublicClient;
  account: LocalAccount;
  chainId: number;
  journal: TxJournal;
  settings: Pick<OracleSettings, "gas" | "confirmations" | "pollMs" | "retry">;
  logger: Logger;
  metrics: OracleMetrics;
  /** Called at named points so fault tests can kill the process there. */
  failpoint: (name: string) => void;
  /** True once the oracle is stopping: waits give up (the journal keeps the transaction for the next run). */
  stopping: () => boolean;
}

/** The oracle is stopping; the transaction stays journaled and the next run finishes it. */
export class SenderStoppedError extends Error {
  override name = "SenderStoppedError";
}

/** The nonce was used by a transaction this oracle did not journal: another process shares the key. */
export class NonceConsumedError extends Error {
  override name = "NonceConsumedError";
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class TxSender {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: TxSenderOptions) {}

  get address(): Address {
    return this.options.account.address;
  }

  /**
   * Finishes what a previous run left in flight: returns its receipt once confirmed, or undefined if the
   * journal was empty. Must run before the first `send`.
   */
  recover(): Promise<TransactionReceipt | undefined> {
    return this.serialized(async () => {
      const entry = this.options.journal.read();
      if (!entry) return undefined;
      if (entry.from.toLowerCase() !== this.address.toLowerCase()) {
        throw new Error(
          `the transaction journal ${this.options.journal.file} belongs to oracle key ${entry.from}, not ${this.address}: ` +
            `give each oracle key its own oracle.journalPath`,
        );
      }
      this.options.logger.warn({ nonce: entry.nonce, label: entry.label, attempts: entry.attempts.length }, "resuming a transaction sent before a restart");
      const receipt = await this.waitMined(entry);
      this.options.journal.clear();
      return receipt;
    });
  }

  /** Signs, journals, broadcasts and waits for `confirmations`. Resolves with the receipt, reverted or not. */
  send(request: SendRequest): Promise<TransactionReceipt> {
    return this.serialized(async () => {
      const { client } = this.options;
      const nonce = await this.withRetry("read the oracle key's nonce", () =>
        client.getTransactionCount({ address: this.address, blockTag: "pending" }),
      );
      const entry: InFlightTx = {
        from: this.address,
        nonce,
        to: request.to,
        data: request.data,
        gas: request.gas.toString(),
        label: request.label,
        attempts: [],
      };
      const fees = await this.withRetry("estimate fees", () => client.estimateFeesPerGas());
      await this.attempt(entry, fees.maxFeePerGas, fees.maxPriorityFeePerGas);
      this.options.failpoint("oracle.after-send");
      const receipt = await this.waitMined(entry);
      this.options.journal.clear();
      return receipt;
    });
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Signs one attempt, journals it, then broadcasts it. */
  private async attempt(entry: InFlightTx, maxFeePerGas: bigint, maxPriorityFeePerGas: bigint): Promise<void> {
    const raw = await this.options.account.signTransaction!({
      type: "eip1559",
      chainId: this.options.chainId,
      nonce: entry.nonce,
      to: entry.to,
      data: entry.data,
      gas: BigInt(entry.gas),
      value: 0n,
      maxFeePerGas,
      maxPriorityFeePerGas,
    });
    const attempt: TxAttempt = {
      hash: keccak256(raw),
      raw,
      maxFeePerGas: maxFeePerGas.toString(),
      maxPriorityFeePerGas: maxPriorityFeePerGas.toString(),
      sentAt: Date.now(),
    };
    entry.attempts.push(attempt);
    this.options.journal.write(entry);
    await this.broadcast(entry, attempt);
  }

  /** Broadcast errors are not fatal: the wait loop finds the receipt, or re-broadcasts what the node lacks. */
  private async broadcast(entry: InFlightTx, attempt: TxAttempt): Promise<void> {
    try {
      await this.options.client.request({ method: "eth_sendRawTransaction", params: [attempt.raw] });
      this.options.logger.debug({ hash: attempt.hash, nonce: entry.nonce }, "transaction broadcast");
    } catch (error) {
      if (isAlreadyKnown(error) || isNonceTooLow(error)) return;
      // Hardhat's automine answers a mined-but-reverted transaction with an error; the receipt tells.
      this.options.logger.warn({ hash: attempt.hash, nonce: entry.nonce, error: describeRpcError(error) }, "broadcast failed; will check and retry");
    }
  }

  private async receiptOf(hash: Hex): Promise<TransactionReceipt | undefined> {
    try {
      return await this.options.client.getTransactionReceipt({ hash });
    } catch (error) {
      if (error instanceof TransactionReceiptNotFoundError) return undefined;
      throw error;
    }
  }

  private async isKnown(hash: Hex): Promise<boolean> {
    try {
      await this.options.client.getTransaction({ hash });
      return true;
    } catch (error) {
      if (error instanceof TransactionNotFoundError) return false;
      throw error;
    }
  }

  private async waitMined(entry: InFlightTx): Promise<TransactionReceipt> {
    const { client, settings, logger, metrics } = this.options;
    let failures = 0;
    for (;;) {
      if (this.options.stopping()) throw new SenderStoppedError(`stopping with transaction nonce ${entry.nonce} in flight (${entry.label})`);
      try {
        for (const attempt of [...entry.attempts].reverse()) {
          const receipt = await this.receiptOf(attempt.hash);
          if (!receipt) continue;
          const latest = await client.getBlockNumber({ cacheTime: 0 });
          if (latest - receipt.blockNumber + 1n >= BigInt(settings.confirmations)) return receipt;
          break;
        }
        if (!(await this.anyMined(entry))) await this.nudge(entry);
        failures = 0;
      } catch (error) {
        if (error instanceof NonceConsumedError) throw error;
        failures++;
        metrics.rpcErrors.inc();
        logger.warn({ nonce: entry.nonce, error: describeRpcError(error), failures }, "RPC error while waiting for a transaction; retrying");
        await sleep(Math.min(settings.retry.maxMs, settings.retry.initialMs * 2 ** Math.min(failures - 1, 16)));
        continue;
      }
      await sleep(settings.pollMs);
    }
  }

  /** True when the nonce is used on-chain. If none of our attempts used it, someone else did. */
  private async anyMined(entry: InFlightTx): Promise<boolean> {
    const used = await this.options.client.getTransactionCount({ address: this.address, blockTag: "latest" });
    if (used <= entry.nonce) return false;
    for (const attempt of entry.attempts) if (await this.receiptOf(attempt.hash)) return true;
    this.options.journal.clear();
    throw new NonceConsumedError(
      `nonce ${entry.nonce} of oracle key ${this.address} was used by a transaction this oracle did not send ` +
        `(${entry.label} was not mined). Run one oracle per key; the batch will be rebuilt from the chain's sequence.`,
    );
  }

  /** Re-broadcasts a forgotten transaction, or replaces a stuck one with higher fees. */
  private async nudge(entry: InFlightTx): Promise<void> {
    const { settings, logger, metrics, client } = this.options;
    const last = entry.attempts[entry.attempts.length - 1];
    if (Date.now() - last.sentAt < settings.gas.stuckAfterMs) {
      if (!(await this.isKnown(last.hash))) await this.broadcast(entry, last);
      return;
    }
    if (entry.attempts.length - 1 >= settings.gas.maxFeeBumps) {
      if (!(await this.isKnown(last.hash))) await this.broadcast(entry, last);
      last.sentAt = Date.now();
      logger.error({ nonce: entry.nonce, label: entry.label, attempts: entry.attempts.length }, "transaction still not mined after the last fee bump; raise oracle.gas.maxFeeBumps or check the chain");
      return;
    }
    const bump = (value: string) => (BigInt(value) * BigInt(100 + settings.gas.feeBumpPercent) + 99n) / 100n;
    const market = await client.estimateFeesPerGas();
    const priority = [bump(last.maxPriorityFeePerGas), market.maxPriorityFeePerGas].reduce((a, b) => (a > b ? a : b));
    const maxFee = [bump(last.maxFeePerGas), market.maxFeePerGas, priority].reduce((a, b) => (a > b ? a : b));
    metrics.feeBumps.inc();
    logger.warn(
      { nonce: entry.nonce, label: entry.label, maxFeePerGas: maxFee.toString(), maxPriorityFeePerGas: priority.toString() },
      "transaction stuck; re-sending with higher fees",
    );
    await this.attempt(entry, maxFee, priority);
  }

  /** Retries a read with exponential backoff until it succeeds or the oracle stops. */
  private async withRetry<T>(what: string, read: () => Promise<T>): Promise<T> {
    const { settings, logger, metrics } = this.options;
    for (let failures = 1; ; failures++) {
      try {
        return await read();
      } catch (error) {
        if (this.options.stopping()) throw error;
        metrics.rpcErrors.inc();
        logger.warn({ error: describeRpcError(error), failures }, `cannot ${what}; retrying`);
        await sleep(Math.min(settings.retry.maxMs, settings.retry.initialMs * 2 ** Math.min(failures - 1, 16)));
      }
    }
  }
}
