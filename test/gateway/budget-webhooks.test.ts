/**
 * The budget alert sender on its own, over a real usage store and a real local receiver: a crossing is logged
 * once, a budget without a webhook is only logged, a receiver that keeps failing gets `maxAttempts` tries and
 * then the alert is given up (logged as an error, never sent again).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import pino from "pino";
import { BudgetWebhooks } from "../../server/gateway/budgets/budget-webhooks";
import { verifyWebhook } from "../../server/gateway/budgets/webhook-signature";
import type { Budget } from "../../server/store/usage-store";
import { ALICE, closeStores, removeTempDirs, sign, storeWithKeys, usage } from "../helpers/store-fixtures";

const SERVED = 1_700_000_000;

function budget(overrides: Partial<Budget>): Budget {
  return {
    id: "bud_x",
    buyer: ALICE,
    scope: "tag",
    target: "team:search",
    period: "month",
    limit: 10_000n,
    thresholdsBps: [5_000],
    webhookUrl: null,
    webhookSecret: null,
    degrade: null,
    label: "",
    createdAt: SERVED,
    deletedAt: null,
    ...overrides,
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  // Waits for background work; a generous deadline, not a timing assertion.
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("gateway: budget alert webhooks", function () {
  const received: { signature: string; body: string }[] = [];
  let receiver: http.Server;
  let receiverUrl: string;

  before(async () => {
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        received.push({ signature: String(req.headers["tollgate-signature"]), body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(503).end("down for maintenance");
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });
  after(async () => {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
    closeStores();
    removeTempDirs();
  });

  it("logs each crossing once, gives up after maxAttempts against a failing receiver, and only logs a budget without a webhook", async function () {
    const store = storeWithKeys();
    store.createBudget(budget({ id: "bud_hook", webhookUrl: receiverUrl, webhookSecret: "whsec_test" }), SERVED);
    store.createBudget(budget({ id: "bud_quiet", target: "team:ads" }), SERVED);
    store.appendRecords([
      { input: usage({ cost: 6_000n }), sign },
      { input: usage({ cost: 6_000n, keyId: "key-alice-2", tags: ["team:ads"] }), sign },
    ]);

    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const webhooks = new BudgetWebhooks({ store, logger, pollMs: 10, retryBaseMs: 10, maxRetryDelayMs: 50, maxAttempts: 3, timeoutMs: 2_000 });
    webhooks.start();
    try {
      await until(() => lines.some((line) => line.msg === "budget alert not delivered: giving up; check the webhook URL and its receiver"), "the alert to be given up");
      // More polls: nothing is sent again.
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await webhooks.stop();
    }

    expect(received).to.have.length(3);
    for (const delivery of received) expect(verifyWebhook("whsec_test", delivery.signature, delivery.body)).to.equal(true);
    expect(JSON.parse(received[0].body)).to.deep.include({ type: "budget.threshold_crossed", threshold_bps: 5000 });
    const messages = (msg: string) => lines.filter((line) => line.msg === msg);
    expect(messages("budget threshold crossed").map((line) => line.budgetId).sort()).to.deep.equal(["bud_hook", "bud_quiet"]);
    expect(messages("budget alert delivery failed; will retry").map((line) => [line.attempts, line.problem])).to.deep.equal([
      [1, "the receiver answered HTTP 503"],
      [2, "the receiver answered HTTP 503"],
    ]);
    expect(messages("budget alert not delivered: giving up; check the webhook URL and its receiver")).to.have.length(1);
    // Neither alert is due again, ever: one was given up, the other had nothing to send.
    expect(store.dueBudgetAlerts(Date.now() + 10 ** 9)).to.deep.equal([]);
  });
});
