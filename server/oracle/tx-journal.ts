/**
 * A write-ahead journal of the oracle's one in-flight transaction. Each signed attempt (the first send
 * and every fee bump, all with the same nonce) is written, fsynced, before it is broadcast, so an oracle
 * killed at any point finds on restart what it may have sent and keeps watching it, instead of sending
 * again with a new nonce or leaving a stuck transaction blocking its account.
 */
import fs from "node:fs";
import path from "node:path";
import type { Address, Hex } from "viem";

export interface TxAttempt {
  hash: Hex;
  raw: Hex;
  maxFeePerGas: string;
  maxPriorityFeePerGas: string;
  /** Wall-clock ms of the broadcast. */
  sentAt: number;
}

export interface InFlightTx {
  from: Address;
  nonce: number;
  to: Address;
  data: Hex;
  gas: string;
  /** What the transaction is for, for logs ("signer 0x… records 10..59"). */
  label: string;
  attempts: TxAttempt[];
}

export class TxJournal {
  constructor(readonly file: string) {}

  read(): InFlightTx | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    const entry = JSON.parse(text) as InFlightTx | null;
    return entry ?? undefined;
  }

  /** Atomic replace: a crash leaves either the old journal or the new one, never half of one. */
  write(entry: InFlightTx | undefined): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const temp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(temp, "w");
    try {
      fs.writeSync(fd, JSON.stringify(entry ?? null, null, 2));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, this.file);
  }

  clear(): void {
    this.write(undefined);
  }
}
