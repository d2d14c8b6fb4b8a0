/**
 * Sends budget threshold alerts: a log line when the gateway first handles a crossing, and a signed POST to the
 * budget's webhook, retried with exponential backoff. It reads the alerts the store wrote in each crossing
 * record's own transaction (the outbox), so it runs beside the request path and never on it: a receiver that
 * is down or slow delays and fails no call. Delivery is at least once (an answer lost after the receiver took
 * it is sent again); `tollgate-event-id` lets the receiver drop a repeat. A restart resumes from the outbox and
 * never sends a delivered alert again. Alerts go only to public addresses unless the operator allows private
 * networks (webhook-destination.ts says why).
 */
import type { Logger } from "pino";
import { fetch, type Agent } from "undici";
import type { PendingBudgetAlert, UsageStore } from "../../store/usage-store";
import { isoTime } from "./budget-status";
import { publicOnlyAgent, webhookUrlProblem, type Resolver } from "./webhook-destination";
import { SIGNATURE_HEADER, signWebhook } from "./webhook-signature";

export interface BudgetWebhookOptions {
  store: Pick<UsageStore, "dueBudgetAlerts" | "budgetAlertDelivered" | "budgetAlertFailed">;
  logger: Logger;
  /** How often the outbox is read. */
  pollMs: number;
  /** The wait after the first failed attempt; it doubles after each, up to `maxRetryDelayMs`. */
  retryBaseMs: number;
  maxRetryDelayMs: number;
  /** Attempts before the alert is given up (logged as an error, kept in the store). */
  maxAttempts: number;
  timeoutMs: number;
  /** Send to loopback, private and link-local addresses too (a receiver on the gateway's own host or LAN). */
  allowPrivateNetworks: boolean;
  /** Resolves webhook host names when private networks are off (default: the system's resolver). */
  resolve?: Resolver;
}

/** The JSON body of an alert. Amounts are base-unit decimal strings. */
export function alertBody(alert: PendingBudgetAlert, sentAt: number) {
  const { budget } = alert;
  return {
    id: `alert_${alert.id}`,
    type: "budget.threshold_crossed",
    created: sentAt,
    threshold_bps: alert.thresholdBps,
    crossed_at: alert.crossedAt,
    /** The usage record whose cost crossed the threshold. */
    sequence: alert.sequence?.toString() ?? null,
    budget: {
      id: budget.id,
      label: budget.label,
      buyer: budget.buyer,
      scope: budget.scope,
      target: budget.target,
      period: budget.period,
      limit: budget.limit.toString(),
      /** The period's spend right after the crossing record. */
      spent: alert.spent.toString(),
      period_start: isoTime(alert.periodStart),
      resets_at: isoTime(alert.periodEnd),
      resets_at_unix: alert.periodEnd,
    },
  };
}

export class BudgetWebhooks {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Connections only to public addresses; none when private networks are allowed. */
  private readonly dispatcher: Agent | undefined;

  constructor(private readonly options: BudgetWebhookOptions) {
    this.dispatcher = options.allowPrivateNetworks ? undefined : publicOnlyAgent(options.resolve);
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.options.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Delivers what is due now, unless a pass is already under way. */
  kick(): void {
    if (this.stopped || this.running) return;
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
  }

  /** Stops polling and waits for the pass in progress (the store must stay open until then). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.dispatcher?.close();
  }

  private async pass(): Promise<void> {
    try {
      for (const alert of this.options.store.dueBudgetAlerts(Date.now())) {
        if (this.stopped) return;
        await this.deliver(alert);
      }
    } catch (error) {
      this.options.logger.error({ err: error }, "reading the budget alert outbox failed; retrying at the next poll");
    }
  }

  private async deliver(alert: PendingBudgetAlert): Promise<void> {
    const { store, logger } = this.options;
    const { budget } = alert;
    const fields = { budgetId: budget.id, buyer: budget.buyer, scope: budget.scope, target: budget.target, period: budget.period, thresholdBps: alert.thresholdBps, spent: alert.spent.toString(), limit: budget.limit.toString(), alertId: alert.id.toString() };
    if (alert.attempts === 0) logger.info(fields, "budget threshold crossed");
    if (budget.webhookUrl === null || budget.webhookSecret === null) {
      store.budgetAlertDelivered(alert.id);
      return;
    }
    const sentAt = Math.floor(Date.now() / 1000);
    const body = JSON.stringify(alertBody(alert, sentAt));
    let problem: string;
    try {
      // A literal address connects without a lookup, so the public-only agent never sees it: judge it here.
      const refused = webhookUrlProblem(budget.webhookUrl, this.options.allowPrivateNetworks);
      if (refused !== null) throw new Error(`the webhook URL is not allowed: ${refused}; webhooks to private networks are off (budgets.webhookAllowPrivateNetworks)`);
      const response = await fetch(budget.webhookUrl, {
        method: "POST",
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signWebhook(budget.webhookSecret, sentAt, body), "tollgate-event-id": `alert_${alert.id}`, "user-agent": "tollgate-gateway" },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
        redirect: "manual",
        dispatcher: this.dispatcher,
      });
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 300) {
        store.budgetAlertDelivered(alert.id);
        logger.info({ ...fields, attempts: alert.attempts + 1 }, "budget alert delivered");
        return;
      }
      problem = `the receiver answered HTTP ${response.status}`;
    } catch (error) {
      problem = (error as Error).name === "TimeoutError" ? `no answer within ${this.options.timeoutMs} ms` : `${(error as Error).message}${(error as { cause?: Error }).cause ? ` (${(error as { cause: Error }).cause.message})` : ""}`;
    }
    const attempts = alert.attempts + 1;
    if (attempts >= this.options.maxAttempts) {
      store.budgetAlertFailed(alert.id, attempts, problem, { gaveUpAtMs: Date.now() });
      logger.error({ ...fields, attempts, problem, url: budget.webhookUrl }, "budget alert not delivered: giving up; check the webhook URL and its receiver");
      return;
    }
    const delay = Math.min(this.options.retryBaseMs * 2 ** (attempts - 1), this.options.maxRetryDelayMs);
    store.budgetAlertFailed(alert.id, attempts, problem, { nextAttemptAtMs: Date.now() + delay });
    logger.warn({ ...fields, attempts, problem, retryInMs: delay, url: budget.webhookUrl }, "budget alert delivery failed; will retry");
  }
}
