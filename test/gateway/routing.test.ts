/**
 * Routing (issue 13): a buyer calls the alias `auto` and the gateway serves the cheapest model whose tier meets
 * what the request needs (prompt length, tools, reasoning effort, the buyer's hint), says which and why in the
 * response, its headers and the receipt envelope, keeps what the dearest candidate would have cost, and falls
 * back to the next candidate when a model server fails, charging only the call that was served. A routing
 * declaration that cannot work is refused at start-up.
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { getAddress, type Address } from "viem";
import { getUsageSummary } from "../../client";
import { LARGE_PRICES, SMALL_PRICES, USD } from "../../scripts/lib/marketplace-fixtures";
import { recordCost, type ModelPrices } from "../../server/chain/pricing";
import { parseReceiptHeader, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { ConfigError, parseGatewayConfig } from "../../server/config";
import type { StoredUsageRecord } from "../../server/store/usage-store";
import { startSimulatedUpstream } from "../../server/upstream/simulated-upstream";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

const SIGNER = `0x${"11".repeat(32)}`;
const short = () => [{ role: "user" as const, content: "Say hello." }];
/** Well over the 200-token rule of the policy below. */
const long = () => [{ role: "user" as const, content: "Summarise the quarterly figures for the support team. ".repeat(60) }];
const weatherTool = { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } };

const ROUTING = {
  levels: ["small", "large"],
  tiers: { "small-model": "small", "large-model": "large" },
  policies: {
    // The dearer model is listed first: the choice is by cost, not by the list's order.
    auto: {
      candidates: ["large-model", "small-model"],
      rules: { promptTokens: [{ atLeast: 200, tier: "large" }], tools: "large", reasoningEffort: { high: "large" } },
    },
    "no-hints": { candidates: ["small-model", "large-model"], rules: { honorHint: false } },
  },
};

function envelopeOf(response: Response): ReceiptEnvelope {
  return parseReceiptHeader(response.headers.get("x-tollgate-receipt")!);
}

/** The cost of a record's counts at other prices: the independent figure the savings are checked against. */
const costAt = (record: StoredUsageRecord, prices: ModelPrices) => recordCost(record, prices);

interface LedgerView {
  records: number;
  nextSequence: bigint;
  spent: string;
}

function ledgerView(h: GatewayHarness, buyer: Address, keyId: string): LedgerView {
  const key = h.gateway.ctx.store.listApiKeys(buyer).find((k) => k.id === keyId)!;
  return { records: h.gateway.ctx.store.recordCount(), nextSequence: h.gateway.ctx.store.nextSequence(), spent: key.spent.toString() };
}

async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

