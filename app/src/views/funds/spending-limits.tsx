/**
 * Spending limits per provider: what each may charge per period, spent in the current window and when it
 * resets (by the chain's clock); set one (0 is a real limit: that provider may charge nothing) or clear it.
 * Usage beyond a limit is recorded as shortfall when it settles, not charged.
 */
import { useState, type FormEvent } from "react";
import { clearSpendingLimit, setSpendingLimit, type SpendingLimitHolding } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { DataTable } from "../../components/data-table";
import { Field, SelectField } from "../../components/field";
import { formatAmount, parseAmount, parseWhole } from "../../lib/amounts";
import type { Catalog } from "../../lib/catalog";
import { formatPeriod, formatRelative, formatTime } from "../../lib/time";
import { useAction } from "../../lib/use-transaction";
import { limitWindowAt } from "./limit-window";
import { shownError } from "./validate";

/** The contract's bound (SpendingLimits.MAX_LIMIT_PERIOD, 366 days), checked here so the wallet is not asked for a sure revert. */
const MAX_PERIOD_SECONDS = 366n * 86_400n;
const PERIODS = [
  { value: "86400", label: "Day" },
  { value: "604800", label: "Week" },
  { value: "2592000", label: "30 days" },
  { value: "custom", label: "Custom (seconds)" },
];

export function SpendingLimits({ limits, catalog, now }: { limits: SpendingLimitHolding[]; catalog?: Catalog; now: bigint }) {
  const { token } = useApp();
  const action = useAction();
  const providers = catalog?.providers ?? [];
  const [providerText, setProviderText] = useState("");
  const [amountText, setAmountText] = useState("");
  const [periodChoice, setPeriodChoice] = useState(PERIODS[0].value);
  const [secondsText, setSecondsText] = useState("");
  const [submitted, setSubmitted] = useState(false);
  const providerId = Number(providerText || providers[0]?.providerId || 0);
  const amount = parseAmount(amountText, token, { allowZero: true });
  const seconds = periodChoice === "custom" ? parseWhole(secondsText, "seconds", { min: 1n, max: MAX_PERIOD_SECONDS }) : { ok: true as const, value: BigInt(periodChoice) };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (!providerId || !amount.ok || !seconds.ok) return;
    const done = await action.run(
      `Limit provider ${providerId}`,
      (client) => setSpendingLimit(client, { providerId, limitPerPeriod: amount.value, periodSeconds: Number(seconds.value) }),
      () => `Provider ${providerId} may now charge at most ${formatAmount(amount.value, token)} per ${formatPeriod(Number(seconds.value)).replace(/^1 /, "")}.`,
    );
    if (done) {
      setAmountText("");
      setSubmitted(false);
    }
  };
  const clear = (limit: SpendingLimitHolding) =>
    void action.run(
      `Clear the limit of provider ${limit.providerId}`,
      (client) => clearSpendingLimit(client, { providerId: limit.providerId }),
      () => `Provider ${limit.providerId} has no limit any more.`,
    );

  return (
    <Card title="Spending limits">
      <DataTable
        caption="Your limits per provider"
        rows={limits}
        rowKey={(limit) => String(limit.providerId)}
        empty="No limits: every provider may charge what you use, up to what you hold."
        columns={[
          { header: "Provider", cell: (limit) => limit.providerId },
          { header: "Limit", numeric: true, cell: (limit) => formatAmount(limit.limitPerPeriod, token) },
          { header: "Period", cell: (limit) => formatPeriod(limit.periodSeconds) },
          { header: "Spent this window", numeric: true, cell: (limit) => formatAmount(limitWindowAt(limit, now).spent, token) },
          {
            header: "Resets",
            cell: (limit) => {
              const window = limitWindowAt(limit, now);
              return `${formatTime(window.resetsAt)} (${formatRelative(window.resetsAt, now)})`;
            },
          },
          {
            header: "Action",
            cell: (limit) => (
              <button type="button" className="secondary" disabled={action.busy} onClick={() => clear(limit)} aria-label={`Clear the limit of provider ${limit.providerId}`}>
                Clear
              </button>
            ),
          },
        ]}
      />
      <h3>Set a limit</h3>
      {providers.length === 0 ? (
        <p className="empty">{catalog ? "No provider is registered yet." : "Reading the providers…"}</p>
      ) : (
        <form onSubmit={submit} noValidate>
          <SelectField
            label="Provider"
            value={String(providerId)}
            onChange={setProviderText}
            options={providers.map((provider) => ({ value: String(provider.providerId), label: `Provider ${provider.providerId}${provider.metadataURI ? ` · ${provider.metadataURI}` : ""}` }))}
          />
          <Field
            label={`Limit per period (${token.symbol})`}
            inputMode="decimal"
            autoComplete="off"
            value={amountText}
            onChange={(event) => setAmountText(event.target.value)}
            error={shownError(amount, amountText, submitted)}
            hint="0 is a real limit: that provider may charge nothing."
          />
          <SelectField label="Period" value={periodChoice} onChange={setPeriodChoice} options={PERIODS} />
          {periodChoice === "custom" && (
            <Field
              label="Period in seconds"
              inputMode="numeric"
              autoComplete="off"
              value={secondsText}
              onChange={(event) => setSecondsText(event.target.value)}
              error={shownError(seconds, secondsText, submitted)}
              hint="From 1 second to 366 days (31,622,400 seconds)."
            />
          )}
          <button type="submit" disabled={action.busy}>
            {action.busy ? "Saving…" : "Set limit"}
          </button>
        </form>
      )}
      <ActionStatus state={action.state} />
    </Card>
  );
}
