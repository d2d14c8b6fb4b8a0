/**
 * `reconcileReceipts` on a real local marketplace: exports fetched from the gateway, batches rebuilt from
 * the chain, signatures made with the gateway's real key. A clean export (JSON and CSV) reconciles clean;
 * each tampering is caught and named with where it is and what was expected and found.
 */
import { expect } from "chai";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { Address, Hex } from "viem";
import {
  disputeCandidates,
  parseUsageExport,
  reconcileReceipts,
  UsageExportError,
  type AuditedBatch,
  type ReceiptFinding,
  type ReconcileReceiptsReturnType,
} from "../../client";
import { tollgateAbi } from "../../server/chain/abis";
import { tollgateDomain, usageReceiptTypes, type UsageReceipt } from "../../server/chain/eip712";
import { receiptToWire, usageReceiptFromEnvelope, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { recordCost } from "../../server/chain/pricing";
import { hashReceipt } from "../../server/chain/usage-batch";
import { createCallRecount } from "../../server/gateway/metering/recount-call";
import { otherHash, startReceiptAuditFixture, type ReceiptAuditFixture } from "../helpers/receipt-audit-fixture";

type JsonRow = { sequence: string; status: string; receipt: ReceiptEnvelope; settlement: Record<string, unknown> | null; retained_content?: Record<string, unknown> | null };
type JsonExport = { buyer: string; has_more: boolean; data: JsonRow[] } & Record<string, unknown>;

const codes = (result: ReconcileReceiptsReturnType, severity?: ReceiptFinding["severity"]) =>
  result.findings.filter((f) => !severity || f.severity === severity).map((f) => f.code);

describe("reconcileReceipts: a buyer's receipts against the chain", function () {
  this.timeout(180_000);
  let f: ReceiptAuditFixture;
  let batches: AuditedBatch[];
  let cleanJson: JsonExport;
  let cleanCsv: string;
  const recounter = createCallRecount();

  before(async function () {
    f = await startReceiptAuditFixture({ retainContent: true });
    batches = await f.batches();
    cleanJson = JSON.parse(await f.exportText("include_content=true")) as JsonExport;
    cleanCsv = await f.exportText("format=csv");
  });
  after(async function () {
    await recounter.close();
    await f?.close();
  });

  const reconcile = (text: string, extra: Partial<Parameters<typeof reconcileReceipts>[0]> = {}) =>
    reconcileReceipts({ usageExport: parseUsageExport(text), batches, deployment: f.deployment, recount: recounter.recount, ...extra });
  const tampered = (edit: (copy: JsonExport) => void): string => {
    const copy = structuredClone(cleanJson);
    edit(copy);
    return JSON.stringify(copy);
  };
  /** A receipt changed and signed again with `key` (the gateway's own, unless a forger's is given). */
  const resigned = async (row: JsonRow, change: (receipt: UsageReceipt) => UsageReceipt, key: Hex = f.h.signerKey): Promise<ReceiptEnvelope> => {
    const receipt = change(usageReceiptFromEnvelope(row.receipt));
    const signature = await privateKeyToAccount(key).signTypedData({
      domain: tollgateDomain(f.deployment.chainId, f.deployment.tollgate),
      types: usageReceiptTypes,
      primaryType: "UsageReceipt",
      message: receipt,
    });
    return { ...row.receipt, receipt: receiptToWire(receipt), receiptHash: hashReceipt(receipt), signature };
  };

  it("a clean JSON export reconciles: every settled receipt matches and is proven, retained bytes recount, the last call is pending", async function () {
    expect(batches.length).to.equal(Math.ceil(f.settledCount / 3));
    const result = await reconcile(JSON.stringify(cleanJson));
    expect(result.findings.map((x) => [x.code, x.severity, x.where.sequence])).to.deep.equal([["receipt_unsettled", "pending", f.unsettledSequence]]);
    expect(result.agrees).to.equal(true);
    expect(result.complete).to.equal(false);
    expect(result.counts).to.deep.equal({
      receipts: f.settledCount + 1,
      settled: f.settledCount,
      unsettled: 1,
      proven: f.settledCount,
      contentChecked: f.settledCount + 1,
      // The streamed call's model reasons without showing it: those tokens are charged, and no bytes hold them.
      unverifiableReasoningTokens: cleanJson.data.reduce((sum, row) => sum + row.receipt.reasoningTokens, 0),
      onChainRecords: f.settledCount,
    });
    expect(result.counts.unverifiableReasoningTokens).to.be.greaterThan(0);
    expect(result.coverage.checked).to.equal(true);
  });

  it("the export's proof is one the contract accepts: verifyReceiptSettled with the batch header", async function () {
    const row = cleanJson.data[4];
    const batch = batches.find((b) => b.firstSequence === BigInt(row.settlement!.firstSequence as string))!;
    const accepted = await f.h.client.readContract({
      address: f.deployment.tollgate,
      abi: tollgateAbi,
      functionName: "verifyReceiptSettled",
      args: [f.h.signer, batch.header, usageReceiptFromEnvelope(row.receipt), row.settlement!.proof as Hex[]],
    });
    expect(accepted).to.equal(true);
    expect(row.settlement!.contentRoot).to.equal(batch.contentRoot);
  });

  it("a clean CSV export reconciles the same way (receipts rebuilt from the row alone)", async function () {
    const result = await reconcile(cleanCsv);
    expect(codes(result)).to.deep.equal(["receipt_unsettled"]);
    expect(result.agrees).to.equal(true);
    expect(result.counts.proven).to.equal(f.settledCount);
    expect(result.buyer).to.equal(f.buyer);
  });

  it("a record the gateway left out of the export is a record without receipt, named by tx, batch and sequence (JSON and CSV)", async function () {
    const dropped = cleanJson.data[4];
    const result = await reconcile(tampered((copy) => copy.data.splice(4, 1)));
    const found = result.findings.filter((x) => x.severity === "discrepancy");
    expect(found.map((x) => x.code)).to.deep.equal(["record_without_receipt"]);
    expect(found[0].where.sequence).to.equal(BigInt(dropped.sequence));
    expect(found[0].where.txHash).to.equal(dropped.settlement!.txHash);
    expect(found[0].where.batchFirstSequence).to.equal(BigInt(dropped.settlement!.firstSequence as string));
    expect(result.agrees).to.equal(false);

    const lines = cleanCsv.trimEnd().split("\n");
    const csvResult = await reconcile([...lines.slice(0, 3), ...lines.slice(4)].join("\n"));
    expect(codes(csvResult, "discrepancy")).to.deep.equal(["record_without_receipt"]);
    expect(csvResult.findings.find((x) => x.code === "record_without_receipt")!.where.sequence).to.equal(2n);
  });

  it("a doubled receipt is named with both rows, and one call receipted under a second sequence is a double charge", async function () {
    const doubled = await reconcile(tampered((copy) => copy.data.push(copy.data[1])));
    expect(codes(doubled, "discrepancy")).to.deep.equal(["receipt_duplicate"]);
    expect(doubled.findings.find((x) => x.code === "receipt_duplicate")!.where.rows).to.deep.equal([2, cleanJson.data.length + 1]);

    // The gateway signs the same call (same salted content hash) again under a new sequence.
    const again = await resigned(cleanJson.data[1], (r) => ({ ...r, sequence: 1_000n }));
    const twice = await reconcile(tampered((copy) => copy.data.push({ ...copy.data[1], sequence: "1000", status: "unsettled", settlement: null, retained_content: null, receipt: again })));
    const charge = twice.findings.find((x) => x.code === "receipt_charged_twice")!;
    expect(charge.severity).to.equal("discrepancy");
    expect(charge.receipts!.map((r) => r.receipt.sequence)).to.deep.equal([1n, 1_000n]);
  });

  it("a receipt whose counts differ from the chain, validly re-signed by the gateway key, is a mismatch per field, outside the content root, against its recount", async function () {
    const row = cleanJson.data[2];
    const changed = await resigned(row, (r) => {
      const inputTokens = r.inputTokens + 7;
      return { ...r, inputTokens, cost: recordCost({ ...r, inputTokens }, { input: r.inputPrice, cachedInput: r.cachedInputPrice, output: r.outputPrice }) };
    });
    const result = await reconcile(tampered((copy) => (copy.data[2].receipt = changed)));
    const found = result.findings.filter((x) => x.severity === "discrepancy");
    expect(found.map((x) => [x.code, x.field])).to.deep.equal([
      ["receipt_mismatch", "inputTokens"],
      ["receipt_mismatch", "cost"],
      ["receipt_not_in_content_root", "contentRoot"],
      ["token_count_mismatch", "inputTokens"],
    ]);
    const original = usageReceiptFromEnvelope(row.receipt);
    expect(found[0]).to.include({ expected: String(original.inputTokens), found: String(original.inputTokens + 7) });
    expect(found[0].where).to.deep.include({ sequence: 2n, rows: [3], txHash: row.settlement!.txHash, batchFirstSequence: 0n });
    expect(codes(result)).to.not.include("receipt_bad_signature");

    // Validly signed and contradicted by the chain: evidence, with the batch header and the proof.
    const usageExport = parseUsageExport(tampered((copy) => (copy.data[2].receipt = changed)));
    const candidates = disputeCandidates(result, usageExport, batches);
    expect(candidates).to.have.length(1);
    expect(candidates[0]).to.deep.include({ reason: "receipt_mismatch", sequence: 2n });
    expect(candidates[0].receipts[0].signature).to.equal(changed.signature);
    expect(candidates[0].batch!.header).to.deep.equal(batches[0].header);
  });

  it("a forged signature is named, and is no dispute candidate", async function () {
    const forged = await resigned(cleanJson.data[0], (r) => r, generatePrivateKey());
    const result = await reconcile(tampered((copy) => (copy.data[0].receipt = forged)));
    const bad = result.findings.filter((x) => x.severity === "discrepancy");
    expect(bad.map((x) => x.code)).to.deep.equal(["receipt_bad_signature"]);
    expect(bad[0]).to.deep.include({ field: "signer", expected: f.h.signer });
    expect(disputeCandidates(result, parseUsageExport(tampered((copy) => (copy.data[0].receipt = forged))), batches)).to.deep.equal([]);
  });

  it("a wrong Merkle proof is named as not in the content root", async function () {
    const result = await reconcile(
      tampered((copy) => {
        const proof = copy.data[3].settlement!.proof as Hex[];
        proof[0] = otherHash(42);
      }),
    );
    expect(codes(result, "discrepancy")).to.deep.equal(["receipt_not_in_content_root"]);
  });

  it("an unsettled receipt is pending; one the export claims settled is a discrepancy", async function () {
    const last = cleanJson.data.length - 1;
    const pending = await reconcile(JSON.stringify(cleanJson));
    expect(pending.findings[0]).to.deep.include({ code: "receipt_unsettled", severity: "pending" });
    const claimed = await reconcile(
      tampered((copy) => {
        copy.data[last].status = "settled";
        copy.data[last].settlement = { txHash: cleanJson.data[0].settlement!.txHash, batchId: otherHash(7), settledAt: 1, firstSequence: null, contentRoot: null, proof: null };
      }),
    );
    expect(claimed.findings.map((x) => [x.code, x.severity])).to.deep.equal([["receipt_unsettled", "discrepancy"]]);
  });

  it("two different receipts signed for one sequence are an equivocation that keeps both", async function () {
    const other = await resigned(cleanJson.data[1], (r) => ({ ...r, outputTokens: r.outputTokens + 1 }));
    const text = tampered((copy) => copy.data.push({ ...copy.data[1], receipt: other, retained_content: null }));
    const result = await reconcile(text);
    const equivocation = result.findings.find((x) => x.code === "receipt_equivocation")!;
    expect(equivocation.receipts!.map((r) => r.signature)).to.deep.equal([cleanJson.data[1].receipt.signature, other.signature]);
    const candidates = disputeCandidates(result, parseUsageExport(text), batches);
    expect(candidates.find((c) => c.reason === "receipt_equivocation")!.receipts).to.have.length(2);
  });

  it("retained bytes that were changed no longer hash to the receipt, and recount differently", async function () {
    const row = cleanJson.data[0];
    const request = JSON.parse(Buffer.from(row.retained_content!.request as string, "base64").toString("utf8"));
    request.messages[0].content += " and then some more words that add tokens";
    const result = await reconcile(tampered((copy) => (copy.data[0].retained_content!.request = Buffer.from(JSON.stringify(request)).toString("base64"))));
    expect(result.findings.filter((x) => x.severity === "discrepancy").map((x) => [x.code, x.field])).to.deep.equal([
      ["content_hash_mismatch", "requestHash"],
      ["content_hash_mismatch", "contentHash"],
      ["token_count_mismatch", "inputTokens"],
    ]);
    const garbage = await reconcile(tampered((copy) => (copy.data[0].retained_content!.response = Buffer.from("not json").toString("base64"))));
    expect(codes(garbage, "discrepancy")).to.deep.equal(["content_hash_mismatch", "content_hash_mismatch", "content_unreadable"]);
  });

  it("a filtered export is audited for records without receipt only where the chain can apply its filter", async function () {
    const byModel = await reconcile(await f.exportText("model=small-model"));
    expect(byModel.agrees).to.equal(true);
    expect(byModel.counts.onChainRecords).to.equal(5);
    const byTag = await reconcile(await f.exportText("tag=team:test"));
    expect(byTag.coverage).to.deep.equal({ checked: false, description: "not checked: the export was filtered by tag, which the chain cannot apply" });
    const paged = await reconcile(await f.exportText("limit=4"));
    expect(paged.agrees).to.equal(true);
    expect(paged.counts.onChainRecords).to.equal(4);
  });

  it("refuses an export it cannot read, naming the row and the field", async function () {
    const bad = tampered((copy) => ((copy.data[1].receipt.receipt as Record<string, unknown>).inputTokens = "12.5"));
    expect(() => parseUsageExport(bad)).to.throw(UsageExportError, /row 2, field "receipt\.receipt\.inputTokens": expected a non-negative integer/);
    const header = cleanCsv.split("\n")[0];
    const withoutSigner = cleanCsv.replace(header, header.replace(",signer,", ",signer_x,"));
    expect(() => parseUsageExport(withoutSigner)).to.throw(UsageExportError, /lacks the column signer/);
    const lines = cleanCsv.split("\n");
    lines[2] = lines[2].replace(/,0x[0-9a-f]{130},/, ",0x1234,");
    expect(() => parseUsageExport(lines.join("\n"))).to.throw(UsageExportError, /row 2 \(line 3\), field "signature"/);
  });

  it("audits only the signer asked for", async function () {
    const stranger = privateKeyToAccount(generatePrivateKey()).address as Address;
    const result = await reconcile(JSON.stringify(cleanJson), { signer: stranger });
    expect(result.counts.receipts).to.equal(0);
    expect(result.findings).to.deep.equal([]);
  });
});