describe("gateway: routing to the cheapest model good enough", function () {
  describe("choosing the model", function () {
    let h: GatewayHarness;
    let buyer: Address;
    let key: string;
    let keyId: string;
    let client: OpenAI;

    const chat = (body: Record<string, unknown>, headers: Record<string, string> = {}, bearer = key) =>
      fetch(`${h.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${bearer}`, ...headers },
        body: JSON.stringify({ model: "auto", max_tokens: 16, ...body }),
      });

    before(async function () {
      h = await startGatewayHarness({ config: { routing: ROUTING } });
      buyer = getAddress(h.market.buyers[0].address);
      await h.deposit(h.market.buyers[0], USD(20));
      ({ key, id: keyId } = await h.createKey(h.market.buyers[0]));
      client = h.openai(key);
    });
    after(async () => h?.close());

    it("sends a short prompt to the small model and names the alias and the reason in the answer, the headers and the receipt", async function () {
      const { data, response } = await client.chat.completions.create({ model: "auto", messages: short(), max_tokens: 16 }).withResponse();
      expect(data.model).to.equal("small-model");
      expect(h.upstreamRequests.at(-1)!.body.model).to.equal("small-model");
      expect(response.headers.get("x-tollgate-routed-from")).to.equal("auto");
      expect(response.headers.get("x-tollgate-route-reason")).to.equal("default");
      expect(response.headers.get("x-tollgate-route-fallbacks")).to.equal("0");
      const envelope = parseReceiptHeader(response.headers.get("x-tollgate-receipt")!);
      expect(envelope.model).to.equal("small-model");
      expect(BigInt(envelope.receipt.modelId)).to.equal(h.market.smallModel);
      expect(envelope.routing).to.deep.equal({ requested: "auto", reason: "default", fallbacks: 0 });
    });

    it("sends a long prompt, a call with tools, reasoning_effort high, or a buyer's hint to the large model, each with its rule as the reason", async function () {
      const cases: { body: Record<string, unknown>; headers?: Record<string, string>; reason: string }[] = [
        { body: { messages: long() }, reason: "prompt_tokens>=200" },
        { body: { messages: short(), tools: [weatherTool] }, reason: "tools" },
        { body: { messages: short(), reasoning_effort: "high" }, reason: "reasoning_effort=high" },
        { body: { messages: short() }, headers: { "x-tollgate-min-tier": "large" }, reason: "hint" },
        { body: { messages: short() }, headers: { "x-tollgate-min-tier": "1" }, reason: "hint" },
      ];
      for (const { body, headers, reason } of cases) {
        const response = await chat(body, headers);
        expect(response.status, `${reason}: ${await response.clone().text()}`).to.equal(200);
        expect(((await response.json()) as { model: string }).model, reason).to.equal("large-model");
        expect(response.headers.get("x-tollgate-route-reason")).to.equal(reason);
        expect(envelopeOf(response).routing).to.deep.equal({ requested: "auto", reason, fallbacks: 0 });
        expect(BigInt(envelopeOf(response).receipt.modelId)).to.equal(h.market.largeModel);
      }
      // A rule the request does not meet leaves the small model: low effort, and a hint at the lowest tier.
      for (const [body, headers] of [[{ messages: short(), reasoning_effort: "low" }, {}], [{ messages: short() }, { "x-tollgate-min-tier": "small" }]] as const) {
        const response = await chat(body, headers);
        expect(((await response.json()) as { model: string }).model).to.equal("small-model");
        expect(response.headers.get("x-tollgate-route-reason")).to.equal("default");
      }
    });

    it("streams the chosen model in every chunk and the routing in the final receipt chunk", async function () {
      const stream = await client.chat.completions.create({ model: "auto", messages: short(), max_tokens: 16, stream: true, tools: [weatherTool] });
      const models = new Set<string>();
      let receipt: ReceiptEnvelope | undefined;
      for await (const chunk of stream) {
        models.add(chunk.model);
        const carried = (chunk as unknown as { tollgate_receipt?: ReceiptEnvelope }).tollgate_receipt;
        if (carried) receipt = carried;
      }
      expect([...models]).to.deep.equal(["large-model"]);
      expect(receipt!.model).to.equal("large-model");
      expect(receipt!.routing).to.deep.equal({ requested: "auto", reason: "tools", fallbacks: 0 });
    });

    it("refuses a bad or unservable hint with a 400 that reserves and charges nothing", async function () {
      const before = ledgerView(h, buyer, keyId);
      for (const [model, hint, fragment] of [
        ["auto", "huge", "must be one of small (0), large (1)"],
        ["auto", "7", "must be one of small (0), large (1)"],
        ["no-hints", "large", "does not take a x-tollgate-min-tier hint"],
      ]) {
        const response = await chat({ model, messages: short() }, { "x-tollgate-min-tier": hint });
        expect(response.status).to.equal(400);
        const { error } = (await response.json()) as { error: { code: string; param: string; message: string } };
        expect(error).to.include({ code: "invalid_min_tier", param: "x-tollgate-min-tier" });
        expect(error.message).to.include(fragment);
      }
      expect(ledgerView(h, buyer, keyId)).to.deep.equal(before);
      expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
    });

    it("treats an unknown alias as any unknown model: 404 model_not_found", async function () {
      const before = ledgerView(h, buyer, keyId);
      let caught: unknown;
      try {
        await client.chat.completions.create({ model: "turbo", messages: short(), max_tokens: 16 });
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(OpenAI.NotFoundError);
      expect((caught as InstanceType<typeof OpenAI.NotFoundError>).code).to.equal("model_not_found");
      expect(ledgerView(h, buyer, keyId)).to.deep.equal(before);
    });

    it("routes only to models the API key may use, and says so when none that is good enough is allowed", async function () {
      const { key: smallOnly } = await h.createKey(h.market.buyers[0], { models: ["small-model"] });
      const ok = await chat({ messages: short() }, {}, smallOnly);
      expect(((await ok.json()) as { model: string }).model).to.equal("small-model");
      const refused = await chat({ messages: short(), tools: [weatherTool] }, {}, smallOnly);
      expect(refused.status).to.equal(403);
      const { error } = (await refused.json()) as { error: { code: string; message: string } };
      expect(error.code).to.equal("model_not_allowed");
      expect(error.message).to.include("tier 1 (large) (tools)").and.include("`large-model`: API key");
    });

    it("lists the aliases with their candidates and rules on /v1/models, and describes one at /v1/models/auto", async function () {
      const list = (await (await fetch(`${h.url}/v1/models`)).json()) as { data: { id: string }[]; aliases: { id: string; tollgate: { kind: string; candidates: unknown[]; rules: { tools: unknown } } }[] };
      expect(list.data.map((model) => model.id)).to.not.include("auto");
      const auto = list.aliases.find((alias) => alias.id === "auto")!;
      expect(auto.tollgate.kind).to.equal("alias");
      expect(auto.tollgate.candidates).to.deep.equal([
        { model: "large-model", tier: 1, level: "large" },
        { model: "small-model", tier: 0, level: "small" },
      ]);
      expect(auto.tollgate.rules.tools).to.deep.equal({ tier: 1, level: "large" });
      expect(list.aliases.map((alias) => alias.id)).to.deep.equal(["auto", "no-hints"]);
      const one = await client.models.retrieve("auto");
      expect(one.id).to.equal("auto");
      expect((one as unknown as { tollgate: { kind: string } }).tollgate.kind).to.equal("alias");
    });

    it("keeps what the dearest candidate would have cost, and the savings equal dearest − actual to the unit", async function () {
      // One call that names its model: not routed, so neither in the savings nor with a routing row.
      const named = await client.chat.completions.create({ model: "large-model", messages: short(), max_tokens: 16 }).withResponse();
      expect(named.response.headers.get("x-tollgate-routed-from")).to.equal(null);
      expect(parseReceiptHeader(named.response.headers.get("x-tollgate-receipt")!).routing).to.equal(undefined);

      const records = h.gateway.ctx.store.recordsOf(buyer);
      const routed = records.filter((record) => record.routing);
      expect(routed.length).to.be.greaterThan(5);
      expect(routed.some((r) => r.modelName === "small-model") && routed.some((r) => r.modelName === "large-model")).to.equal(true);
      let cost = 0n;
      let dearest = 0n;
      for (const record of routed) {
        // The large model is the dearer at any counts, so it is each call's comparison, at its own prices.
        expect(record.routing!.dearestModel).to.equal("large-model");
        expect(record.routing!.dearestCost).to.equal(costAt(record, LARGE_PRICES));
        expect(record.cost).to.equal(costAt(record, record.modelName === "small-model" ? SMALL_PRICES : LARGE_PRICES));
        cost += record.cost;
        dearest += record.routing!.dearestCost;
      }
      const savings = h.gateway.ctx.store.routingSavings(buyer);
      expect(savings).to.deep.equal({ routedCalls: BigInt(routed.length), cost, dearestCost: dearest, saved: dearest - cost });
      expect(savings.saved > 0n).to.equal(true);
      // The period is half-open on served time: nothing was served before the first record.
      const first = Math.min(...records.map((record) => record.servedAt));
      expect(h.gateway.ctx.store.routingSavings(buyer, 0, first)).to.deep.equal({ routedCalls: 0n, cost: 0n, dearestCost: 0n, saved: 0n });

      // The usage report says the same, through the client action a finance tool would use.
      const report = await getUsageSummary(h.market.clientOf(buyer, { url: h.url }), { apiKey: key });
      expect(report.routing).to.deep.include({ routed_calls: routed.length, cost: cost.toString(), dearest_cost: dearest.toString(), saved: (dearest - cost).toString(), whole_range: false });

      const response = await fetch(`${h.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
      const rows = ((await response.json()) as { data: { sequence: string; cost: string; routing: Record<string, unknown> | null }[] }).data;
      const bySequence = new Map(rows.map((row) => [row.sequence, row]));
      for (const record of routed) {
        expect(bySequence.get(record.sequence.toString())!.routing).to.deep.equal({
          alias: "auto",
          reason: record.routing!.reason,
          fallbacks: 0,
          dearest_model: "large-model",
          dearest_cost: record.routing!.dearestCost.toString(),
          saved: (record.routing!.dearestCost - record.cost).toString(),
        });
      }
      expect(bySequence.get(parseReceiptHeader(named.response.headers.get("x-tollgate-receipt")!).receipt.sequence)!.routing).to.equal(null);
    });
  });

  describe("falling back when a model server fails", function () {
    let h: GatewayHarness;
    let flaky: Awaited<ReturnType<typeof startSimulatedUpstream>>;
    let slow: Awaited<ReturnType<typeof startSimulatedUpstream>>;
    let buyer: Address;
    let key: string;
    let keyId: string;
    let client: OpenAI;

    before(async function () {
      // Three model servers besides the working one: nothing listening, one that answers every call with a 5xx,
      // and one slower than its timeout. The same on-chain models are sold through each under other names.
      flaky = await startSimulatedUpstream({ failureRate: 1 });
      slow = await startSimulatedUpstream({ latencyMs: 3_000 });
      h = await startGatewayHarness({
        config: {
          upstreams: { down: { baseUrl: await closedPortUrl(), timeoutMs: 2_000 }, flaky: { baseUrl: flaky.url, timeoutMs: 2_000 }, slow: { baseUrl: slow.url, timeoutMs: 200 } },
          models: [
            { name: "small-model", modelId: 1, upstream: "down", maxOutputTokens: 512 },
            { name: "small-model-b", modelId: 1, upstream: "flaky", maxOutputTokens: 512 },
            { name: "large-model", modelId: 2, upstream: "sim", upstreamModel: "large-reasoning", maxOutputTokens: 1024 },
            { name: "large-model-slow", modelId: 2, upstream: "slow", maxOutputTokens: 1024 },
            { name: "embed-model", modelId: 3, kind: "embeddings", upstream: "sim" },
          ],
          routing: {
            tiers: { "small-model": 0, "small-model-b": 0, "large-model": 1, "large-model-slow": 1 },
            policies: {
              auto: { candidates: ["small-model", "small-model-b", "large-model"] },
              doomed: { candidates: ["small-model", "large-model-slow"] },
            },
          },
        },
      });
      buyer = getAddress(h.market.buyers[0].address);
      await h.deposit(h.market.buyers[0], USD(20));
      ({ key, id: keyId } = await h.createKey(h.market.buyers[0]));
      client = h.openai(key);
    });
    after(async () => {
      await h?.close();
      await flaky?.close();
      await slow?.close();
    });

    it("tries the next candidate after a connection error and a 5xx, and charges only the call that was served", async function () {
      const before = ledgerView(h, buyer, keyId);
      const flakyBefore = flaky.stats().requests;
      const fallbacksCounted = async () => (await h.gateway.ctx.metrics.routeFallbacks.get()).values.reduce((sum, { value }) => sum + value, 0);
      const counterBefore = await fallbacksCounted();
      const { data, response } = await client.chat.completions.create({ model: "auto", messages: short(), max_tokens: 16 }).withResponse();
      expect(data.model).to.equal("large-model");
      expect(flaky.stats().requests - flakyBefore).to.equal(1);
      expect(response.headers.get("x-tollgate-route-fallbacks")).to.equal("2");
      expect((await fallbacksCounted()) - counterBefore).to.equal(2);
      const envelope = parseReceiptHeader(response.headers.get("x-tollgate-receipt")!);
      expect(envelope.routing).to.deep.equal({ requested: "auto", reason: "default", fallbacks: 2 });

      const after = ledgerView(h, buyer, keyId);
      expect(after.records).to.equal(before.records + 1);
      expect(after.nextSequence).to.equal(before.nextSequence + 1n);
      const [record] = h.gateway.ctx.store.recordsOf(buyer, { afterSequence: before.nextSequence - 1n });
      expect(record.modelName).to.equal("large-model");
      expect(record.routing).to.include({ alias: "auto", fallbacks: 2 });
      expect(BigInt(after.spent) - BigInt(before.spent)).to.equal(record.cost);
      expect(record.cost).to.equal(BigInt(envelope.receipt.cost));
      expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
    });

    it("falls back for a streamed call before any byte was sent", async function () {
      const before = ledgerView(h, buyer, keyId);
      const stream = await client.chat.completions.create({ model: "auto", messages: short(), max_tokens: 16, stream: true });
      let receipt: ReceiptEnvelope | undefined;
      let text = "";
      for await (const chunk of stream) {
        expect(chunk.model).to.equal("large-model");
        text += chunk.choices[0]?.delta?.content ?? "";
        receipt = (chunk as unknown as { tollgate_receipt?: ReceiptEnvelope }).tollgate_receipt ?? receipt;
      }
      expect(text.length).to.be.greaterThan(0);
      expect(receipt!.routing).to.deep.equal({ requested: "auto", reason: "default", fallbacks: 2 });
      expect(ledgerView(h, buyer, keyId).records).to.equal(before.records + 1);
      expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
    });

    it("after the last candidate fails (here a timeout), answers with that upstream error and charges nothing", async function () {
      const before = ledgerView(h, buyer, keyId);
      let caught: unknown;
      try {
        await client.chat.completions.create({ model: "doomed", messages: short(), max_tokens: 16 });
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(OpenAI.APIError);
      const error = caught as InstanceType<typeof OpenAI.APIError>;
      expect(error.status).to.equal(504);
      expect(error.code).to.equal("upstream_timeout");
      expect(error.message).to.include("Nothing was charged");
      expect(ledgerView(h, buyer, keyId)).to.deep.equal(before);
      expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
    });
  });

  describe("the routing declaration, checked at start-up", function () {
    let dir: string;
    const config = (routing: unknown) => ({
      chain: { rpcUrl: "http://127.0.0.1:8545", deploymentFile: "deployment.json" },
      providerId: 1,
      upstreams: { sim: { baseUrl: "http://127.0.0.1:8080/v1" } },
      models: [
        { name: "small-model", modelId: 1, upstream: "sim" },
        { name: "large-model", modelId: 2, upstream: "sim" },
        { name: "embed-model", modelId: 3, upstream: "sim", kind: "embeddings" },
      ],
      routing,
    });
    const parse = (routing: unknown) => parseGatewayConfig(config(routing), { TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER }, dir, "test.json");
    const refusal = (routing: unknown): string => {
      try {
        parse(routing);
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error("expected a ConfigError");
    };

    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-routing-config-"));
      fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId: 31337, tollgate: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" }));
    });

    it("resolves level names to tiers and keeps the provider's candidate order", function () {
      const policy = parse(ROUTING).routing!.policies.get("auto")!;
      expect(policy.candidates).to.deep.equal([
        { name: "large-model", tier: 1 },
        { name: "small-model", tier: 0 },
      ]);
      expect(policy).to.include({ minTier: 0, tools: 1, maxTier: 1, honorHint: true });
      expect(policy.promptTokens).to.deep.equal([{ atLeast: 200, tier: 1 }]);
      expect(policy.reasoningEffort).to.deep.equal({ high: 1 });
    });

    it("refuses an unknown model, an alias that shadows a model, an empty or tier-less candidate list, and rules no candidate can meet", function () {
      const tiers = { "small-model": 0, "large-model": 1 };
      expect(refusal({ tiers, policies: { auto: { candidates: ["small-model", "huge-model"] } } })).to.include("routing.policies.auto.candidates.1: unknown model \"huge-model\" (have: small-model, large-model)");
      expect(refusal({ tiers, policies: { "small-model": { candidates: ["large-model"] } } })).to.include('the alias "small-model" shadows the model of that name');
      expect(refusal({ tiers, policies: { auto: { candidates: [] } } })).to.include("routing.policies.auto.candidates: list at least one candidate model");
      expect(refusal({ tiers: { "small-model": 0 }, policies: { auto: { candidates: ["small-model", "large-model"] } } })).to.include('"large-model" has no tier; give it one under routing.tiers');
      expect(refusal({ tiers: { ...tiers, "ghost-model": 2 }, policies: {} })).to.include('routing.tiers.ghost-model: unknown model "ghost-model"');
      expect(refusal({ tiers: { ...tiers, "embed-model": 0 }, policies: {} })).to.include("only chat models are routed");
      expect(refusal({ levels: ["small"], tiers: { "small-model": "medium" }, policies: {} })).to.include('unknown tier level "medium"; declare it under routing.levels (have: small)');
      expect(refusal({ tiers, policies: { auto: { candidates: ["small-model"], rules: { tools: 1 } } } })).to.include('routing.policies.auto.rules.tools: no candidate of "auto" reaches tier 1; the highest is 0');
      expect(refusal({ tiers, policies: { auto: { candidates: ["small-model", "small-model"] } } })).to.include('"small-model" is listed twice');
      expect(refusal({ tiers, policies: { auto: { candidate: ["small-model"] } } })).to.include("routing.policies.auto");
    });
  });
});
