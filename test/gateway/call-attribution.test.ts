/**
 * Call attribution (issue 13): a call's trace, step, OpenAI `user` and `metadata`, and Idempotency-Key are
 * kept beside its usage record (never its content), appear in `/v1/usage` (JSON and CSV, filterable by trace),
 * and a call that repeats an earlier one is marked as a retry of the first try. Bad attribution is a 400 in
 * OpenAI's format that reserves, records and charges nothing.
 */
import { expect } from "chai";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

type ExportRow = {
  sequence: string;
  trace_id: string | null;
  step: string | null;
  user: string | null;
  metadata: Record<string, string> | null;
  idempotency_key: string | null;
  retry_of: string | null;
  cost: string;
};

describe("gateway: call attribution (trace, step, user, metadata, retries)", function () {
  let h: GatewayHarness;
  let key: string;
  let otherKey: string;

  const chat = (content: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) =>
    fetch(`${h.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}`, ...headers },
      body: JSON.stringify({ model: "small-model", messages: [{ role: "user", content }], max_tokens: 8, ...extra }),
    });
  const exportRows = async (query = "", bearer = key): Promise<ExportRow[]> => {
    const response = await fetch(`${h.url}/v1/usage${query ? `?${query}` : ""}`, { headers: { authorization: `Bearer ${bearer}` } });
    expect(response.status, await response.clone().text()).to.equal(200);
    return ((await response.json()) as { data: ExportRow[] }).data;
  };
  const sequenceOf = (response: Response) => {
    const envelope = JSON.parse(Buffer.from(response.headers.get("x-tollgate-receipt")!, "base64url").toString("utf8")) as { receipt: { sequence: string } };
    return envelope.receipt.sequence;
  };

  before(async function () {
    h = await startGatewayHarness();
    await h.deposit(h.market.buyers[0], USD(20));
    await h.deposit(h.market.buyers[1], USD(20));
    ({ key } = await h.createKey(h.market.buyers[0], { tags: ["team:support", "workflow:triage"] }));
    ({ key: otherKey } = await h.createKey(h.market.buyers[1]));
  });
  after(async () => h?.close());

  it("keeps a call's trace, step, user and metadata with its record, through the official openai client", async function () {
    const client = h.openai(key);
    const raw = await client.chat.completions
      .create(
        { model: "small-model", messages: [{ role: "user", content: "Classify this ticket." }], max_tokens: 8, user: "customer-42", metadata: { ticket: "T-1", queue: "billing" } },
        { headers: { "x-tollgate-trace-id": "run-a", "x-tollgate-step": "classify" } },
      )
      .asResponse();
    expect(raw.status).to.equal(200);
    const sequence = sequenceOf(raw);
    const [row] = await exportRows("trace_id=run-a");
    expect(row).to.deep.include({ sequence, trace_id: "run-a", step: "classify", user: "customer-42", idempotency_key: null, retry_of: null });
    expect(row.metadata).to.deep.equal({ ticket: "T-1", queue: "billing" });
    // The store holds the attribution beside the record, not in it: the receipt and its hash are unchanged in shape.
    const stored = h.gateway.ctx.store.recordsOf((h.market.buyers[0].address as `0x${string}`), { traceId: "run-a" });
    expect(stored.map((r) => r.sequence.toString())).to.deep.equal([sequence]);
    expect(stored[0].attribution).to.deep.equal({ traceId: "run-a", step: "classify", user: "customer-42", metadata: { ticket: "T-1", queue: "billing" }, retryOf: null });
  });

  it("forwards metadata upstream only with store: true, as OpenAI requires, and never to embeddings; user always", async function () {
    const lastUpstream = () => h.upstreamRequests[h.upstreamRequests.length - 1].body;
    expect((await chat("Attributed only.", {}, { metadata: { team: "a" }, user: "u-1" })).status).to.equal(200);
    expect(lastUpstream()).to.not.have.property("metadata");
    expect(lastUpstream()).to.include({ user: "u-1" });
    expect((await chat("Stored too.", {}, { metadata: { team: "a" }, store: true })).status).to.equal(200);
    expect(lastUpstream()).to.deep.include({ metadata: { team: "a" }, store: true });
    const embedded = await fetch(`${h.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "embed-model", input: "hello", metadata: { team: "a" } }),
    });
    expect(embedded.status, await embedded.clone().text()).to.equal(200);
    expect(lastUpstream()).to.not.have.property("metadata");
    const rows = await exportRows();
    expect(rows.filter((row) => row.metadata?.team === "a")).to.have.length(3);
  });

  it("marks a repeat of a trace's request, or of its step, as a retry of the first try; another trace's same request is a first try", async function () {
    const first = await chat("Summarise the ticket.", { "x-tollgate-trace-id": "run-b", "x-tollgate-step": "summarise" });
    const sameBytes = await chat("Summarise the ticket.", { "x-tollgate-trace-id": "run-b", "x-tollgate-step": "summarise" });
    const sameStep = await chat("Summarise the ticket, shorter.", { "x-tollgate-trace-id": "run-b", "x-tollgate-step": "summarise" });
    const nextStep = await chat("Draft a reply.", { "x-tollgate-trace-id": "run-b", "x-tollgate-step": "reply" });
    const otherRun = await chat("Summarise the ticket.", { "x-tollgate-trace-id": "run-c", "x-tollgate-step": "summarise" });
    for (const response of [first, sameBytes, sameStep, nextStep, otherRun]) expect(response.status).to.equal(200);

    const rows = await exportRows();
    const bySequence = new Map(rows.map((row) => [row.sequence, row]));
    expect(bySequence.get(sequenceOf(first))!.retry_of).to.equal(null);
    expect(bySequence.get(sequenceOf(sameBytes))!.retry_of).to.equal(sequenceOf(first));
    expect(bySequence.get(sequenceOf(sameStep))!.retry_of).to.equal(sequenceOf(first));
    expect(bySequence.get(sequenceOf(nextStep))!.retry_of).to.equal(null);
    expect(bySequence.get(sequenceOf(otherRun))!.retry_of).to.equal(null);
  });

  it("marks a call carrying an Idempotency-Key seen before as a retry, even outside a trace; another buyer's same key is not", async function () {
    const first = await chat("Translate: bonjour", { "idempotency-key": "job-7" });
    const again = await chat("Translate: bonjour", { "idempotency-key": "job-7" });
    const otherBuyer = await fetch(`${h.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${otherKey}`, "idempotency-key": "job-7" },
      body: JSON.stringify({ model: "small-model", messages: [{ role: "user", content: "Translate: bonjour" }], max_tokens: 8 }),
    });
    for (const response of [first, again, otherBuyer]) expect(response.status).to.equal(200);
    const rows = new Map((await exportRows()).map((row) => [row.sequence, row]));
    expect(rows.get(sequenceOf(first))).to.deep.include({ idempotency_key: "job-7", retry_of: null, trace_id: null });
    expect(rows.get(sequenceOf(again))!.retry_of).to.equal(sequenceOf(first));
    const [theirs] = await exportRows("", otherKey);
    expect(theirs).to.deep.include({ sequence: sequenceOf(otherBuyer), idempotency_key: "job-7", retry_of: null });
  });

  it("exports attribution as CSV columns after the audit columns, and leaves them empty for a call without any", async function () {
    const plain = await chat("No attribution here.");
    expect(plain.status).to.equal(200);
    const response = await fetch(`${h.url}/v1/usage?format=csv`, { headers: { authorization: `Bearer ${key}` } });
    const lines = (await response.text()).trimEnd().split("\n");
    const columns = lines[0].split(",");
    expect(columns.slice(-6)).to.deep.equal(["trace_id", "step", "user", "metadata", "idempotency_key", "retry_of"]);
    const rows = lines.slice(1).map((line) => Object.fromEntries(line.split(",").map((cell, i) => [columns[i], cell])));
    const classify = rows.find((row) => row.trace_id === "run-a")!;
    expect(classify).to.deep.include({ step: "classify", user: "customer-42", retry_of: "" });
    const last = rows.find((row) => row.sequence === sequenceOf(plain))!;
    expect([last.trace_id, last.step, last.user, last.metadata, last.idempotency_key, last.retry_of]).to.deep.equal(["", "", "", "", "", ""]);
  });

  describe("refuses bad attribution with a 400 naming it, and charges nothing", function () {
    const cases: Array<[string, Record<string, string>, Record<string, unknown>, string]> = [
      ["a trace id with a space", { "x-tollgate-trace-id": "run 1" }, {}, "x-tollgate-trace-id"],
      ["a trace id of 129 characters", { "x-tollgate-trace-id": "t".repeat(129) }, {}, "x-tollgate-trace-id"],
      ["a step without a trace", { "x-tollgate-step": "classify" }, {}, "x-tollgate-step"],
      ["an idempotency key of 256 characters", { "idempotency-key": "k".repeat(256) }, {}, "idempotency-key"],
      ["metadata with 17 pairs", {}, { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, "metadata"],
      ["a metadata value that is not a string", {}, { metadata: { ticket: 7 } }, "metadata"],
      ["metadata that is an array", {}, { metadata: ["a"] }, "metadata"],
      ["a user that is not a string", {}, { user: 42 }, "user"],
    ];
    for (const [what, headers, extra, param] of cases) {
      it(what, async function () {
        const store = h.gateway.ctx.store;
        const before = { records: store.recordCount(), spent: store.listApiKeys((h.market.buyers[0].address as `0x${string}`)).map((k) => k.spent) };
        const response = await chat("Refused.", headers, extra);
        expect(response.status).to.equal(400);
        const body = (await response.json()) as { error: { type: string; param: string; code: string; message: string } };
        expect(body.error).to.include({ type: "invalid_request_error", param, code: "invalid_attribution" });
        expect(body.error.message).to.be.a("string").and.not.empty;
        expect(store.recordCount()).to.equal(before.records);
        expect(store.listApiKeys((h.market.buyers[0].address as `0x${string}`)).map((k) => k.spent)).to.deep.equal(before.spent);
        expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
      });
    }
  });
});
