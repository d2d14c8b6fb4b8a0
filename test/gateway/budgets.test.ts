/**
 * Budgets (issue 13): per key tag and per trace, per UTC calendar period, created, listed and deleted by a
 * wallet signature like API keys; enforced in the reservation step, so a call over budget is a 402
 * `budget_exceeded` that names the budget, its spend and its reset and charges nothing, and 200 parallel calls
 * cannot overspend one; threshold crossings go out as signed webhooks, retried, once per period, across restarts.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { parseReceiptHeader } from "../../server/chain/receipt-envelope";
import hre from "hardhat";
import OpenAI, { APIError } from "openai";
import { getAddress, type Address } from "viem";
import { recordCost } from "../../server/chain/pricing";
import { verifyWebhook } from "../../server/gateway/budgets/webhook-signature";
import { createGateway, type Gateway } from "../../server/gateway/gateway";
import { reservedInputTokens } from "../../server/gateway/metering/usage-counts";
import { periodEnd, periodStart } from "../../server/store/budget-periods";
import { createOpenAICompatibleUpstream } from "../../server/upstream/openai-compatible";
import { SMALL_PRICES, USD } from "../../scripts/lib/marketplace-fixtures";
import { budgetMessage as budgetMessageOf, nonce, startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

type Buyer = GatewayHarness["market"]["buyers"][number];
type BudgetJson = Record<string, unknown> & { id: string; spent: string; limit: string; reserved: string; resets_at_unix: number; period_start_unix: number };

const MESSAGES = [{ role: "user" as const, content: "Tell me about toll roads in one line." }];
const MAX_TOKENS = 16;

describe("gateway: budgets per tag and per trace", function () {
  let h: GatewayHarness;
  /** The gateway the tests talk to: the harness's, or its restart. */
  let gateway: Gateway;
  let url: string;
  let reservation: bigint;

  const unixNow = () => Math.floor(Date.now() / 1000);
  const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const budgetMessage = (buyer: Buyer, overrides: Record<string, unknown> = {}) => budgetMessageOf(buyer.address, overrides);
  async function createBudget(buyer: Buyer, overrides: Record<string, unknown> = {}): Promise<BudgetJson & { webhook_secret: string | null }> {
    const message = budgetMessage(buyer, overrides);
    const response = await post("/v1/budgets", { message, signature: await h.signKeyMessage(buyer, "CreateBudget", message) });
    const text = await response.text();
    expect(response.status, text).to.equal(201);
    return JSON.parse(text);
  }
  async function listBudgets(buyer: Buyer): Promise<BudgetJson[]> {
    const message = { buyer: buyer.address, issuedAt: String(unixNow()), nonce: nonce() };
    const response = await post("/v1/budgets/list", { message, signature: await h.signKeyMessage(buyer, "ListBudgets", message) });
    const text = await response.text();
    expect(response.status, text).to.equal(200);
    return (JSON.parse(text) as { data: BudgetJson[] }).data;
  }
  async function deleteBudget(buyer: Buyer, budgetId: string): Promise<Response> {
    const message = { buyer: buyer.address, budgetId, issuedAt: String(unixNow()), nonce: nonce() };
    return post("/v1/budgets/delete", { message, signature: await h.signKeyMessage(buyer, "DeleteBudget", message) });
  }
  const openai = (key: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
  const call = (key: string, headers: Record<string, string> = {}) =>
    openai(key).chat.completions.create({ model: "small-model", messages: MESSAGES, max_tokens: MAX_TOKENS }, { headers }).asResponse();
  /** The 402 of a refused call, as the openai client raises it. */
  async function refusal(key: string, headers: Record<string, string> = {}): Promise<APIError> {
    try {
      await call(key, headers);
    } catch (error) {
      expect(error).to.be.instanceOf(APIError);
      return error as APIError;
    }
    throw new Error("the call was served; a budget refusal was expected");
  }
  /** Calls until the budget refuses (at most `max` calls); returns how many were served. */
  async function spendUntilRefused(key: string, headers: Record<string, string> = {}, max = 40): Promise<{ served: number; error: APIError }> {
    for (let served = 0; served < max; served++) {
      try {
        await call(key, headers);
      } catch (error) {
        return { served, error: error as APIError };
      }
    }
    throw new Error(`${max} calls were served; the budget never refused`);
  }
  const recordsOf = (buyer: Buyer, filter: Parameters<Gateway["ctx"]["store"]["recordsOf"]>[1] = {}) => gateway.ctx.store.recordsOf(getAddress(buyer.address) as Address, filter);
  const costOf = (records: { cost: bigint }[]) => records.reduce((sum, record) => sum + record.cost, 0n);

  before(async function () {
    // The alert receiver below listens on loopback, which a production gateway refuses (webhook-destination.ts).
    h = await startGatewayHarness({ config: { budgets: { webhookPollMs: 50, webhookRetryBaseMs: 300, webhookAllowPrivateNetworks: true } } });
    gateway = h.gateway;
    url = h.url;
    const estimate = gateway.ctx.tokenizer.countChatPromptSync("o200k_base", MESSAGES)!;
    reservation = recordCost({ inputTokens: reservedInputTokens(estimate), cachedInputTokens: 0, outputTokens: MAX_TOKENS }, { ...SMALL_PRICES, cachedInput: SMALL_PRICES.input });
    for (const buyer of h.market.buyers.slice(0, 6)) await h.deposit(buyer, USD(50));
  });
  after(async () => {
    await gateway?.close();
    await h?.close();
  });

  describe("creation, listing and deletion by wallet signature", function () {
    it("creates a budget with the default 80% and 100% thresholds, lists it with its spend and reset, and shows the webhook secret only at creation", async function () {
      const buyer = h.market.buyers[0];
      const created = await createBudget(buyer, { label: "support daily", limit: USD(2).toString(), webhookUrl: "https://hooks.example.org/tollgate" });
      const now = gateway.ctx.state.now();
      expect(created).to.deep.include({ object: "budget", scope: "tag", target: "team:support", period: "day", limit: USD(2).toString(), spent: "0", reserved: "0", label: "support daily" });
      expect(created.thresholds_bps).to.deep.equal([8000, 10000]);
      expect(created.id).to.match(/^bud_/);
      expect(created.webhook_secret).to.match(/^whsec_[\w-]{43}$/);
      expect(created.period_start_unix).to.equal(periodStart("day", now));
      expect(created.resets_at_unix).to.equal(periodEnd("day", now));
      expect(created.resets_at).to.equal(new Date(periodEnd("day", now) * 1000).toISOString().replace(".000Z", "Z"));

      const listed = await listBudgets(buyer);
      expect(listed.map((budget) => budget.id)).to.deep.equal([created.id]);
      expect(listed[0]).to.not.have.property("webhook_secret");
      expect(listed[0].webhook_url).to.equal("https://hooks.example.org/tollgate");
      expect(await listBudgets(h.market.buyers[1])).to.deep.equal([]);

      // A read session (or an API key) lists the same without a signature.
      const { key } = await h.createKey(buyer, { tags: [] });
      const response = await fetch(`${url}/v1/budgets`, { headers: { authorization: `Bearer ${key}` } });
      expect(((await response.json()) as { data: BudgetJson[] }).data.map((budget) => budget.id)).to.deep.equal([created.id]);

      expect((await deleteBudget(buyer, created.id)).status).to.equal(200);
      expect(await listBudgets(buyer)).to.deep.equal([]);
    });

    it("refuses a bad signature, a replayed nonce, another buyer's message or budget, and bad fields, changing nothing", async function () {
      const [alice, bob] = h.market.buyers;
      const before = (await listBudgets(alice)).length;

      // Signed by Bob for Alice's address.
      const forged = budgetMessage(alice);
      let response = await post("/v1/budgets", { message: forged, signature: await h.signKeyMessage(bob, "CreateBudget", forged) });
      expect(response.status).to.equal(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).to.equal("invalid_signature");

      // Signed for other fields than those sent.
      const signedLimit = budgetMessage(alice, { target: "team:replay" });
      const signature = await h.signKeyMessage(alice, "CreateBudget", signedLimit);
      response = await post("/v1/budgets", { message: { ...signedLimit, limit: "999999999" }, signature });
      expect(((await response.json()) as { error: { code: string } }).error.code).to.equal("invalid_signature");

      // The same signed message twice: the second is a replay.
      response = await post("/v1/budgets", { message: signedLimit, signature });
      expect(response.status).to.equal(201);
      const replayed = await post("/v1/budgets", { message: signedLimit, signature });
      expect(replayed.status).to.equal(401);
      expect(((await replayed.json()) as { error: { code: string } }).error.code).to.equal("nonce_reused");
      const made = (await listBudgets(alice)).find((budget) => budget.target === "team:replay")!;
      expect(made.limit).to.equal("1000000");

      // Bob cannot delete Alice's budget; it stays.
      const bobDelete = await deleteBudget(bob, made.id);
      expect(bobDelete.status).to.equal(404);
      expect(((await bobDelete.json()) as { error: { code: string } }).error.code).to.equal("budget_not_found");
      expect((await listBudgets(alice)).map((budget) => budget.id)).to.include(made.id);

      // A second live budget on the same tag and period is a conflict; another period is not.
      const duplicate = budgetMessage(alice, { target: "team:replay" });
      response = await post("/v1/budgets", { message: duplicate, signature: await h.signKeyMessage(alice, "CreateBudget", duplicate) });
      expect(response.status).to.equal(409);
      expect(((await response.json()) as { error: { code: string } }).error.code).to.equal("budget_exists");

      for (const [fields, param] of [
        [{ target: "support" }, "message.target"],
        [{ scope: "trace", target: "has spaces" }, "message.target"],
        [{ period: "year" }, "message.period"],
        [{ limit: "0" }, "message.limit"],
        [{ thresholdsBps: [9000, 5000] }, "message.thresholdsBps"],
        [{ thresholdsBps: [12000] }, "message.thresholdsBps.0"],
        [{ webhookUrl: "ftp://example.org/hook" }, "message.webhookUrl"],
        [{ degradeModel: "small-model" }, "message.degradeModel"],
      ] as const) {
        const message = { ...budgetMessage(alice, { target: "team:bad" }), ...fields };
        response = await post("/v1/budgets", { message, signature: await h.signKeyMessage(alice, "CreateBudget", message) });
        const body = (await response.json()) as { error: { code: string; param: string } };
        expect(response.status, JSON.stringify(fields)).to.equal(400);
        expect(body.error.param, JSON.stringify(fields)).to.equal(param);
      }
      const unknownModel = budgetMessage(alice, { target: "team:bad", degradeModel: "no-such-model", degradeThresholdBps: 9000 });
      response = await post("/v1/budgets", { message: unknownModel, signature: await h.signKeyMessage(alice, "CreateBudget", unknownModel) });
      expect(((await response.json()) as { error: { code: string } }).error.code).to.equal("model_not_found");

      expect((await listBudgets(alice)).length).to.equal(before + 1);
      expect((await deleteBudget(alice, made.id)).status).to.equal(200);
    });

    it("stores and returns a degrade rule (the gateway still refuses at the limit)", async function () {
      const buyer = h.market.buyers[0];
      const created = await createBudget(buyer, { target: "workflow:degrade", degradeModel: "small-model", degradeThresholdBps: 9000 });
      expect(created.degrade).to.deep.equal({ threshold_bps: 9000, model: "small-model" });
      expect((await listBudgets(buyer)).find((budget) => budget.id === created.id)!.degrade).to.deep.equal({ threshold_bps: 9000, model: "small-model" });
      expect((await deleteBudget(buyer, created.id)).status).to.equal(200);
    });
  });

  describe("degrading to a cheaper model", function () {
    it("past its threshold, serves the model the budget names instead of the one asked for, and says so in the headers, the receipt and the report", async function () {
      const buyer = h.market.buyers[0];
      const { key } = await h.createKey(buyer, { tags: ["workflow:degrade-live"] });
      const large = (k: string) => openai(k).chat.completions.create({ model: "large-model", messages: MESSAGES, max_tokens: MAX_TOKENS }).withResponse();
      // The first call sets the scale: a limit of four such calls, degrading from half of it.
      const first = await large(key);
      expect(first.data.model).to.equal("large-model");
      const perCall = costOf(recordsOf(buyer, { tag: "workflow:degrade-live" }));
      const budget = await createBudget(buyer, { target: "workflow:degrade-live", limit: (perCall * 4n).toString(), degradeModel: "small-model", degradeThresholdBps: 5000 });
      // Budgets count the period's earlier spend: one call is 25 %, below the threshold; the second reaches 50 %.
      expect((await large(key)).data.model).to.equal("large-model");
      const degraded = await large(key);
      expect(degraded.data.model).to.equal("small-model");
      expect(degraded.response.headers.get("x-tollgate-routed-from")).to.equal("large-model");
      expect(degraded.response.headers.get("x-tollgate-route-reason")).to.equal(`budget ${budget.id} at 50.00%`);
      const envelope = parseReceiptHeader(degraded.response.headers.get("x-tollgate-receipt")!);
      expect(envelope.routing).to.deep.include({ requested: "large-model", reason: `budget ${budget.id} at 50.00%`, fallbacks: 0 });
      // What the degraded call saved against the model asked for, to the unit.
      const record = recordsOf(buyer, { tag: "workflow:degrade-live" }).at(-1)!;
      expect(record.modelName).to.equal("small-model");
      expect(record.routing).to.deep.include({ dearestModel: "large-model" });
      expect(record.routing!.dearestCost > record.cost).to.equal(true);
      // Another key of the buyer, outside the budget, still gets what it asks for.
      const { key: outside } = await h.createKey(buyer, { tags: ["workflow:other"] });
      expect((await large(outside)).data.model).to.equal("large-model");
      expect((await deleteBudget(buyer, budget.id)).status).to.equal(200);
      expect((await large(key)).data.model).to.equal("large-model");
    });
  });

  describe("enforcement", function () {
    it("a tag budget refuses the call that would overrun it with a 402 naming the budget, its spend and its reset, and charges nothing", async function () {
      const buyer = h.market.buyers[2];
      const limit = reservation * 3n;
      const budget = await createBudget(buyer, { target: "team:support", limit: limit.toString() });
      const { key } = await h.createKey(buyer, { tags: ["team:support", "env:prod"] });
      const { key: otherTeam } = await h.createKey(buyer, { tags: ["team:search"] });

      const { served, error } = await spendUntilRefused(key);
      expect(served).to.be.at.least(3);
      const spent = costOf(recordsOf(buyer, { tag: "team:support" }));
      expect(spent <= limit, `spent ${spent} of ${limit}`).to.equal(true);
      expect(spent + reservation > limit).to.equal(true);

      expect(error.status).to.equal(402);
      expect(error.code).to.equal("budget_exceeded");
      expect(error.type).to.equal("insufficient_funds");
      const now = gateway.ctx.state.now();
      const body = (error.error as { budget: BudgetJson }).budget;
      expect(body).to.deep.include({ id: budget.id, scope: "tag", target: "team:support", period: "day", limit: limit.toString(), spent: spent.toString(), reserved: "0", requested: reservation.toString() });
      expect(body.resets_at_unix).to.equal(periodEnd("day", now));
      expect(error.message).to.include(budget.id).and.include("resets at").and.include(String(periodEnd("day", now)));
      const retryAfter = Number(error.headers!.get("retry-after"));
      expect(retryAfter).to.be.within(periodEnd("day", now) - now - 5, periodEnd("day", now) - now + 5);

      // Nothing was charged for the refusal, and nothing is held.
      const recordCount = recordsOf(buyer).length;
      await refusal(key);
      expect(recordsOf(buyer).length).to.equal(recordCount);
      expect(gateway.ctx.ledger.budgetReserved(budget.id)).to.equal(0n);
      // A key of another team is not bound by it.
      expect((await call(otherTeam)).status).to.equal(200);
      const listed = (await listBudgets(buyer)).find((b) => b.id === budget.id)!;
      expect(listed.spent).to.equal(spent.toString());

      // GET /v1/balance shows the budgets that bind the key: its tags', not another team's.
      const balanceOf = async (bearer: string) =>
        ((await (await fetch(`${url}/v1/balance`, { headers: { authorization: `Bearer ${bearer}` } })).json()) as { budgets: BudgetJson[] }).budgets;
      expect((await balanceOf(key)).map((b) => [b.id, b.spent, b.limit])).to.deep.equal([[budget.id, spent.toString(), limit.toString()]]);
      expect(await balanceOf(otherTeam)).to.deep.equal([]);
    });

    it("a trace budget refuses further calls of that trace only", async function () {
      const buyer = h.market.buyers[3];
      const limit = reservation * 2n;
      const budget = await createBudget(buyer, { scope: "trace", target: "run-42", limit: limit.toString() });
      const { key } = await h.createKey(buyer, { tags: ["team:support"] });

      const { served, error } = await spendUntilRefused(key, { "x-tollgate-trace-id": "run-42" });
      expect(served).to.be.at.least(2);
      expect(error.status).to.equal(402);
      expect(error.code).to.equal("budget_exceeded");
      const spent = costOf(recordsOf(buyer, { traceId: "run-42" }));
      expect((error.error as { budget: BudgetJson }).budget).to.deep.include({ id: budget.id, scope: "trace", target: "run-42", spent: spent.toString() });
      expect(spent <= limit).to.equal(true);
      expect((await call(key, { "x-tollgate-trace-id": "run-43" })).status).to.equal(200);
      expect((await call(key)).status).to.equal(200);
    });

    it("deleting the budget lifts the limit at once", async function () {
      const buyer = h.market.buyers[3];
      const { key } = await h.createKey(buyer, { tags: [] });
      const [budget] = (await listBudgets(buyer)).filter((b) => b.target === "run-42");
      expect((await refusal(key, { "x-tollgate-trace-id": "run-42" })).code).to.equal("budget_exceeded");
      expect((await deleteBudget(buyer, budget.id)).status).to.equal(200);
      expect((await call(key, { "x-tollgate-trace-id": "run-42" })).status).to.equal(200);
      // Deleting it again: no such live budget.
      expect((await deleteBudget(buyer, budget.id)).status).to.equal(404);
    });

    it("a budget made mid-period counts what the period already spent on its tag", async function () {
      const buyer = h.market.buyers[2];
      const already = costOf(recordsOf(buyer, { tag: "team:search", from: periodStart("month", gateway.ctx.state.now()) }));
      expect(already > 0n).to.equal(true);
      const budget = await createBudget(buyer, { target: "team:search", period: "month", limit: USD(1).toString() });
      expect(budget.spent).to.equal(already.toString());
    });

    it("200 parallel calls against a budget for 100 reservations serve at most its limit, and its spend is exactly what was recorded", async function () {
      const buyer = h.market.buyers[4];
      // Enough for exactly 100 reservations, and not one more; the buyer's balance is far larger.
      const limit = reservation * 100n + reservation - 1n;
      const budget = await createBudget(buyer, { target: "workflow:burst", limit: limit.toString() });
      const { key } = await h.createKey(buyer, { tags: ["workflow:burst"] });
      const client = openai(key);

      const outcomes = await Promise.allSettled(
        Array.from({ length: 200 }, () => client.chat.completions.create({ model: "small-model", messages: MESSAGES, max_tokens: MAX_TOKENS })),
      );
      const served = outcomes.filter((outcome) => outcome.status === "fulfilled");
      const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
      expect(served.length).to.be.at.least(100);
      expect(refused.length).to.be.greaterThan(0);
      for (const failure of refused) {
        expect(failure.reason).to.have.property("status", 402);
        expect(failure.reason).to.have.property("code", "budget_exceeded");
      }
      const records = recordsOf(buyer, { tag: "workflow:burst" });
      expect(records).to.have.length(served.length);
      const charged = costOf(records);
      expect(charged <= limit, `charged ${charged} of ${limit}`).to.equal(true);
      expect(gateway.ctx.ledger.budgetReserved(budget.id)).to.equal(0n);
      expect(gateway.ctx.ledger.openReservations()).to.equal(0);
      const listed = (await listBudgets(buyer)).find((b) => b.id === budget.id)!;
      expect(listed.spent).to.equal(charged.toString());
    });
  });

  describe("threshold webhooks, restart and period reset", function () {
    const deliveries: { eventId: string; signature: string; body: string; status: number }[] = [];
    let receiver: http.Server;
    let receiverUrl: string;
    /** The first delivery of each event gets a 500: the gateway must retry it. */
    const failedOnce = new Set<string>();

    before(async function () {
      receiver = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          const eventId = String(req.headers["tollgate-event-id"]);
          const status = failedOnce.has(eventId) ? 200 : 500;
          failedOnce.add(eventId);
          deliveries.push({ eventId, signature: String(req.headers["tollgate-signature"]), body: Buffer.concat(chunks).toString("utf8"), status });
          res.writeHead(status).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
      receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`;
    });
    after(async () => {
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
    });

    async function until(condition: () => boolean, what: string): Promise<void> {
      // A wait for something the gateway does in the background, not a timing assertion: generous on purpose.
      const deadline = Date.now() + 20_000;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; deliveries: ${JSON.stringify(deliveries.map((d) => [d.eventId, d.status]))}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }

    async function restartGateway(): Promise<void> {
      await gateway.close();
      const upstream = createOpenAICompatibleUpstream({ name: "sim", baseUrl: h.sim.url, timeoutMs: 5_000 });
      gateway = await createGateway({ config: h.config, client: h.client, upstreams: { sim: upstream } });
      url = await gateway.listen(0, "127.0.0.1");
    }

    it("posts a signed alert for each threshold crossed, retries the failed first delivery, and sends each crossing once per period across a restart; the period resets", async function () {
      const buyer = h.market.buyers[5];
      const limit = reservation * 4n;
      const budget = await createBudget(buyer, { target: "workflow:alerts", limit: limit.toString(), thresholdsBps: [2500, 5000], webhookUrl: receiverUrl });
      const secret = budget.webhook_secret!;
      const { key } = await h.createKey(buyer, { tags: ["workflow:alerts"] });

      // Spend past 50%: both thresholds cross, each by the record whose cost passed it.
      while (costOf(recordsOf(buyer, { tag: "workflow:alerts" })) * 2n < limit) expect((await call(key)).status).to.equal(200);
      await until(() => deliveries.filter((d) => d.status === 200).length === 2, "two delivered alerts");

      const byEvent = new Map<string, typeof deliveries>();
      for (const delivery of deliveries) byEvent.set(delivery.eventId, [...(byEvent.get(delivery.eventId) ?? []), delivery]);
      expect(byEvent.size).to.equal(2);
      const thresholds: number[] = [];
      for (const [eventId, attempts] of byEvent) {
        // The first attempt failed (500) and the retry went through; both carried a valid signature of the same body.
        expect(attempts.map((attempt) => attempt.status), eventId).to.deep.equal([500, 200]);
        for (const attempt of attempts) {
          expect(verifyWebhook(secret, attempt.signature, attempt.body), eventId).to.equal(true);
          expect(verifyWebhook("whsec_wrong", attempt.signature, attempt.body)).to.equal(false);
          expect(verifyWebhook(secret, attempt.signature, attempt.body.replace("workflow:alerts", "workflow:other"))).to.equal(false);
        }
        const alert = JSON.parse(attempts[1].body) as { id: string; type: string; threshold_bps: number; sequence: string; budget: Record<string, unknown> };
        expect(alert.id).to.equal(eventId);
        expect(alert.type).to.equal("budget.threshold_crossed");
        expect(alert.budget).to.deep.include({ id: budget.id, scope: "tag", target: "workflow:alerts", period: "day", limit: limit.toString(), resets_at_unix: budget.resets_at_unix });
        // The alert's spend is the tag's recorded spend up to and including the record that crossed it.
        const upTo = recordsOf(buyer, { tag: "workflow:alerts" }).filter((record) => record.sequence <= BigInt(alert.sequence));
        expect(alert.budget.spent).to.equal(costOf(upTo).toString());
        expect(BigInt(alert.budget.spent as string) * 10_000n >= limit * BigInt(alert.threshold_bps)).to.equal(true);
        expect((costOf(upTo) - upTo[upTo.length - 1].cost) * 10_000n < limit * BigInt(alert.threshold_bps)).to.equal(true);
        thresholds.push(alert.threshold_bps);
      }
      expect(thresholds.sort()).to.deep.equal([2500, 5000]);

      // Spend to the limit: refused, and no further alert (no threshold left in this period).
      const { error } = await spendUntilRefused(key);
      expect(error.code).to.equal("budget_exceeded");
      const spent = costOf(recordsOf(buyer, { tag: "workflow:alerts" }));

      // A restart: the spend and the refusal survive, and no delivered alert is sent again.
      await restartGateway();
      expect((await refusal(key)).code).to.equal("budget_exceeded");
      expect((await listBudgets(buyer)).find((b) => b.id === budget.id)!.spent).to.equal(spent.toString());
      await new Promise((resolve) => setTimeout(resolve, 300)); // several outbox polls (50 ms each)
      expect(deliveries).to.have.length(4);

      // The chain (and so the gateway's clock) moves into the next UTC day: the budget starts again from zero.
      const now = gateway.ctx.state.now();
      const chainNow = Number((await h.client.getBlock()).timestamp);
      await hre.network.provider.send("evm_increaseTime", [periodEnd("day", now) + 60 - chainNow]);
      await hre.network.provider.send("evm_mine", []);
      await restartGateway();
      const later = gateway.ctx.state.now();
      expect(periodStart("day", later)).to.equal(budget.resets_at_unix);
      const response = await call(key);
      expect(response.status).to.equal(200);
      const listed = (await listBudgets(buyer)).find((b) => b.id === budget.id)!;
      const newPeriod = costOf(recordsOf(buyer, { tag: "workflow:alerts", from: budget.resets_at_unix }));
      expect(newPeriod > 0n).to.equal(true);
      expect(listed.spent).to.equal(newPeriod.toString());
      expect(listed.period_start_unix).to.equal(budget.resets_at_unix);
      expect(listed.resets_at_unix).to.equal(budget.resets_at_unix + 86_400);
    });
  });
});
