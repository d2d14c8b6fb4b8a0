import { sha256 } from "./random";

/** Remembers which leading message runs were seen, per model, to report cached prompt tokens. */
export class PrefixCache {
  private readonly seen = new Map<string, true>();
  constructor(private readonly capacity = 50_000) {}

  /** Cached tokens for this request (longest seen run of all-but-the-last messages), then records its runs. */
  lookupAndStore(model: string, messages: readonly unknown[], perMessage: readonly number[]): number {
    let h = sha256(`model\u0000${model}`).toString("base64");
    let cached = 0;
    let run = 0;
    const keys: string[] = [];
    for (let k = 0; k < messages.length; k++) {
      h = sha256(`${h}\u0000${JSON.stringify(messages[k])}`).toString("base64");
      keys.push(h);
      run += perMessage[k];
      if (k < messages.length - 1 && this.seen.has(h)) cached = run;
    }
    for (const key of keys) {
      if (this.seen.has(key)) continue;
      if (this.seen.size >= this.capacity) this.seen.delete(this.seen.keys().next().value as string);
      this.seen.set(key, true);
    }
    return cached;
  }
}
