/**
 * The metered gateway through the official `openai` client: what a buyer sees (answers, receipts,
 * balance, usage export) and what the gateway records and charges.
 */
import { expect } from "chai";
import { get_encoding } from "tiktoken";
import { hashTypedData, verifyTypedData, keccak256, toBytes, type Address, type Hex } from "viem";
import { recordCost } from "../../server/chain/pricing";
import { usageReceiptTypes } from "../../server/chain/eip712";
import { hashReceipt } from "../../server/chain/usage-batch";
import { contentHashOf } from "../../server/gateway/metering/content-hash";
import { parseReceiptHeader, usageReceiptFromEnvelope, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { LARGE_PRICES, SMALL_PRICES, USD } from "../../scripts/lib/marketplace-fixtures";
import { EMBED_PRICES, startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";


/** What any buyer can do with nothing but an EIP-712 library and the gateway's address. */
async function verifyReceipt(envelope: ReceiptEnvelope, gatewaySigner: Address): Promise<boolean> {
  return verifyTypedData({
    address: gatewaySigner,
    domain: envelope.domain,
    types: usageReceiptTypes,
    primaryType: "UsageReceipt",
    message: usageReceiptFromEnvelope(envelope),
    signature: envelope.signature,
  });
}

describe("gateway: metered chat completions and embeddings", function () {
  let h: GatewayHarness;
  let key: string;
  let keyId: string;
  const store = () => h.gateway.ctx.store;

  before(async function () {
    h = await startGatewayHarness();
    const buyer = h.market.buyers[0];
    await h.deposit(buyer, USD(50));
    ({ key, id: keyId } = await h.createKey(buyer, { tags: ["team:search", "workflow:nightly"] }));
  });
  after(async () => h?.close());

  it("answers a non-streaming call and signs a receipt any EIP-712 library verifies against the gateway key", async function () {
    const client = h.openai(key);
    const params = { model: "small-model", messages: [{ role: "user" as const, content: "Say something about tolls." }], max_tokens: 40 };
    const raw = await client.chat.completions.create(params).asResponse();
    const bodyBytes = new Uint8Array(await raw.arrayBuffer());
    const body = JSON.parse(Buffer.from(bodyBytes).toString("utf8"));
    expect(body.model).to.equal("small-model");
    expect(body.choices[0].message.content).to.be.a("string").and.not.empty;

    const envelope = parseReceiptHeader(raw.headers.get("x-tollgate-receipt")!);
    expect(await verifyReceipt(envelope, h.signer)).to.equal(true);
    expect(envelope.signer).to.equal(h.signer);
    expect(envelope.domain.verifyingContract).to.equal(await h.market.tollgate.getAddress());
    // A receipt altered in any field no longer verifies.
    const forged = { ...envelope, receipt: { ...envelope.receipt, cost: "1" } };
    expect(await verifyReceipt(forged, h.signer)).to.equal(false);

    // Counts are the upstream's usage; the cost is the on-chain formula at the on-chain prices.
    const message = usageReceiptFromEnvelope(envelope);
    expect(message.inputTokens).to.equal(body.usage.prompt_tokens);
    expect(message.outputTokens).to.equal(body.usage.completion_tokens);
    expect(message.outputTokens).to.be.at.most(40);
    expect([message.inputPrice, message.cachedInputPrice, message.outputPrice]).to.deep.equal([SMALL_PRICES.input, SMALL_PRICES.cachedInput, SMALL_PRICES.output]);
    expect(message.cost).to.equal(recordCost(message, SMALL_PRICES));
    expect(message.buyer).to.equal(h.market.buyers[0].address);

    // The content hash commits to the exact bytes exchanged, salted.
    const requestHash = keccak256(toBytes(JSON.stringify(params)));
    expect(envelope.content.requestHash).to.equal(requestHash);
    expect(envelope.content.responseHash).to.equal(keccak256(bodyBytes));
    expect(contentHashOf(envelope.content.salt, requestHash, keccak256(bodyBytes))).to.equal(message.contentHash);

    // The same receipt is in the durable store under its sequence, and the contract hashes it the same way.
    const record = store().recordBySequence(message.sequence)!;
    expect(record.receiptHash).to.equal(envelope.receiptHash);
    expect(record.signature).to.equal(envelope.signature);
    // The receipt hash is the EIP-712 struct hash (the batch's Merkle leaf); the contract computes the same digest.
    expect(envelope.receiptHash).to.equal(hashReceipt(message));
    const digest = hashTypedData({ domain: envelope.domain, types: usageReceiptTypes, primaryType: "UsageReceipt", message });
    expect(await h.market.tollgate.hashUsageReceipt(message)).to.equal(digest);
  });

  it("streams, strips the usage chunk the client did not ask for, and ends with a receipt chunk before [DONE]", async function () {
    const client = h.openai(key);
    const stream = await client.chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "Stream me a sentence." }], max_tokens: 30, stream: true });
    const chunks: Array<Record<string, unknown>> = [];
    for await (const chunk of stream) chunks.push(chunk as unknown as Record<string, unknown>);
    const receiptChunks = chunks.filter((chunk) => "tollgate_receipt" in chunk);
    expect(receiptChunks).to.have.length(1);
    expect(chunks[chunks.length - 1]).to.equal(receiptChunks[0]);
    expect(chunks.filter((chunk) => chunk.usage)).to.have.length(0);
    const envelope = receiptChunks[0].tollgate_receipt as ReceiptEnvelope;
    expect(await verifyReceipt(envelope, h.signer)).to.equal(true);

    // The gateway asked the upstream for usage anyway, and billed the upstream's numbers.
    const sent = h.upstreamRequests[h.upstreamRequests.length - 1];
    expect(sent.body.stream_options).to.deep.equal({ include_usage: true });
    const text = chunks.map((chunk) => ((chunk.choices as Array<{ delta?: { content?: string } }>)[0]?.delta?.content ?? "")).join("");
    const enc = get_encoding("o200k_base");
    try {
      expect(Number(envelope.receipt.outputTokens)).to.equal(enc.encode_ordinary(text).length);
    } finally {
      enc.free();
    }
    expect(envelope.countSource).to.equal("upstream");
  });

  it("passes the usage chunk through when the client asks for include_usage", async function () {
    const client = h.openai(key);
    const stream = await client.chat.completions.create({
      model: "large-model",
      messages: [{ role: "user", content: "Think, then answer." }],
      max_tokens: 60,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: { prompt_tokens: number; completion_tokens: number; completion_tokens_details?: { reasoning_tokens?: number } } | undefined;
    let envelope: ReceiptEnvelope | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      if ("tollgate_receipt" in chunk) envelope = (chunk as unknown as { tollgate_receipt: ReceiptEnvelope }).tollgate_receipt;
    }
    expect(usage, "usage chunk").to.not.equal(undefined);
    expect(envelope, "receipt chunk").to.not.equal(undefined);
    expect(Number(envelope!.receipt.outputTokens)).to.equal(usage!.completion_tokens);
    // Reasoning tokens are billed as output and reported on the record for attribution.
    expect(usage!.completion_tokens_details?.reasoning_tokens).to.be.greaterThan(0);
    expect(envelope!.reasoningTokens).to.equal(usage!.completion_tokens_details!.reasoning_tokens);
    expect(BigInt(envelope!.receipt.cost)).to.equal(recordCost(usageReceiptFromEnvelope(envelope!), LARGE_PRICES));
    // The upstream got the mapped model name; the buyer saw the public one.
    expect(h.upstreamRequests[h.upstreamRequests.length - 1].body.model).to.equal("large-reasoning");
  });

  it("passes tools and unknown parameters through to the upstream untouched", async function () {
    const client = h.openai(key);
    const tools = [{ type: "function" as const, function: { name: "lookup_toll", description: "Find a toll", parameters: { type: "object", properties: { road: { type: "string" } } } } }];
    const completion = await client.chat.completions.create({
      model: "small-model",
      messages: [{ role: "user", content: "Which toll applies on route 9?" }],
      tools,
      tool_choice: "required",
      max_tokens: 50,
      // @ts-expect-error an extra parameter a particular server understands
      top_k: 7,
    });
    expect(completion.choices[0].message.tool_calls?.[0]).to.have.nested.property("function.name", "lookup_toll");
    const sent = h.upstreamRequests[h.upstreamRequests.length - 1].body;
    expect(sent.tools).to.deep.equal(tools);
    expect(sent.top_k).to.equal(7);
    expect(sent.tool_choice).to.equal("required");
  });

  it("bills cached input tokens at the cached price when the upstream reports a cache hit", async function () {
    const client = h.openai(key);
    const history = [
      { role: "system" as const, content: "You are a careful assistant that explains road tolls in detail. ".repeat(20) },
      { role: "user" as const, content: "First question" },
    ];
    await client.chat.completions.create({ model: "small-model", messages: history, max_tokens: 10 });
    const raw = await client.chat.completions.create({ model: "small-model", messages: [...history.slice(0, 1), { role: "user", content: "Second question" }], max_tokens: 10 }).asResponse();
    const body = await raw.json();
    const envelope = parseReceiptHeader(raw.headers.get("x-tollgate-receipt")!);
    expect(body.usage.prompt_tokens_details.cached_tokens).to.be.greaterThan(0);
    expect(Number(envelope.receipt.cachedInputTokens)).to.equal(body.usage.prompt_tokens_details.cached_tokens);
    expect(BigInt(envelope.receipt.cost)).to.equal(recordCost(usageReceiptFromEnvelope(envelope), SMALL_PRICES));
  });

  it("meters embeddings on input tokens only", async function () {
    const client = h.openai(key);
    const raw = await client.embeddings.create({ model: "embed-model", input: ["toll road", "도로 통행료", "const toll = 1n;"] }).asResponse();
    const body = await raw.json();
    const envelope = parseReceiptHeader(raw.headers.get("x-tollgate-receipt")!);
    expect(body.data).to.have.length(3);
    expect(Number(envelope.receipt.inputTokens)).to.equal(body.usage.prompt_tokens);
    expect(Number(envelope.receipt.outputTokens)).to.equal(0);
    expect(BigInt(envelope.receipt.cost)).to.equal(recordCost(usageReceiptFromEnvelope(envelope), EMBED_PRICES));
    expect(await verifyReceipt(envelope, h.signer)).to.equal(true);
  });

  it("lists the models on sale with their on-chain prices", async function () {
    const client = h.openai(key);
    const models = await client.models.list();
    const byId = new Map(models.data.map((model) => [model.id, model as unknown as { tollgate: { prices: Record<string, string>; model_id: number } }]));
    expect([...byId.keys()]).to.deep.equal(["small-model", "large-model", "embed-model"]);
    expect(byId.get("large-model")!.tollgate.prices).to.deep.equal({
      input_per_million: LARGE_PRICES.input.toString(),
      cached_input_per_million: LARGE_PRICES.cachedInput.toString(),
      output_per_million: LARGE_PRICES.output.toString(),
    });
    const one = await client.models.retrieve("small-model");
    expect(one.id).to.equal("small-model");
  });

  it("a scheduled price change shows on /v1/models and applies only from its effective time", async function () {
    const { tollgate, provider, smallModel } = h.market;
    const newPrices = { input: SMALL_PRICES.input * 2n, cachedInput: SMALL_PRICES.cachedInput * 2n, output: SMALL_PRICES.output * 2n };
    await (await tollgate.connect(provider).scheduleModelPrice(smallModel, newPrices)).wait();
    await h.gateway.ctx.state.refresh();
    const model = (await h.openai(key).models.retrieve("small-model")) as unknown as { tollgate: { prices: Record<string, string>; scheduled: Array<Record<string, string>> } };
    expect(model.tollgate.prices.input_per_million).to.equal(SMALL_PRICES.input.toString());
    expect(model.tollgate.scheduled).to.have.length(1);
    expect(model.tollgate.scheduled[0].input_per_million).to.equal(newPrices.input.toString());
    const raw = await h.openai(key).chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "price check" }], max_tokens: 5 }).asResponse();
    const envelope = parseReceiptHeader(raw.headers.get("x-tollgate-receipt")!);
    expect(BigInt(envelope.receipt.inputPrice)).to.equal(SMALL_PRICES.input);
  });

  it("GET /v1/balance explains what the buyer can spend", async function () {
    const response = await fetch(`${h.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });
    const body = await response.json();
    expect(response.status).to.equal(200);
    expect(body.balance).to.equal(USD(50).toString());
    const records = store().recordsOf(h.market.buyers[0].address as Address);
    const used = records.reduce((sum, record) => sum + record.cost, 0n);
    expect(BigInt(body.unsettled_usage)).to.equal(used);
    expect(body.open_reservations).to.equal("0");
    const small = body.spendable_by_model.find((m: { model: string }) => m.model === "small-model");
    expect(BigInt(small.spendable)).to.equal(USD(50) - used);
    expect(body.key.id).to.equal(keyId);
    expect(BigInt(body.key.spent)).to.equal(used);
  });

  it("GET /v1/usage lists records with receipts, filters by tag, model and time, and exports CSV", async function () {
    const auth = { authorization: `Bearer ${key}` };
    const all = await (await fetch(`${h.url}/v1/usage`, { headers: auth })).json();
    const records = store().recordsOf(h.market.buyers[0].address as Address);
    expect(all.data).to.have.length(records.length);
    expect(all.data.every((row: { status: string }) => row.status === "unsettled")).to.equal(true);
    expect(await verifyReceipt(all.data[0].receipt, h.signer)).to.equal(true);
    expect(BigInt(all.total_cost)).to.equal(records.reduce((sum, record) => sum + record.cost, 0n));

    const tagged = await (await fetch(`${h.url}/v1/usage?tag=team:search`, { headers: auth })).json();
    expect(tagged.data).to.have.length(records.length);
    const none = await (await fetch(`${h.url}/v1/usage?tag=team:other`, { headers: auth })).json();
    expect(none.data).to.have.length(0);
    const large = await (await fetch(`${h.url}/v1/usage?model=large-model`, { headers: auth })).json();
    expect(large.data.map((row: { model: string }) => row.model)).to.deep.equal(records.filter((r) => r.modelName === "large-model").map(() => "large-model"));
    const future = await (await fetch(`${h.url}/v1/usage?from=${h.gateway.ctx.state.now() + 3600}`, { headers: auth })).json();
    expect(future.data).to.have.length(0);

    const csv = await fetch(`${h.url}/v1/usage?format=csv`, { headers: auth });
    expect(csv.headers.get("content-type")).to.match(/^text\/csv/);
    const lines = (await csv.text()).trim().split("\n");
    expect(lines[0].split(",")[0]).to.equal("sequence");
    expect(lines).to.have.length(records.length + 1);
    expect(lines[1].split(",")[0]).to.equal(records[0].sequence.toString());
  });

  it("draws on credits for covered models only", async function () {
    const buyer = h.market.buyers[1];
    const { tollgate } = h.market;
    // Credits only, no balance: 2 credits of 1 USD for small-model.
    await (await tollgate.connect(buyer).buyCredits(h.planId, 2, buyer.address)).wait();
    const { key: creditKey } = await h.createKey(buyer);
    const client = h.openai(creditKey);
    const completion = await client.chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "on credits" }], max_tokens: 20 });
    expect(completion.choices).to.have.length(1);
    let refused: unknown;
    try {
      await client.chat.completions.create({ model: "large-model", messages: [{ role: "user", content: "not covered" }], max_tokens: 20 });
    } catch (error) {
      refused = error;
    }
    expect(refused).to.have.property("status", 402);
  });

  it("charges an abandoned stream for what was produced and aborts the upstream call", async function () {
    const slow = await startGatewayHarness({ simulator: { interTokenDelayMs: 15 } });
    try {
      const buyer = slow.market.buyers[2];
      await slow.deposit(buyer, USD(10));
      const { key: slowKey } = await slow.createKey(buyer);
      const controller = new AbortController();
      const stream = await slow.openai(slowKey).chat.completions.create(
        { model: "small-model", messages: [{ role: "user", content: "A long answer please" }], max_tokens: 400, stream: true },
        { signal: controller.signal },
      );
      let received = "";
      try {
        for await (const chunk of stream) {
          received += chunk.choices[0]?.delta?.content ?? "";
          if (received.length > 40) controller.abort();
        }
      } catch {
        // the client's own abort
      }
      // Wait until the gateway has written the record of the cut stream.
      for (let i = 0; i < 200 && slow.gateway.ctx.store.recordCount() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      const [record] = slow.gateway.ctx.store.recordsOf(buyer.address as Address);
      expect(record, "a record of the abandoned stream").to.not.equal(undefined);
      expect(record.completed).to.equal(false);
      expect(record.countSource).to.equal("gateway");
      expect(record.outputTokens).to.be.greaterThan(0);
      expect(record.outputTokens).to.be.lessThan(400);
      expect(record.cost).to.equal(recordCost(record, SMALL_PRICES));
      for (let i = 0; i < 200 && slow.sim.stats().active > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(slow.sim.stats().aborted).to.equal(1);
      expect(slow.gateway.ctx.ledger.openReservations()).to.equal(0);
    } finally {
      await slow.close();
    }
  });

  it("answers 503 chain_unavailable and charges nothing when the buyer's balance cannot be read from the chain", async function () {
    const reader = h.gateway.ctx.state.reader;
    const original = reader.buyerSnapshot;
    reader.buyerSnapshot = () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:8545"));
    const before = store().recordCount();
    let failure: unknown;
    try {
      h.gateway.ctx.state.forget(h.market.buyers[0].address as Address);
      await h.openai(key).chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "chain down" }], max_tokens: 5 });
    } catch (error) {
      failure = error;
    } finally {
      reader.buyerSnapshot = original;
    }
    expect(failure).to.have.property("status", 503);
    expect(failure).to.have.property("code", "chain_unavailable");
    expect(store().recordCount()).to.equal(before);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
  });

  it("exports the tokenizer cross-check and call counts on /metrics, and reports health", async function () {
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).to.match(/tollgate_token_count_divergence_ratio_count\{model="small-model",direction="input"\} [1-9]/);
    expect(metrics).to.match(/tollgate_metered_calls_total\{model="small-model",endpoint="chat.completions",streamed="false",completed="true"\} [1-9]/);
    // Group commit: every record written went through a commit, and every metered call read the buyer's balance.
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1]);
    const records = store().recordCount();
    expect(value("tollgate_store_group_records_sum")).to.equal(records);
    expect(value("tollgate_store_commit_seconds_count")).to.equal(value("tollgate_store_group_records_count"));
    expect(value("tollgate_store_commit_seconds_count")).to.be.within(1, records);
    expect(value("tollgate_balance_wait_seconds_count")).to.be.at.least(records);
    const health = await (await fetch(`${h.url}/health`)).json();
    expect(health).to.include({ status: "ok", signer: h.signer, signer_authorized: true });
    expect(health.next_sequence).to.equal(store().nextSequence().toString());
  });
});
