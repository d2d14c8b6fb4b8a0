/**
 * The budget alert sender on its own, over a real usage store and a real local receiver: a crossing is logged
 * once, a budget without a webhook is only logged, a receiver that keeps failing gets `maxAttempts` tries and
 * then the alert is given up (logged as an error, never sent again). With private networks off (the default), an
 * alert never reaches a loopback receiver, whether its URL names the address or a name that resolves to it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import pino from "pino";
import { BudgetWebhooks } from "../../server/gateway/budgets/budget-webhooks";
import { verifyWebhook } from "../../server/gateway/budgets/webhook-signature";
import { isPublicAddress, webhookUrlProblem, type Resolver } from "../../server/gateway/budgets/webhook-destination";
import { budget, closeStores, removeTempDirs, sign, storeWithKeys, usage } from "../helpers/store-fixtures";

const SERVED = 1_700_000_000;

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
    store.createBudget(budget({ id: "bud_hook", thresholdsBps: [5_000], webhookUrl: receiverUrl, webhookSecret: "whsec_test" }), SERVED);
    store.createBudget(budget({ id: "bud_quiet", target: "team:ads", thresholdsBps: [5_000] }), SERVED);
    store.appendRecords([
      { input: usage({ cost: 6_000n }), sign },
      { input: usage({ cost: 6_000n, keyId: "key-alice-2", tags: ["team:ads"] }), sign },
    ]);

    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const webhooks = new BudgetWebhooks({ store, logger, pollMs: 10, retryBaseMs: 10, maxRetryDelayMs: 50, maxAttempts: 3, timeoutMs: 2_000, allowPrivateNetworks: true });
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

  it("with private networks off, never sends to a loopback receiver: not by its address, not by localhost, not by a name resolving to it", async function () {
    const before = received.length;
    const port = new URL(receiverUrl).port;
    const urls = {
      bud_literal: receiverUrl,
      bud_v6: `http://[::ffff:127.0.0.1]:${port}/hook`,
      bud_localhost: `http://localhost:${port}/hook`,
      bud_rebound: `http://hooks.rebound.test:${port}/hook`,
    };
    const store = storeWithKeys();
    for (const [id, url] of Object.entries(urls)) store.createBudget(budget({ id, target: `team:${id}`, thresholdsBps: [5_000], webhookUrl: url, webhookSecret: "whsec_test" }), SERVED);
    store.appendRecords(Object.keys(urls).map((id) => ({ input: usage({ cost: 6_000n, tags: [`team:${id}`] }), sign })));

    // A name a public resolver could turn into 127.0.0.1 at delivery time (DNS rebinding).
    const resolved: string[] = [];
    const resolve: Resolver = (hostname, callback) => {
      resolved.push(hostname);
      callback(null, [{ address: "127.0.0.1", family: 4 }]);
    };
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const webhooks = new BudgetWebhooks({ store, logger, pollMs: 10, retryBaseMs: 10, maxRetryDelayMs: 50, maxAttempts: 2, timeoutMs: 2_000, allowPrivateNetworks: false, resolve });
    webhooks.start();
    const givenUp = () => lines.filter((line) => line.msg === "budget alert not delivered: giving up; check the webhook URL and its receiver");
    try {
      await until(() => givenUp().length === Object.keys(urls).length, "every alert to be given up");
    } finally {
      await webhooks.stop();
    }

    expect(received.length, "deliveries that reached the loopback receiver").to.equal(before);
    const problems = Object.fromEntries(givenUp().map((line) => [line.budgetId, String(line.problem)]));
    expect(problems.bud_literal).to.match(/127\.0\.0\.1 is not a public internet address/);
    expect(problems.bud_v6).to.match(/is not a public internet address/);
    expect(problems.bud_localhost).to.match(/localhost is this machine/);
    expect(problems.bud_rebound).to.match(/hooks\.rebound\.test resolves to 127\.0\.0\.1, not a public internet address/);
    // Only the name was looked up: literals and localhost were refused before any connection.
    expect([...new Set(resolved)]).to.deep.equal(["hooks.rebound.test"]);
  });

  it("tells public from non-public addresses, IPv4-mapped and NAT64 forms included", function () {
    const nonPublic = ["127.0.0.1", "10.1.2.3", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fd00::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:a9fe:a9fe", "64:ff9b::10.0.0.1", "[::1]", "not-an-ip"];
    const isPublic = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"];
    for (const address of nonPublic) expect(isPublicAddress(address), address).to.equal(false);
    for (const address of isPublic) expect(isPublicAddress(address), address).to.equal(true);
    expect(webhookUrlProblem("https://hooks.example.org/x", false)).to.equal(null);
    expect(webhookUrlProblem("http://169.254.169.254/latest/meta-data/", false)).to.match(/not a public internet address/);
    expect(webhookUrlProblem("http://api.localhost/x", false)).to.match(/is this machine/);
    expect(webhookUrlProblem("http://127.0.0.1/x", true)).to.equal(null);
  });
});
