/**
 * The filters `/v1/usage` takes: key, model, tag and a date range (days in the reader's time zone, the end
 * day included). Applied together with one button, so a half-typed tag does not fire a request per key press.
 */
import { useState, type FormEvent } from "react";
import type { GatewayApiKey, GatewayModel } from "../../../../client";
import { Field, SelectField } from "../../components/field";
import type { PageFilters } from "./usage-rows";

export interface FilterText {
  keyId: string;
  model: string;
  tag: string;
  /** `YYYY-MM-DD` or "". */
  fromDay: string;
  toDay: string;
}

export const NO_FILTERS: FilterText = { keyId: "", model: "", tag: "", fromDay: "", toDay: "" };

/** Midnight of a `YYYY-MM-DD` day in the reader's time zone, as unix seconds. */
function startOfDay(day: string): number {
  const [year, month, date] = day.split("-").map(Number);
  return Math.floor(new Date(year, month - 1, date).getTime() / 1000);
}

export function filtersOf(text: FilterText): { ok: true; filters: PageFilters } | { ok: false; error: string } {
  const filters: PageFilters = {};
  if (text.keyId) filters.keyId = text.keyId;
  if (text.model) filters.model = text.model;
  if (text.tag.trim()) filters.tag = text.tag.trim();
  if (text.fromDay) filters.from = startOfDay(text.fromDay);
  // The gateway's range is half-open (served before `to`): the day after the last day asked for.
  if (text.toDay) filters.to = startOfDay(text.toDay) + 86_400;
  if (filters.from !== undefined && filters.to !== undefined && filters.to <= filters.from) return { ok: false, error: "The last day is before the first day." };
  return { ok: true, filters };
}

export function UsageFilters({ keys, models, applied, onApply }: { keys?: GatewayApiKey[]; models?: GatewayModel[]; applied: FilterText; onApply(text: FilterText): void }) {
  const [text, setText] = useState<FilterText>(applied);
  const [error, setError] = useState<string>();
  const set = (name: keyof FilterText, value: string) => setText((previous) => ({ ...previous, [name]: value }));
  function submit(event: FormEvent) {
    event.preventDefault();
    const parsed = filtersOf(text);
    setError(parsed.ok ? undefined : parsed.error);
    if (parsed.ok) onApply(text);
  }
  return (
    <form onSubmit={submit} aria-label="Usage filters">
      <div className="filters">
        <SelectField
          label="Key"
          value={text.keyId}
          onChange={(value) => set("keyId", value)}
          options={[{ value: "", label: "All keys" }, ...(keys ?? []).map((key) => ({ value: key.id, label: key.label ? `${key.label} (${key.id})` : key.id }))]}
        />
        <SelectField label="Model" value={text.model} onChange={(value) => set("model", value)} options={[{ value: "", label: "All models" }, ...(models ?? []).map((model) => ({ value: model.id, label: model.id }))]} />
        <Field label="Tag" value={text.tag} onChange={(e) => set("tag", e.target.value)} placeholder="team:search" autoComplete="off" />
        <Field label="From day" type="date" value={text.fromDay} onChange={(e) => set("fromDay", e.target.value)} />
        <Field label="To day (included)" type="date" value={text.toDay} onChange={(e) => set("toDay", e.target.value)} error={error} />
      </div>
      <div className="row">
        <button type="submit">Apply filters</button>
        <button type="button" className="secondary" onClick={() => (setText(NO_FILTERS), setError(undefined), onApply(NO_FILTERS))}>
          Clear
        </button>
      </div>
    </form>
  );
}
