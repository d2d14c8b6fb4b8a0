/**
 * `GET /v1/usage` as an audit source: settled rows carry the batch's first sequence, content root and the
 * receipt's Merkle proof (JSON `settlement`, appended CSV columns, with buyer and signer), and content
 * retention is opt-in (`store.retainContent`, off by default), its bytes exported to the key's own buyer only.
 */
import { expect } from "chai";
import { getAddress, type Address, type Hex } from "viem";
import { getUsage, parseUsageExport } from "../../client";
import { parseGatewayConfig } from "../../server/config";
import { verifyMerkleProof } from "../../server/chain/merkle";
import { usageReceiptFromEnvelope, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { hashReceipt } from "../../server/chain/usage-batch";
import { contentHashOf } from "../../server/gateway/metering/content-hash";
import { keccak256Bytes } from "../../server/chain/keccak";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { gatewayConfigObject, startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";
import { startReceiptAuditFixture, type ReceiptAuditFixture } from "../helpers/receipt-audit-fixture";

type Row = {
  sequence: string;
  status: string;
  receipt: ReceiptEnvelope;
  settlement: { txHash: Hex; batchId: Hex; firstSequence: string | null; contentRoot: Hex | null; proof: Hex[] | null } | null;
  retained_content?: { request: string; response: string; encoding: string; endpoint: string; streamed: boolean } | null;
};

const OLD_CSV_COLUMNS =
  "sequence,served_at,model,model_id,key_id,tags,endpoint,input_tokens,cached_input_tokens,output_tokens,reasoning_tokens,input_price,cached_input_price," +
  "output_price,cost,count_source,streamed,completed,status,settlement_tx,content_hash,receipt_hash,signature,request_id";

describe("gateway: the usage export as an audit source", function () {
  this.timeout(180_000);

  describe("with content retention on", function () {
    let f: ReceiptAuditFixture;
    before(async function () {
      f = await startReceiptAuditFixture({ retainContent: true, calls: 4 });
    });
    after(async function () {
      await f?.close();
    });

    it("gives each settled row its batch's first sequence, content root and a Merkle proof of its receipt; unsettled rows none", async function () {
      const body = JSON.parse(await f.exportText()) as { data: Row[]; filters: Record<string, unknown> };
      expect(body.filters).to.deep.equal({ key_id: null, tag: null, model: null, trace_id: null, from: null, to: null, after: null, limit: 1000 });
      const batches = await f.batches();
      for (const row of body.data) {
        const sequence = BigInt(row.sequence);
        if (sequence === f.unsettledSequence) {
          expect(row.settlement, "the unsettled call").to.equal(null);
          continue;
        }
        const batch = batches.find((b) => sequence >= b.firstSequence && sequence < b.firstSequence + b.recordCount)!;
        expect(row.settlement).to.deep.include({ txHash: batch.txHash, batchId: batch.commitment, firstSequence: batch.firstSequence.toString(), contentRoot: batch.contentRoot });
        expect(verifyMerkleProof(batch.contentRoot, hashReceipt(usageReceiptFromEnvelope(row.receipt)), row.settlement!.proof!), `proof of ${sequence}`).to.equal(true);
      }
    });

    it("appends buyer, signer, content commitment and proof columns to the CSV, keeping the old columns first and in order", async function () {
      const lines = (await f.exportText("format=csv")).trimEnd().split("\n");
      const header = lines[0];
      expect(header.startsWith(`${OLD_CSV_COLUMNS},`)).to.equal(true);
      expect(header.slice(OLD_CSV_COLUMNS.length + 1).split(",")).to.deep.equal([
        "buyer", "signer", "content_salt", "request_hash", "response_hash", "settlement_batch", "batch_first_sequence", "content_root", "merkle_proof",
        "trace_id", "step", "user", "metadata", "idempotency_key", "retry_of",
      ]);
      const columns = header.split(",");
      const first = Object.fromEntries(lines[1].split(",").map((cell, i) => [columns[i], cell]));
      const record = f.h.gateway.ctx.store.recordBySequence(0n)!;
      expect(first).to.deep.include({ buyer: getAddress(f.buyer), signer: f.h.signer, content_salt: record.contentSalt, settlement_batch: record.settlement!.batchId, batch_first_sequence: "0" });
      expect(first.merkle_proof.split(" ").every((hash: string) => /^0x[0-9a-f]{64}$/.test(hash))).to.equal(true);
      const last = Object.fromEntries(lines[lines.length - 1].split(",").map((cell, i) => [columns[i], cell]));
      expect(last).to.deep.include({ status: "unsettled", settlement_batch: "", batch_first_sequence: "", content_root: "", merkle_proof: "" });
    });

    it("exports the exact bytes of each call with include_content=true, which hash to the receipt's content commitment", async function () {
      const body = JSON.parse(await f.exportText("include_content=true")) as { data: Row[] };
      expect(body.data.length).to.be.greaterThan(3);
      for (const row of body.data) {
        const content = row.retained_content!;
        const request = Buffer.from(content.request, "base64");
        const response = Buffer.from(content.response, "base64");
        expect(`0x${Buffer.from(keccak256Bytes(request)).toString("hex")}`).to.equal(row.receipt.content.requestHash);
        expect(contentHashOf(row.receipt.content.salt, row.receipt.content.requestHash, `0x${Buffer.from(keccak256Bytes(response)).toString("hex")}`)).to.equal(row.receipt.receipt.contentHash);
        expect(content.encoding).to.equal("o200k_base");
      }
      const first = JSON.parse(Buffer.from(body.data[0].retained_content!.request, "base64").toString("utf8"));
      expect(first.messages[0].content).to.equal("question 0: what is 0 squared?");
      expect(body.data.some((row) => row.retained_content!.streamed)).to.equal(true);
      // The client action asks for the same, and its answer is an export the receipt audit reads.
      const viaAction = await getUsage({ gateway: { url: f.h.url }, contracts: f.deployment }, { apiKey: f.key, includeContent: true });
      const parsed = parseUsageExport(JSON.stringify(viaAction));
      expect(parsed.receipts.map((r) => r.retained?.request.length)).to.deep.equal(body.data.map((row) => Buffer.from(row.retained_content!.request, "base64").length));
      // Without the flag the bytes stay out of the export.
      const plain = JSON.parse(await f.exportText()) as { data: Row[] };
      expect(plain.data.every((row) => !("retained_content" in row))).to.equal(true);
    });

    it("shows a buyer none of another buyer's content", async function () {
      const other = f.h.market.buyers[1];
      await f.h.deposit(other, USD(5));
      const { key } = await f.h.createKey(other);
      await f.h.openai(key).chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "the other buyer's secret" }], max_tokens: 8 });
      const response = await fetch(`${f.h.url}/v1/usage?include_content=true`, { headers: { authorization: `Bearer ${key}` } });
      const body = (await response.json()) as { buyer: Address; data: Row[] };
      expect(body.buyer).to.equal(getAddress(other.address));
      expect(body.data).to.have.length(1);
      expect(Buffer.from(body.data[0].retained_content!.request, "base64").toString("utf8")).to.contain("the other buyer's secret");
      const mine = JSON.parse(await f.exportText("include_content=true")) as { data: Row[] };
      expect(mine.data.every((row) => usageReceiptFromEnvelope(row.receipt).buyer === getAddress(f.buyer))).to.equal(true);
      const requests = mine.data.map((row) => Buffer.from(row.retained_content!.request, "base64").toString("utf8"));
      expect(requests.filter((request) => request.includes("the other buyer's secret"))).to.deep.equal([]);
    });

    it("refuses include_content with CSV, in OpenAI's error format, naming the parameter", async function () {
      const response = await fetch(`${f.h.url}/v1/usage?format=csv&include_content=true`, { headers: { authorization: `Bearer ${f.key}` } });
      expect(response.status).to.equal(400);
      const body = (await response.json()) as { error: { type: string; param: string; code: string; message: string } };
      expect(body.error).to.deep.include({ type: "invalid_request_error", param: "include_content", code: "invalid_value" });
      expect(body.error.message).to.match(/JSON export only/);
    });
  });

  describe("with the default configuration", function () {
    let h: GatewayHarness;
    before(async function () {
      h = await startGatewayHarness();
    });
    after(async function () {
      await h?.close();
    });

    it("keeps no content: the option is off unless set, nothing is stored, and the export says so", async function () {
      const config = parseGatewayConfig(gatewayConfigObject(h.dir, h.sim.url), { TOLLGATE_GATEWAY_SIGNER_KEY: h.signerKey }, h.dir);
      expect(config.store.retainContent).to.equal(false);
      const buyer = h.market.buyers[0];
      await h.deposit(buyer, USD(5));
      const { key } = await h.createKey(buyer);
      await h.openai(key).chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "keep nothing" }], max_tokens: 8 });
      expect(h.gateway.ctx.store.contentOf(0n)).to.equal(undefined);
      const body = (await (await fetch(`${h.url}/v1/usage?include_content=true`, { headers: { authorization: `Bearer ${key}` } })).json()) as { data: Row[] };
      expect(body.data).to.have.length(1);
      expect(body.data[0].retained_content).to.equal(null);
    });
  });
});
