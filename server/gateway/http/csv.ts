/** CSV as the exports write it: one place for how a cell is quoted, so every export opens the same in a spreadsheet. */

/** Quotes what could break the row, and defuses spreadsheet formulas (a leading = + - @ tab or CR). */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** A header and rows, each cell quoted, newline-terminated. */
export function csvDocument(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  return [columns.map(csvCell).join(","), ...rows.map((row) => row.map(csvCell).join(","))].join("\n") + "\n";
}
