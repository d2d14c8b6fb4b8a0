/**
 * The calendar periods a budget counts spend over, in UTC: a day from 00:00, a week from Monday 00:00 (ISO 8601,
 * as finance calendars start it), a month from the 1st. Calendar periods rather than rolling windows, so "this
 * month" in a budget is the same month as on an invoice, and a reset is a time a person can be told.
 * Here (not in the gateway) because the store charges each record to its period inside the record's transaction.
 */
export const BUDGET_PERIODS = ["day", "week", "month"] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

const DAY = 86_400;

/** Unix seconds of the start of the period holding `at` (unix seconds). */
export function periodStart(period: BudgetPeriod, at: number): number {
  const dayStart = Math.floor(at / DAY) * DAY;
  if (period === "day") return dayStart;
  if (period === "week") {
    // getUTCDay: Sunday 0 … Saturday 6; days since Monday is (day + 6) % 7.
    const weekday = new Date(dayStart * 1000).getUTCDay();
    return dayStart - ((weekday + 6) % 7) * DAY;
  }
  const date = new Date(at * 1000);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1) / 1000;
}

/** Unix seconds of the start of the next period: when a budget's spend starts again from zero. */
export function periodEnd(period: BudgetPeriod, at: number): number {
  const start = periodStart(period, at);
  if (period === "day") return start + DAY;
  if (period === "week") return start + 7 * DAY;
  const date = new Date(start * 1000);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1) / 1000;
}
