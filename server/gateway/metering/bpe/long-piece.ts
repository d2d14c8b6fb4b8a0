/**
 * Byte-pair merging of one long piece in O(n log n). gpt-tokenizer's own merge (like tiktoken's)
 * scans all pairs per merge, O(n^2): a 50k-letter run without spaces takes ~3 s there, 1M letters
 * ~20 min by extrapolation; this one takes ~2 s for 1M on a worker. Longer pieces are NOT split into
 * fixed-size chunks instead: measured against tiktoken on 2,000-char runs, chunking over-counts (up
 * to +26 for whitespace runs in 64-char chunks) but also UNDER-counts (random lowercase letters:
 * down to -4 in 128-char chunks, -1 in 512-char chunks), because a merge across the cut can save a
 * token; a reservation must never under-count. Memory ~21 bytes per UTF-8 byte (transient typed arrays).
 */
import type { BpeCore } from "./gpt-tokenizer-core";

const NO_RANK = 0x7fffffff;

function rankOfSpan(core: BpeCore, bytes: Uint8Array, start: number, end: number): number {
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (bytes[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  const rank = ascii
    ? core.getBpeRankFromString(String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]))
    : core.getBpeRankFromBytes(bytes.subarray(start, end));
  return rank === undefined ? NO_RANK : rank;
}

/**
 * Number of tokens byte-pair merging yields for one piece, in O(n log n).
 *
 * Same rule as tiktoken's `_byte_pair_merge` and gpt-tokenizer's `bytePairMerge` (which scan
 * all pairs per merge, O(n^2)): repeatedly merge the adjacent pair whose concatenation has the
 * lowest rank, the leftmost one on ties, until no adjacent pair is a token. Parts are a linked
 * list over byte offsets; the candidate pairs sit in a binary heap ordered by (rank, offset),
 * indexed so a pair's entry is updated in place when a neighbouring merge changes it.
 */
export function countLongPiece(core: BpeCore, bytes: Uint8Array): number {
  const n = bytes.length;
  if (n < 2) return n;
  const next = new Int32Array(n); // offset of the following part (n: none)
  const prev = new Int32Array(n); // offset of the preceding part (-1: none)
  const rank = new Int32Array(n); // rank of (this part + following part), NO_RANK if not a token
  const heap = new Int32Array(n); // part offsets with rank < NO_RANK, min-heap on (rank, offset)
  const slot = new Int32Array(n).fill(-1); // heap index of each part offset, -1 if absent
  let size = 0;

  const less = (a: number, b: number): boolean => rank[a] < rank[b] || (rank[a] === rank[b] && a < b);
  const place = (i: number, part: number): void => {
    heap[i] = part;
    slot[part] = i;
  };
  const siftUp = (i: number): number => {
    const part = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(part, heap[parent])) break;
      place(i, heap[parent]);
      i = parent;
    }
    place(i, part);
    return i;
  };
  const siftDown = (i: number): void => {
    const part = heap[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && less(heap[child + 1], heap[child])) child++;
      if (!less(heap[child], part)) break;
      place(i, heap[child]);
      i = child;
    }
    place(i, part);
  };
  const remove = (part: number): void => {
    const i = slot[part];
    if (i < 0) return;
    slot[part] = -1;
    const last = heap[--size];
    if (i === size) return;
    place(i, last);
    siftDown(siftUp(i));
  };
  /** Re-position `part` after rank[part] changed. */
  const update = (part: number): void => {
    if (rank[part] === NO_RANK) return remove(part);
    let i = slot[part];
    if (i < 0) {
      i = size++;
      place(i, part);
    }
    siftDown(siftUp(i));
  };

  for (let i = 0; i < n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
    rank[i] = i + 2 <= n ? rankOfSpan(core, bytes, i, i + 2) : NO_RANK;
    if (rank[i] !== NO_RANK) place(size++, i);
  }
  for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i);

  let parts = n;
  while (size > 0) {
    const left = heap[0];
    const right = next[left];
    const after = next[right];
    remove(right); // `right` disappears into `left`
    next[left] = after;
    if (after < n) prev[after] = left;
    parts--;
    rank[left] = after < n ? rankOfSpan(core, bytes, left, next[after]) : NO_RANK;
    update(left);
    const before = prev[left];
    if (before >= 0) {
      rank[before] = rankOfSpan(core, bytes, before, after);
      update(before);
    }
  }
  return parts;
}
