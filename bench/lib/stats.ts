/** Percentiles of a sample, nearest-rank. */
export interface Stats {
  p50: number;
  p90: number;
  p99: number;
  /** p99.9: with fewer than 1,000 values this is the largest one. */
  p999: number;
  max: number;
  mean: number;
  n: number;
}

export function stats(values: Float64Array | readonly number[]): Stats {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: sorted[sorted.length - 1] ?? NaN, mean: sum / sorted.length, n: sorted.length };
}
