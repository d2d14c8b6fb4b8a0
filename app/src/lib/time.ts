/** Times on the page: chain timestamps (unix seconds) shown in the reader's locale, with how far away they are. */

export function formatTime(unixSeconds: number | bigint): string {
  return new Date(Number(unixSeconds) * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** "in 2 days 3 h", "5 min ago": relative to the chain's clock, which a test chain may run ahead of the wall clock. */
export function formatRelative(unixSeconds: number | bigint, nowSeconds: number | bigint): string {
  const delta = Number(unixSeconds) - Number(nowSeconds);
  const abs = Math.abs(delta);
  const parts: string[] = [];
  const days = Math.floor(abs / 86_400);
  const hours = Math.floor((abs % 86_400) / 3_600);
  const minutes = Math.floor((abs % 3_600) / 60);
  if (days) parts.push(`${days} d`);
  if (hours) parts.push(`${hours} h`);
  if (!days && minutes) parts.push(`${minutes} min`);
  if (parts.length === 0) return delta >= 0 ? "now" : "just now";
  return delta >= 0 ? `in ${parts.join(" ")}` : `${parts.join(" ")} ago`;
}

/** Seconds as a period: 86400 → "1 day". */
export function formatPeriod(seconds: number): string {
  const units: [number, string][] = [[604_800, "week"], [86_400, "day"], [3_600, "hour"], [60, "minute"], [1, "second"]];
  for (const [size, name] of units) if (seconds % size === 0 && seconds >= size) return `${seconds / size} ${name}${seconds / size === 1 ? "" : "s"}`;
  return `${seconds} seconds`;
}
