/** The gateway's CSV of the filtered usage, saved as a file named with the range it covers. */
import { getUsageCsv, type TollgateGatewayClient } from "../../../../client";
import { dayOf } from "./spend-by-day";
import type { PageFilters } from "./usage-rows";

/** The export's largest page: the whole filtered range up to the gateway's limit. */
export const CSV_LIMIT = 10_000;

/** The first and last day the rows hold (the CSV's served_at column), else the filters' days, else "all". */
export function csvFileName(csv: string, filters: PageFilters): string {
  const lines = csv.trim().split("\n");
  const column = lines[0]?.split(",").indexOf("served_at") ?? -1;
  const servedAt = lines
    .slice(1)
    .map((line) => Number(line.split(",")[column]))
    .filter((value) => Number.isInteger(value) && value > 0);
  const first = filters.from !== undefined ? dayOf(filters.from) : servedAt.length ? dayOf(Math.min(...servedAt)) : "start";
  const last = filters.to !== undefined ? dayOf(filters.to - 86_400) : servedAt.length ? dayOf(Math.max(...servedAt)) : "now";
  return `tollgate-usage_${first}_to_${last}.csv`;
}

export async function downloadUsageCsv(client: TollgateGatewayClient, session: string, filters: PageFilters): Promise<{ fileName: string; rows: number }> {
  const csv = await getUsageCsv(client, { session, ...filters, limit: CSV_LIMIT });
  const fileName = csvFileName(csv, filters);
  const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  // The click has started the download; the URL is not needed after this turn.
  setTimeout(() => URL.revokeObjectURL(url), 0);
  return { fileName, rows: Math.max(0, csv.trim().split("\n").length - 1) };
}
