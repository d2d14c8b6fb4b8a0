/**
 * Where the money went, for the filters the page shows: spend totalled by team or workflow tag, model, key or
 * run (`GET /v1/usage/summary`), each workflow's retry tail, first-try success and cost per completed run, what
 * routing saved, and the budgets with what their period has spent. Every figure is the gateway's, in base
 * units, printed exactly; shares are the gateway's four-decimal ratios shown as percentages.
 */
import { useState } from "react";
import { getUsageSummary, listBudgets, type UsageSummaryDimension } from "../../../../client";
import { useApp } from "../../app-state";
import { DataTable } from "../../components/data-table";
import { SelectField } from "../../components/field";
import { LoadError } from "../../components/load-error";
import { formatAmount, type TokenInfo } from "../../lib/amounts";
import { percent } from "../../lib/percent";
import { useLoad } from "../../lib/use-load";
import type { PageFilters } from "./usage-rows";

type Summary = Awaited<ReturnType<typeof getUsageSummary>>;
type Group = Summary["groups"][number];

const DIMENSIONS: { value: UsageSummaryDimension; label: string; field: keyof Group; none: string }[] = [
  { value: "tag", label: "Team or workflow tag", field: "tag", none: "(no tag)" },
  { value: "model", label: "Model", field: "model", none: "" },
  { value: "key", label: "API key", field: "key_id", none: "" },
  { value: "trace", label: "Run (trace id)", field: "trace_id", none: "(no trace)" },
];


const money = (value: string | null, token: TokenInfo) => (value === null ? "—" : formatAmount(BigInt(value), token));

export function WhereMoneyWent({ sessionToken, filters, keyLabel }: { sessionToken: string; filters: PageFilters; keyLabel(id: string): string }) {
  const { client, token } = useApp();
  const [dimension, setDimension] = useState<UsageSummaryDimension>("tag");
  const chosen = DIMENSIONS.find((candidate) => candidate.value === dimension)!;
  const summary = useLoad(() => getUsageSummary(client, { session: sessionToken, ...filters, groupBy: [dimension] }), [sessionToken, filters, dimension]);
  const budgets = useLoad(() => listBudgets(client, { session: sessionToken }), [sessionToken]);

  const name = (group: Group) => {
    const value = group[chosen.field] as string | null | undefined;
    if (value === null || value === undefined) return chosen.none;
    return dimension === "key" ? keyLabel(value) : value;
  };
  const groups = [...(summary.data?.groups ?? [])].sort((a, b) => (BigInt(b.cost) > BigInt(a.cost) ? 1 : BigInt(b.cost) < BigInt(a.cost) ? -1 : 0));

  return (
    <>
      <SelectField
        label="Total spend by"
        value={dimension}
        onChange={(value) => setDimension(value as UsageSummaryDimension)}
        options={DIMENSIONS.map((candidate) => ({ value: candidate.value, label: candidate.label }))}
      />
      {summary.error !== undefined && <LoadError error={summary.error} what="the usage summary" retry={summary.reload} />}
      {summary.loading && !summary.data && <p aria-busy="true">Totalling your spend…</p>}
      {summary.data && (
        <>
          <DataTable
            caption={`Spend by ${chosen.label.toLowerCase()}`}
            rows={groups}
            rowKey={(group) => `${name(group)}|${group[chosen.field] ?? ""}`}
            empty="No calls in this range."
            columns={[
              { header: chosen.label, cell: name },
              { header: "Calls", numeric: true, cell: (group) => group.calls.toLocaleString() },
              { header: "Input tokens", numeric: true, cell: (group) => group.input_tokens.toLocaleString() },
              { header: "Cached", numeric: true, cell: (group) => group.cached_input_tokens.toLocaleString() },
              { header: "Output tokens", numeric: true, cell: (group) => group.output_tokens.toLocaleString() },
              { header: "Cost", numeric: true, cell: (group) => formatAmount(BigInt(group.cost), token) },
            ]}
          />
          {summary.data.records_in_several_groups > 0 && (
            <p className="small">
              {summary.data.records_in_several_groups.toLocaleString()} call{summary.data.records_in_several_groups === 1 ? " is" : "s are"} counted under more than one tag (a key with
              several tags), so the rows add up to more than the total of {formatAmount(BigInt(summary.data.total.cost), token)}.
            </p>
          )}
          <DataTable
            caption="Workflows: retries and cost per completed run"
            rows={summary.data.workflows}
            rowKey={(workflow) => workflow.workflow}
            empty="No workflow yet: give a key a workflow:… tag and send x-tollgate-trace-id with each run's calls."
            columns={[
              { header: "Workflow", cell: (workflow) => workflow.workflow },
              { header: "Runs", numeric: true, cell: (workflow) => workflow.runs.toLocaleString() },
              { header: "Cost", numeric: true, cell: (workflow) => money(workflow.cost, token) },
              { header: "Spent on retries", numeric: true, cell: (workflow) => `${money(workflow.retry_cost, token)} (${percent(workflow.retry_cost_share)})` },
              { header: "First-try success", numeric: true, cell: (workflow) => percent(workflow.first_try_success_rate) },
              { header: "Cost per completed run", numeric: true, cell: (workflow) => money(workflow.cost_per_completed_run, token) },
            ]}
          />
          {summary.data.routing.routed_calls > 0 && (
            <p>
              Routing served {summary.data.routing.routed_calls.toLocaleString()} call{summary.data.routing.routed_calls === 1 ? "" : "s"} for {money(summary.data.routing.cost, token)}: the
              dearest model of each policy would have cost {money(summary.data.routing.dearest_cost, token)}, so it saved <strong>{money(summary.data.routing.saved, token)}</strong> (
              {percent(summary.data.routing.saved_share)}).
            </p>
          )}
        </>
      )}
      {budgets.error !== undefined && <LoadError error={budgets.error} what="your budgets" retry={budgets.reload} />}
      {budgets.data && (
        <DataTable
          caption="Budgets this period"
          rows={budgets.data}
          rowKey={(budget) => budget.id}
          empty="No budget: create one with `tollgate buyer budgets create`."
          columns={[
            { header: "Budget", cell: (budget) => `${budget.label || budget.id}: ${budget.scope} ${budget.target}, per ${budget.period}` },
            { header: "Spent", numeric: true, cell: (budget) => formatAmount(BigInt(budget.spent), token) },
            { header: "Limit", numeric: true, cell: (budget) => formatAmount(BigInt(budget.limit), token) },
            { header: "Resets", cell: (budget) => new Date(budget.resets_at_unix * 1000).toLocaleString() },
          ]}
        />
      )}
    </>
  );
}
