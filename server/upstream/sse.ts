/**
 * The `data:` payloads of a server-sent event stream (WHATWG `text/event-stream`), which is all an
 * OpenAI-compatible stream carries. The parsing is eventsource-parser's: line endings (`\n`,
 * `\r\n`, a lone `\r`, a `\r\n` split across chunks), multi-line `data:`, comments and the other
 * fields. This class adds what the adapter needs on top of it:
 *
 * - bytes in: chunks may be split anywhere, including inside a UTF-8 sequence (decoded in stream mode);
 * - a leading byte-order mark is dropped, whether it arrives as bytes or as text;
 * - a limit: an event (or an unterminated line) longer than `maxEventChars` throws `SseLimitError`,
 *   so a hostile upstream cannot make the gateway buffer without bound;
 * - one deliberate leniency: `end()` dispatches an event left pending when the stream closes without
 *   its final blank line (the standard would discard it). The stream ended cleanly, so the server meant it.
 */
import { createParser, type EventSourceParser } from "eventsource-parser";

/** Ends a pending line and then a pending event, whatever line ending the stream used (a trailing `\r` included). */
const END_OF_STREAM = "\n\n";

export class SseParser {
  // ignoreBOM keeps a BOM in the text so push() and pushText() drop it in one place.
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private readonly parser: EventSourceParser;
  /** Where the parser's callbacks put payloads during one feed. */
  private sink: string[] = [];
  private overLimit = false;
  private started = false;

  /** @param maxEventChars the most characters one event (or one line) may hold; more throws `SseLimitError`. */
  constructor(private readonly maxEventChars = 16 * 1024 * 1024) {
    this.parser = createParser({
      // Bounds what is buffered between feeds: an unterminated line plus the event's data so far.
      maxBufferSize: maxEventChars,
      onEvent: (event) => {
        // An event that arrives whole in one chunk is never buffered, so the parser's limit misses it.
        if (event.data.length > this.maxEventChars) this.overLimit = true;
        else this.sink.push(event.data);
      },
      onError: (error) => {
        if (error.type === "max-buffer-size-exceeded") this.overLimit = true;
        // Unknown fields and malformed `retry` values carry nothing we forward.
      },
    });
  }

  /** Feeds raw bytes; appends the payloads of the events they complete to `out` and returns `out`. */
  push(bytes: Uint8Array, out: string[] = []): string[] {
    return this.pushText(this.decoder.decode(bytes, { stream: true }), out);
  }

  /** Feeds already decoded text (a leading BOM is dropped). */
  pushText(text: string, out: string[] = []): string[] {
    if (text.length === 0) return out;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return this.feed(text, out);
  }

  /** The stream closed: flushes a trailing unterminated line and a pending event (see the file comment). */
  end(out: string[] = []): string[] {
    const rest = this.decoder.decode();
    if (rest.length > 0) this.pushText(rest, out);
    return this.feed(END_OF_STREAM, out);
  }

  private feed(text: string, out: string[]): string[] {
    this.sink = out;
    try {
      this.parser.feed(text);
    } finally {
      this.sink = [];
    }
    if (this.overLimit) throw new SseLimitError(this.maxEventChars);
    return out;
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
