/**
 * Progress of a long command on stderr: a bar redrawn in place when stderr is a terminal, plain lines at
 * each tenth (or every few seconds) when it is a file or a pipe, so CI logs stay readable. Notes (a retry, a
 * narrower range) are printed on their own line without losing the bar.
 */

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressLine {
  /** `done` of `total` in the phase `label`; `detail` follows the count. */
  update(label: string, done: bigint | number, total: bigint | number, detail?: string): void;
  note(text: string): void;
  /** Clears the bar; the next output starts on a clean line. */
  done(): void;
}

const BAR_WIDTH = 24;
const PLAIN_EVERY_MS = 2_000;

export function progressLine(stream: ProgressStream, now: () => number = Date.now): ProgressLine {
  const tty = Boolean(stream.isTTY);
  let drawn = false;
  let lastLabel = "";
  let lastTenth = -1;
  let lastPlainAt = 0;

  const clear = () => {
    if (drawn) stream.write("\r\x1b[2K");
    drawn = false;
  };

  return {
    update(label, done, total, detail = "") {
      const fraction = Number(total) > 0 ? Math.min(1, Number(done) / Number(total)) : 1;
      const percent = Math.floor(fraction * 100);
      const counts = `${Number(done).toLocaleString("en-US")}/${Number(total).toLocaleString("en-US")}`;
      const text = `${label} ${counts}${detail ? ` · ${detail}` : ""}`;
      if (tty) {
        const filled = Math.round(fraction * BAR_WIDTH);
        const line = `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${String(percent).padStart(3)}% ${text}`;
        const width = stream.columns ?? 120;
        stream.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
        drawn = true;
        return;
      }
      // A file or a pipe gets a line when a phase starts or ends, and at each tenth at most every few seconds.
      const tenth = Math.floor(fraction * 10);
      const edge = label !== lastLabel || (fraction === 1 && tenth !== lastTenth);
      if (edge || (tenth !== lastTenth && now() - lastPlainAt >= PLAIN_EVERY_MS)) {
        stream.write(`${percent}% ${text}\n`);
        lastLabel = label;
        lastTenth = tenth;
        lastPlainAt = now();
      }
    },
    note(text) {
      clear();
      stream.write(`${text}\n`);
    },
    done() {
      clear();
    },
  };
}
