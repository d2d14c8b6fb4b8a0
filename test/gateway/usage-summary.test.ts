/**
 * Where the money went, over HTTP (issue 13): `GET /v1/usage/summary` totals agree to the unit with the records
 * and with `/v1/usage`'s total_cost, group by each dimension, cover [from, to), state tag double counting, export
 * CSV (quoted, formulas defused) and a paged per-key log; per workflow the retry tail, first-try rate and outcome
 * costs from real calls made with the official openai client. `POST /v1/outcomes` records 201, refuses an unknown
 * or another buyer's trace (404, the same answer), a repeat (409) and bad fields (400 naming them), changing
 * nothing. A read session reads the summary; another buyer sees none of it.
 */
import { expect } from "chai";
import { formatUnits, type Address } from "viem";
import { getUsageLog, getUsageSummary, GatewayRequestError, openSession, recordOutcome, type TollgateClient, type UsageSummaryDimension } from "../../client";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { csvCell } from "../../server/gateway/http/csv";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
type ExportRow = { sequence: string; served_at: number; model: string; key_id: string; tags: string[]; cost: string; trace_id: string | null; input_tokens: number; cached_input_tokens: number; output_tokens: number };

describe("gateway: usage summary, per-key log and outcomes", function () {
  let h: GatewayHarness;
  let alice: Address;
  let aliceClient: TollgateClient;
  let triageKey: string;
  let salesKey: string;
  let bobKey: string;

  const get = (path: string, bearer: string) => fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
  const postOutcome = (body: unknown, bearer = triageKey) =>
    fetch(`${h.url}/v1/outcomes`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` }, body: JSON.stringify(body) });
  const exportRows = async (query = "", bearer = triageKey): Promise<{ total_cost: string; data: ExportRow[] }> => {
    const response = await get(`/v1/usage?limit=10000${query}`, bearer);
    expect(response.status).to.equal(200);
    return (await response.json()) as { total_cost: string; data: ExportRow[] };
  };
  async function expectError(response: Response, status: number, code: string, param: string | null): Promise<ErrorBody["error"]> {
    const text = await response.text();
    expect(response.status, text).to.equal(status);
    const { error } = JSON.parse(text) as ErrorBody;
    expect(error).to.include({ code, param });
    expect(error.message).to.be.a("string").and.not.empty;
    return error;
  }
  const call = (key: string, content: string, trace?: { id: string; step?: string }, model = "small-model") =>
    h
      .openai(key)
      .chat.completions.create(
        { model, messages: [{ role: "user", content }], max_tokens: 8 },
        { headers: trace ? { "x-tollgate-trace-id": trace.id, ...(trace.step ? { "x-tollgate-step": trace.step } : {}) } : {} },
      );

  before(async function () {
    this.timeout(120_000);
    h = await startGatewayHarness();
    const [a, b] = h.market.buyers;
    alice = a.address as Address;
    aliceClient = h.market.clientOf(alice, { url: h.url });
    await h.deposit(a, USD(20));
    await h.deposit(b, USD(20));
    ({ key: triageKey } = await h.createKey(a, { tags: ["team:support", "workflow:triage"] }));
    ({ key: salesKey } = await h.createKey(a, { tags: ["team:sales"] }));
    ({ key: bobKey } = await h.createKey(b, { tags: ["team:support", "workflow:triage"] }));

    // Four runs of the triage workflow: one succeeds first try, one after a retry of its step, one fails, one
    // reports nothing; plus a call outside any run, and the sales key's call to the large model.
    await call(triageKey, "Classify ticket 1.", { id: "run-ok", step: "classify" });
    await call(triageKey, "Reply to ticket 1.", { id: "run-ok", step: "reply" });
    await call(triageKey, "Classify ticket 2.", { id: "run-retried", step: "classify" });
    await call(triageKey, "Classify ticket 2, again.", { id: "run-retried", step: "classify" });
    await call(triageKey, "Classify ticket 3.", { id: "run-failed", step: "classify" });
    await call(triageKey, "Classify ticket 4.", { id: "-run-silent" });
    await call(triageKey, "No run.");
    // The last call in a second of its own, so a range can end exactly at it.
    await new Promise((resolve) => setTimeout(resolve, 1_050 - (Date.now() % 1_000)));
    await call(salesKey, "Write a pitch.", undefined, "large-model");
    await call(bobKey, "Bob's call.", { id: "bob-run" });
  });
  after(async () => h?.close());

  it("totals agree to the unit with the records and with /v1/usage's total_cost", async function () {
    const summary = await getUsageSummary(aliceClient, { apiKey: triageKey });
    const usage = await exportRows();
    expect(usage.data).to.have.length(8);
    expect(summary.total.cost).to.equal(usage.total_cost);
    expect(summary.total.cost).to.equal(usage.data.reduce((sum, row) => sum + BigInt(row.cost), 0n).toString());
    expect(summary.total.calls).to.equal(8);
    expect(summary.total.input_tokens).to.equal(usage.data.reduce((sum, row) => sum + row.input_tokens, 0));
    expect(summary.total.output_tokens).to.equal(usage.data.reduce((sum, row) => sum + row.output_tokens, 0));
    expect(summary.total.cost_formatted).to.equal(formatUnits(BigInt(summary.total.cost), 6));
    expect(Number(summary.total.cost), "the calls cost something").to.be.greaterThan(0);
    expect(summary.token).to.deep.equal({ symbol: "tUSD", decimals: 6 });
  });

  it("groups by each dimension, each group the sum of its records in the export", async function () {
    const { data } = await exportRows();
    const day = (row: ExportRow) => new Date(row.served_at * 1000).toISOString().slice(0, 10);
    const expected: Record<UsageSummaryDimension, [string, (row: ExportRow) => (string | null)[]]> = {
      key: ["key_id", (row) => [row.key_id]],
      tag: ["tag", (row) => row.tags],
      model: ["model", (row) => [row.model]],
      trace: ["trace_id", (row) => [row.trace_id]],
      day: ["day", (row) => [day(row)]],
      month: ["month", (row) => [day(row).slice(0, 7)]],
    };
    for (const [dimension, [field, valuesOf]] of Object.entries(expected) as [UsageSummaryDimension, (typeof expected)[UsageSummaryDimension]][]) {
      const want = new Map<string | null, { calls: number; cost: bigint }>();
      for (const row of data) {
        for (const value of valuesOf(row)) {
          const entry = want.get(value) ?? { calls: 0, cost: 0n };
          want.set(value, { calls: entry.calls + 1, cost: entry.cost + BigInt(row.cost) });
        }
      }
      const { groups, group_by } = await getUsageSummary(aliceClient, { apiKey: triageKey, groupBy: [dimension] });
      expect(group_by).to.deep.equal([dimension]);
      const got = new Map(groups.map((g) => [(g as Record<string, unknown>)[field] as string | null, { calls: g.calls, cost: BigInt(g.cost) }]));
      expect(got, dimension).to.deep.equal(want);
    }
    const pairs = await getUsageSummary(aliceClient, { apiKey: triageKey, groupBy: ["key", "model"] });
    expect(pairs.groups.map((g) => [g.key_id, g.model, g.calls])).to.have.deep.members(
      [...new Set(data.map((row) => `${row.key_id} ${row.model}`))].map((pair) => [...pair.split(" "), data.filter((row) => `${row.key_id} ${row.model}` === pair).length]),
    );
  });

  it("counts a call with two tags under each and says so; the total still counts it once", async function () {
    const summary = await getUsageSummary(aliceClient, { apiKey: triageKey, groupBy: ["tag"] });
    const byTag = Object.fromEntries(summary.groups.map((g) => [g.tag, g.calls]));
    expect(byTag).to.deep.equal({ "team:sales": 1, "team:support": 7, "workflow:triage": 7 });
    expect(summary.records_in_several_groups).to.equal(7);
    expect(summary.groups.reduce((sum, g) => sum + g.calls, 0)).to.equal(15);
    expect(summary.total.calls).to.equal(8);
    expect(summary.notes.join(" ")).to.contain("more than the total");
  });

  it("covers [from, to): a call served exactly at `to` is left out, as /v1/usage leaves it out", async function () {
    const { data } = await exportRows();
    const to = data[data.length - 1].served_at;
    const from = data[0].served_at;
    const before = data.filter((row) => row.served_at < to);
    const summary = await getUsageSummary(aliceClient, { apiKey: triageKey, from, to });
    expect(summary.filters).to.include({ from, to });
    expect(summary.total.calls).to.equal(before.length);
    expect(summary.total.calls, "the last call, served at `to`, is not counted").to.be.lessThan(data.length);
    expect(summary.total.cost).to.equal((await exportRows(`&from=${from}&to=${to}`)).total_cost);
    const atTo = await getUsageSummary(aliceClient, { apiKey: triageKey, from: to, to: to + 1 });
    expect(atTo.total.calls).to.equal(data.length - before.length);
    const empty = await get(`/v1/usage/summary?from=${to}&to=${to}`, triageKey);
    await expectError(empty, 400, "invalid_value", "from");
  });

  it("gives per workflow the retry tail, first-try success rate and cost per completed run once outcomes are recorded", async function () {
    const recorded = await recordOutcome(aliceClient, { apiKey: triageKey, traceId: "run-ok", type: "ticket_resolved", success: true, value: "12.5" });
    expect(recorded).to.include({ object: "outcome", trace_id: "run-ok", type: "ticket_resolved", success: true, value: "12.5" });
    expect(recorded.key_id).to.match(/^key_/);
    await recordOutcome(aliceClient, { apiKey: triageKey, traceId: "run-retried", type: "ticket_resolved", success: true });
    await recordOutcome(aliceClient, { apiKey: salesKey, traceId: "run-failed", type: "ticket_resolved", success: false });

    const { data } = await exportRows();
    const cost = (pick: (row: ExportRow) => boolean) => data.filter(pick).reduce((sum, row) => sum + BigInt(row.cost), 0n);
    const triage = (row: ExportRow) => row.tags.includes("workflow:triage");
    const retried = data.filter((row) => row.trace_id === "run-retried");
    expect(retried).to.have.length(2);
    const retryCost = BigInt(retried[1].cost);
    const runsCost = cost((row) => triage(row) && row.trace_id !== null);

    const { workflows } = await getUsageSummary(aliceClient, { apiKey: triageKey });
    expect(workflows.map((w) => w.workflow)).to.deep.equal(["key:" + data.find((row) => row.model === "large-model")!.key_id, "workflow:triage"]);
    const w = workflows[1];
    expect(w).to.deep.include({
      calls: 7,
      cost: cost(triage).toString(),
      retry_calls: 1,
      retry_cost: retryCost.toString(),
      runs: 4,
      runs_cost: runsCost.toString(),
      successful_runs: 2,
      first_try_successes: 1,
      first_try_success_rate: "0.2500",
      cost_per_completed_run: ((runsCost * 2n + 2n) / 4n).toString(),
    });
    const share = (retryCost * 20_000n + cost(triage)) / (2n * cost(triage));
    expect(w.retry_cost_share).to.equal(`0.${share.toString().padStart(4, "0")}`);
    const [tickets] = w.outcomes;
    const ticketCost = cost((row) => ["run-ok", "run-retried", "run-failed"].includes(row.trace_id ?? ""));
    expect(tickets).to.deep.include({ type: "ticket_resolved", outcomes: 3, successes: 2, failures: 1, cost: ticketCost.toString() });
    expect(tickets.cost_per_successful_outcome).to.equal(((ticketCost * 2n + 2n) / 4n).toString());
    const today = new Date(recorded.recorded_at * 1000).toISOString().slice(0, 10);
    expect(tickets.by_day.map((d) => [d.day, d.outcomes, d.successes])).to.deep.equal([[today, 3, 2]]);
  });

  describe("POST /v1/outcomes refuses, changing nothing", function () {
    let before: number;
    beforeEach(() => (before = h.gateway.ctx.store.outcomeCount()));
    afterEach(() => expect(h.gateway.ctx.store.outcomeCount(), "outcomes stored").to.equal(before));

    it("a trace no call of the buyer carries: 404; another buyer's trace gets exactly the same answer", async function () {
      const unknown = await expectError(await postOutcome({ trace_id: "no-such-run", type: "ticket_resolved", success: true }, bobKey), 404, "trace_not_found", "trace_id");
      const others = await expectError(await postOutcome({ trace_id: "-run-silent", type: "ticket_resolved", success: true }, bobKey), 404, "trace_not_found", "trace_id");
      expect(others).to.deep.equal({ ...unknown, message: unknown.message.replace("no-such-run", "-run-silent") });
      // Alice's own trace, with Bob's key: still unknown to Bob.
      const alices = await expectError(await postOutcome({ trace_id: "run-ok", type: "reply_sent", success: true }, bobKey), 404, "trace_not_found", "trace_id");
      expect(alices).to.deep.equal({ ...unknown, message: unknown.message.replace("no-such-run", "run-ok") });
    });

    it("a second outcome of the same type for a run: 409, and the first one stands", async function () {
      await expectError(await postOutcome({ trace_id: "run-ok", type: "ticket_resolved", success: false }), 409, "outcome_exists", "type");
      const outcome = h.gateway.ctx.store.outcomesOf(alice).find((o) => o.traceId === "run-ok" && o.type === "ticket_resolved");
      expect(outcome).to.include({ success: true, value: "12.5" });
      // The client raises it with its code and a hint.
      const error = await recordOutcome(aliceClient, { apiKey: triageKey, traceId: "run-ok", type: "ticket_resolved", success: true }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(GatewayRequestError);
      expect(error).to.include({ status: 409, code: "outcome_exists" });
    });

    const bad: Array<[string, unknown, string | null, string]> = [
      ["no trace_id", { type: "ticket_resolved", success: true }, "trace_id", "invalid_value"],
      ["a trace_id with a space", { trace_id: "run ok", type: "t", success: true }, "trace_id", "invalid_value"],
      ["a type with a space", { trace_id: "run-ok", type: "ticket resolved", success: true }, "type", "invalid_value"],
      ["success as a string", { trace_id: "run-ok", type: "x", success: "true" }, "success", "invalid_value"],
      ["a value in exponent form", { trace_id: "run-ok", type: "x", success: true, value: "1e5" }, "value", "invalid_value"],
      ["a value as a number", { trace_id: "run-ok", type: "x", success: true, value: 12.5 }, "value", "invalid_value"],
      ["a misspelt field", { trace_id: "run-ok", type: "x", sucess: true }, "sucess", "unknown_parameter"],
      ["a body that is an array", [{ trace_id: "run-ok" }], null, "invalid_body"],
    ];
    for (const [what, body, param, code] of bad) {
      it(`${what}: 400 naming it`, async function () {
        const error = await expectError(await postOutcome(body), 400, code, param);
        expect(error.type).to.equal("invalid_request_error");
      });
    }

    it("a read session: 401, it only reads", async function () {
      const { token } = await openSession(aliceClient);
      await expectError(await postOutcome({ trace_id: "run-ok", type: "other", success: true }, token), 401, "session_not_api_key", null);
    });
  });

  it("refuses unknown parameters and bad dimensions naming them", async function () {
    await expectError(await get("/v1/usage/summary?groupby=key", triageKey), 400, "unknown_parameter", "groupby");
    await expectError(await get("/v1/usage/summary?group_by=key,team", triageKey), 400, "invalid_value", "group_by");
    await expectError(await get("/v1/usage/summary?group_by=key,key", triageKey), 400, "invalid_value", "group_by");
    await expectError(await get("/v1/usage/summary?limit=5", triageKey), 400, "invalid_value", "limit");
    await expectError(await get("/v1/usage/summary?view=log&group_by=day", triageKey), 400, "invalid_value", "group_by");
  });

  it("exports CSV: a row column, the dimensions, figures; a total row; cells quoted and formulas defused", async function () {
    const response = await get("/v1/usage/summary?group_by=trace,model&format=csv", triageKey);
    expect(response.status).to.equal(200);
    expect(response.headers.get("content-type")).to.match(/^text\/csv/);
    const lines = (await response.text()).trimEnd().split("\n");
    expect(lines[0]).to.equal("row,trace_id,model,calls,input_tokens,cached_input_tokens,output_tokens,cost,cost_formatted");
    // The trace "-run-silent" would be a formula in a spreadsheet: it is written as text.
    expect(lines.some((line) => line.startsWith("group,'-run-silent,small-model,1,"))).to.equal(true);
    const summary = await getUsageSummary(aliceClient, { apiKey: triageKey });
    expect(lines[lines.length - 1]).to.equal(`total,,,8,${summary.total.input_tokens},${summary.total.cached_input_tokens},${summary.total.output_tokens},${summary.total.cost},${summary.total.cost_formatted}`);
    // What no summary value holds today but a cell must survive: commas, quotes, line breaks.
    expect(["a,b", 'say "hi"', "two\nlines", "=1+1", "plain"].map(csvCell)).to.deep.equal(['"a,b"', '"say ""hi"""', '"two\nlines"', "'=1+1", "plain"]);
    // Four traced runs on the small model, and the untraced calls on each model.
    expect(lines.filter((line) => line.startsWith("group,"))).to.have.length(6);
  });

  it("lists the calls in the console's form, paged, per key; as CSV too", async function () {
    const { data } = await exportRows();
    const first = await getUsageLog(aliceClient, { apiKey: triageKey, limit: 5 });
    expect(first.has_more).to.equal(true);
    expect(first.data).to.have.length(5);
    const rest = await getUsageLog(aliceClient, { apiKey: triageKey, after: first.next_after!, limit: 5 });
    expect(rest.has_more).to.equal(false);
    const log = [...first.data, ...rest.data];
    expect(log.map((entry) => [entry.sequence, entry.key_id, entry.model, entry.cost, entry.input_tokens, entry.output_tokens])).to.deep.equal(
      data.map((row) => [row.sequence, row.key_id, row.model, row.cost, row.input_tokens, row.output_tokens]),
    );
    expect(log[0].time).to.equal(new Date(data[0].served_at * 1000).toISOString().replace(".000Z", "Z"));
    const salesKeyId = data.find((row) => row.model === "large-model")!.key_id;
    const sales = await getUsageLog(aliceClient, { apiKey: triageKey, keyId: salesKeyId });
    expect(sales.data.map((entry) => entry.key_id)).to.deep.equal([salesKeyId]);
    const csv = await (await get(`/v1/usage/summary?view=log&format=csv&key_id=${salesKeyId}`, triageKey)).text();
    expect(csv.trimEnd().split("\n")).to.deep.equal([
      "time,sequence,key_id,model,input_tokens,cached_input_tokens,output_tokens,cost,cost_formatted",
      [sales.data[0].time, sales.data[0].sequence, salesKeyId, "large-model", sales.data[0].input_tokens, sales.data[0].cached_input_tokens, sales.data[0].output_tokens, sales.data[0].cost, sales.data[0].cost_formatted].join(","),
    ]);
  });

  it("a read session reads the same summary as the key", async function () {
    const { token } = await openSession(aliceClient);
    const bySession = await getUsageSummary(aliceClient, { session: token, groupBy: ["key"] });
    const byKey = await getUsageSummary(aliceClient, { apiKey: salesKey, groupBy: ["key"] });
    expect(bySession).to.deep.equal(byKey);
    expect(bySession.total.calls).to.equal(8);
  });

  it("another buyer sees none of it: Bob's summary, workflows and log hold his one call", async function () {
    const bob = await getUsageSummary(aliceClient, { apiKey: bobKey, groupBy: ["trace"] });
    expect(bob.buyer).to.equal(h.market.buyers[1].address);
    expect(bob.total.calls).to.equal(1);
    expect(bob.groups.map((g) => g.trace_id)).to.deep.equal(["bob-run"]);
    expect(bob.workflows.map((w) => [w.workflow, w.calls, w.runs, w.successful_runs, w.outcomes.length])).to.deep.equal([["workflow:triage", 1, 1, 0, 0]]);
    const log = await getUsageLog(aliceClient, { apiKey: bobKey });
    expect(log.data).to.have.length(1);
    expect(log.data[0].cost).to.equal(bob.total.cost);
  });
});
