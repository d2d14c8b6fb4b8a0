/** What a count can fail with; the gateway maps TokenizerBusy and TokenizerInputTooLarge to HTTP statuses. */

/** One count exceeds `maxChars`. */
export class TokenizerInputTooLarge extends Error {
  constructor(
    readonly chars: number,
    readonly maxChars: number,
  ) {
    super(`text of ${chars} characters exceeds the tokenizer's limit of ${maxChars} characters`);
    this.name = "TokenizerInputTooLarge";
  }
}

/** A worker thread died (crash, out of memory, terminated) before finishing a job. */
export class TokenizerWorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerWorkerError";
  }
}

/** The job queue is full. */
export class TokenizerBusy extends Error {
  constructor(queued: number) {
    super(`tokenizer job queue is full (${queued} jobs waiting); retry later`);
    this.name = "TokenizerBusy";
  }
}

/** The tokenizer was closed before the job could run. */
export class TokenizerClosedError extends Error {
  constructor() {
    super("tokenizer is closed");
    this.name = "TokenizerClosedError";
  }
}
