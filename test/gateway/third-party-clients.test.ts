/**
 * The OpenAI-compatible clients buyers use besides `openai`, pointed at the gateway as they would point them at
 * OpenAI: Vercel's AI SDK (`ai` + `@ai-sdk/openai`) and LangChain (`@langchain/openai`). Each call, streamed or
 * not, chat or embeddings, must be served, metered once, and report the token counts its record bills.
 *
 * The AI SDK's default `openai(model)` speaks OpenAI's Responses API (`/v1/responses`), which the gateway does not
 * serve: `openai.chat(model)` is the Chat Completions model, as the README says. That refusal is tested too, so
 * the README's advice stays true.
 */
import { createOpenAI } from "@ai-sdk/openai";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { embed, generateText, streamText } from "ai";
import { expect } from "chai";
import { getAddress } from "viem";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import type { StoredUsageRecord } from "../../server/store/usage-store";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

describe("third-party OpenAI clients against the gateway", function () {
  let h: GatewayHarness;
  let key: string;
  let buyer: `0x${string}`;

  const records = (): StoredUsageRecord[] => h.gateway.ctx.store.recordsOf(buyer, {});
  /** Runs one client call and returns the single record it made. */
  async function recordOf<T>(call: () => Promise<T>): Promise<{ result: T; record: StoredUsageRecord }> {
    const before = records().length;
    const result = await call();
    const after = records();
    expect(after.length, "records made by one client call").to.equal(before + 1);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
    return { result, record: after[after.length - 1] };
  }

  before(async function () {
    h = await startGatewayHarness();
    const wallet = h.market.buyers[0];
    await h.deposit(wallet, USD(20));
    ({ key } = await h.createKey(wallet));
    buyer = getAddress(wallet.address);
  });
  after(async () => {
    await h?.close();
  });

  describe("Vercel AI SDK (ai + @ai-sdk/openai)", function () {
    const provider = () => createOpenAI({ baseURL: `${h.url}/v1`, apiKey: key });

    it("generateText: served, metered once, the SDK's usage equal to the record's counts", async function () {
      const { result, record } = await recordOf(() => generateText({ model: provider().chat("small-model"), prompt: "Say hello to the AI SDK.", maxOutputTokens: 12, maxRetries: 0 }));
      expect(result.text).to.be.a("string").and.not.equal("");
      expect(result.usage.inputTokens).to.equal(record.inputTokens);
      expect(result.usage.outputTokens).to.equal(record.outputTokens);
      expect(record.modelName).to.equal("small-model");
      expect(record.outputTokens).to.be.within(1, 12);
    });

    it("streamText: the streamed text and usage match the one record", async function () {
      const { result, record } = await recordOf(async () => {
        const stream = streamText({ model: provider().chat("small-model"), prompt: "Stream a short greeting.", maxOutputTokens: 10, maxRetries: 0 });
        let text = "";
        for await (const delta of stream.textStream) text += delta;
        return { text, usage: await stream.usage };
      });
      expect(result.text).to.not.equal("");
      expect(record.streamed).to.equal(true);
      expect(result.usage.inputTokens).to.equal(record.inputTokens);
      expect(result.usage.outputTokens).to.equal(record.outputTokens);
    });

    it("embed: an embedding, metered on the embedding model", async function () {
      const { result, record } = await recordOf(() => embed({ model: provider().embedding("embed-model"), value: "metered vectors", maxRetries: 0 }));
      expect(result.embedding.length).to.be.greaterThan(0);
      expect(result.usage.tokens).to.equal(record.inputTokens);
      expect(record.modelName).to.equal("embed-model");
    });

    it("the default Responses-API model is refused in OpenAI's error shape, and nothing is charged", async function () {
      const before = records().length;
      let message = "";
      try {
        await generateText({ model: provider()("small-model"), prompt: "hi", maxRetries: 0 });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).to.match(/Unknown request URL: POST \/v1\/responses/);
      expect(records().length).to.equal(before);
    });
  });

  describe("LangChain (@langchain/openai)", function () {
    const chat = (options: { streaming?: boolean } = {}) =>
      new ChatOpenAI({ model: "small-model", apiKey: key, configuration: { baseURL: `${h.url}/v1` }, maxTokens: 12, maxRetries: 0, ...options });

    it("ChatOpenAI.invoke: served, metered once, usage_metadata equal to the record's counts", async function () {
      const { result, record } = await recordOf(() => chat().invoke("Say hello to LangChain."));
      expect(result.content).to.be.a("string").and.not.equal("");
      expect(result.usage_metadata?.input_tokens).to.equal(record.inputTokens);
      expect(result.usage_metadata?.output_tokens).to.equal(record.outputTokens);
    });

    it("ChatOpenAI.stream: the chunks join into the answer of one streamed record", async function () {
      const { result, record } = await recordOf(async () => {
        let text = "";
        let outputTokens: number | undefined;
        for await (const chunk of await chat({ streaming: true }).stream("Stream a short greeting.")) {
          text += typeof chunk.content === "string" ? chunk.content : "";
          outputTokens = chunk.usage_metadata?.output_tokens ?? outputTokens;
        }
        return { text, outputTokens };
      });
      expect(result.text).to.not.equal("");
      expect(record.streamed).to.equal(true);
      // LangChain asks for the usage chunk (stream_options.include_usage) and reports it.
      expect(result.outputTokens).to.equal(record.outputTokens);
    });

    it("OpenAIEmbeddings: embedQuery and embedDocuments, one record per request", async function () {
      const embeddings = new OpenAIEmbeddings({ model: "embed-model", apiKey: key, configuration: { baseURL: `${h.url}/v1` }, maxRetries: 0 });
      const { result: vector } = await recordOf(() => embeddings.embedQuery("one query"));
      expect(vector.length).to.be.greaterThan(0);
      const { result: vectors, record } = await recordOf(() => embeddings.embedDocuments(["first document", "second document"]));
      expect(vectors).to.have.length(2);
      expect(record.modelName).to.equal("embed-model");
    });
  });
});
