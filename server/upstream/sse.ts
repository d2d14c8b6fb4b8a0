/**
 * An incremental parser for server-sent events (the WHATWG `text/event-stream` format) that keeps
 * only what an OpenAI-compatible stream carries: the `data:` payload of each event.
 *
 * - Lines end with `\n`, `\r\n` or a lone `\r`, and a `\r\n` split across two chunks counts once.
 * - Chunks may be split anywhere, including inside a UTF-8 sequence (bytes are decoded in stream mode).
 * - Several `data:` lines of one event are joined with `\n`; one space after the colon is dropped.
 * - Comments (`:` lines) and the other fields (`event`, `id`, `retry`, unknown ones) are ignored.
 * - An event is dispatched at the blank line that ends it; an event with no `data:` line is not.
 * - A leading byte-order mark is dropped.
 *
 * One deliberate leniency: `end()` dispatches an event left pending when the stream closes without its
 * final blank line (the standard would discard it). The stream ended cleanly, so the server meant it.
 */
export class SseParser {
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  /** An unterminated line carried over from the previous chunk. */
  private pending = "";
  /** The previous chunk ended with `\r`: a `\n` opening the next one belongs to the same line break. */
  private lastWasCR = false;
  /** The data lines of the event being read, or null before its first `data:` line. */
  private data: string | null = null;
  private started = false;
  private bufferedChars = 0;

  /** @param maxEventChars the most characters one event (or one line) may hold; more throws `SseLimitError`. */
  constructor(private readonly maxEventChars = 16 * 1024 * 1024) {}

  /** Feeds raw bytes; appends the payloads of the events they complete to `out` and returns `out`. */
  push(bytes: Uint8Array, out: string[] = []): string[] {
    return this.pushText(this.decoder.decode(bytes, { stream: true }), out);
  }

  /** Feeds already decoded text (a leading BOM is dropped). */
  pushText(text: string, out: string[] = []): string[] {
    if (text.length === 0) return out; // (an empty piece must not reset the pending-CR state)
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let start = 0;
    const n = text.length;
    if (this.lastWasCR) {
      this.lastWasCR = false;
      if (n > 0 && text.charCodeAt(0) === 10) start = 1;
    }
    let i = start;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 10 || c === 13) {
        let line = text.slice(start, i);
        if (this.pending.length > 0) {
          line = this.pending + line;
          this.pending = "";
        }
        this.line(line, out);
        if (c === 13) {
          if (i + 1 < n) {
            if (text.charCodeAt(i + 1) === 10) i++;
          } else {
            this.lastWasCR = true;
          }
        }
        start = i + 1;
      }
      i++;
    }
    if (start < n) {
      this.pending += text.slice(start);
      if (this.pending.length + this.bufferedChars > this.maxEventChars) {
        throw new SseLimitError(this.maxEventChars);
      }
    }
    return out;
  }

  /** The stream closed: flushes a trailing unterminated line and a pending event (see the class comment). */
  end(out: string[] = []): string[] {
    const rest = this.decoder.decode();
    if (rest.length > 0) this.pushText(rest, out);
    if (this.pending.length > 0) {
      const line = this.pending;
      this.pending = "";
      this.line(line, out);
    }
    this.line("", out);
    return out;
  }

  private line(line: string, out: string[]): void {
    if (line.length === 0) {
      if (this.data !== null) {
        out.push(this.data);
        this.data = null;
        this.bufferedChars = 0;
      }
      return;
    }
    // Fast path for the usual `data: ...` line.
    if (line.startsWith("data:")) {
      this.appendData(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' comment */) return;
    const colon = line.indexOf(":");
    if (colon === -1) {
      if (line === "data") this.appendData("");
      return;
    }
    // Any other field (event, id, retry, unknown) carries nothing we forward.
  }

  private appendData(value: string): void {
    this.data = this.data === null ? value : this.data + "\n" + value;
    this.bufferedChars = this.data.length;
    if (this.bufferedChars > this.maxEventChars) throw new SseLimitError(this.maxEventChars);
  }
}

export class SseLimitError extends Error {
  override name = "SseLimitError";
  constructor(limit: number) {
    super(`server-sent event longer than ${limit} characters`);
  }
}

/** Parses a whole event stream at once (tests, small bodies). */
export function parseSse(text: string): string[] {
  const parser = new SseParser();
  const out = parser.pushText(text);
  return parser.end(out);
}
