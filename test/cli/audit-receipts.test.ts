/**
 * `tollgate audit receipts FILE`, run in-process against Hardhat's chain served over HTTP, on exports fetched
 * from a live gateway: the exit status says whether everything agrees (0), something disagrees (1), the audit
 * could not run (2) or only settlement is pending (3), and every discrepancy is named in the report and in `--json`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre from "hardhat";
import { expect } from "chai";
import type { Address } from "viem";
import { generatePrivateKey, privateKeyToAccount, privateKeyToAddress } from "viem/accounts";
import { mintTestTokens, postBond } from "../../client";
import { runCli } from "../../scripts/cli";
import { formatTimestamp } from "../../scripts/cli/arguments";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { tollgateAbi } from "../../server/chain/abis";
import { tollgateDomain, usageReceiptTypes } from "../../server/chain/eip712";
import { recordCost } from "../../server/chain/pricing";
import { receiptToWire, usageReceiptFromEnvelope } from "../../server/chain/receipt-envelope";
import { hashReceipt } from "../../server/chain/usage-batch";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import { startOracleHarness } from "../helpers/oracle-harness";
import { startReceiptAuditFixture, type ReceiptAuditFixture } from "../helpers/receipt-audit-fixture";

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(args, { env, stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) } });
  return { code, out, err };
}

describe("tollgate audit receipts", function () {
  this.timeout(180_000);
  let f: ReceiptAuditFixture;
  let rpc: RpcServer;
  let dir: string;
  const file = (name: string, text: string) => {
    const target = path.join(dir, name);
    fs.writeFileSync(target, text);
    return target;
  };
  const audit = (...args: string[]) =>
    run(["--rpc", rpc.url, "--deployment", path.join(f.h.dir, "deployment.json"), "audit", "receipts", ...args], disputerEnv);
  /** The key `--dispute` signs with (none until the dispute test). */
  let disputerEnv: Record<string, string> = {};

  before(async function () {
    f = await startReceiptAuditFixture({ retainContent: true, calls: 3 });
    rpc = await startRpcServer(hre.network.provider);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-audit-receipts-"));
  });
  after(async function () {
    await rpc?.close();
    await f?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("exits 3 while a receipt is not settled, naming it, then 0 once everything is settled and agrees (JSON and CSV)", async function () {
    const pending = await audit(file("pending.json", await f.exportText("include_content=true")));
    expect(pending.code, pending.err).to.equal(3);
    expect(pending.out).to.contain("Pending (1):");
    expect(pending.out).to.contain(`receipt_unsettled  signer ${f.h.signer}, sequence ${f.unsettledSequence}`);
    expect(pending.err).to.match(/recounting the tokens of \d+ retained calls/);

    const { oracle } = await startOracleHarness(f.h);
    try {
      await oracle.settleAll();
    } finally {
      await oracle.close();
    }
    const clean = await audit(file("clean.json", await f.exportText("include_content=true")));
    expect(clean.code, clean.out + clean.err).to.equal(0);
    expect(clean.out).to.contain("Everything agrees");
    expect(clean.out).to.contain(`${f.settledCount + 1} receipts: ${f.settledCount + 1} settled (${f.settledCount + 1} proven`);
    const csv = await audit(file("clean.csv", await f.exportText("format=csv")));
    expect(csv.code, csv.out + csv.err).to.equal(0);
    // Against a bare contract address on the RPC's chain, without the deployment file.
    const bare = await run(["--rpc", rpc.url, "--deployment", path.join(dir, "missing.json"), "audit", "receipts", path.join(dir, "clean.csv"), "--tollgate", f.deployment.tollgate]);
    expect(bare.code, bare.out + bare.err).to.equal(0);
  });

  it("exits 1 and names each discrepancy with where and expected vs found, in the report and in --json", async function () {
    const body = JSON.parse(await f.exportText());
    const dropped = body.data.splice(1, 1)[0];
    body.data.push(body.data[0]);
    const target = file("tampered.json", JSON.stringify(body));

    const report = await audit(target);
    expect(report.code).to.equal(1);
    expect(report.out).to.contain("Discrepancies (2):");
    expect(report.out).to.contain(`record_without_receipt  signer ${f.h.signer}, sequence 1, tx ${dropped.settlement.txHash}, batch from 0`);
    expect(report.out).to.contain(`receipt_duplicate  signer ${f.h.signer}, sequence 0, rows 1, ${body.data.length}`);

    const json = await audit(target, "--json");
    expect(json.code).to.equal(1);
    const result = JSON.parse(json.out);
    expect(result).to.deep.include({ agrees: false, complete: false, exitCode: 1 });
    expect(result.findings.map((x: { code: string; where: { sequence: string } }) => [x.code, x.where.sequence])).to.deep.equal([
      ["receipt_duplicate", "0"],
      ["record_without_receipt", "1"],
    ]);
    expect(result.disputeCandidates).to.deep.equal([]);
  });

  it("fails with exit 2 (could not run) and the row and field when the file is not a usage export", async function () {
    const body = JSON.parse(await f.exportText());
    body.data[2].receipt.signature = "0x1234";
    const bad = await audit(file("bad.json", JSON.stringify(body)));
    expect(bad.code).to.equal(2);
    expect(bad.err).to.match(/error: the audit could not run: .*bad\.json: row 3, field "receipt\.signature": expected a 65-byte signature/);
    expect(bad.err).to.contain("hint: export the file again");
    const missing = await audit(path.join(dir, "nope.json"));
    expect(missing.code).to.equal(2);
    expect(missing.err).to.contain("cannot read");
  });
  // Last: it compromises the fixture's gateway key.
  it("--dispute proves on-chain a signed receipt the settled record contradicts: refund and penalty awarded from the bond, the key compromised", async function () {
    const { market } = f.h;
    const providerId = Number(market.providerId);
    const asProvider = market.clientOf(market.provider.address as Address);
    await mintTestTokens(asProvider, { amount: USD(100) });
    await postBond(asProvider, { providerId, amount: USD(100) });

    // The gateway signs a receipt for fewer output tokens than it settled under the same sequence: an overcharge.
    const body = JSON.parse(await f.exportText());
    const row = body.data[1];
    const original = usageReceiptFromEnvelope(row.receipt);
    const outputTokens = original.outputTokens - 5;
    const told = { ...original, outputTokens, cost: recordCost({ ...original, outputTokens }, { input: original.inputPrice, cachedInput: original.cachedInputPrice, output: original.outputPrice }) };
    const signature = await privateKeyToAccount(f.h.signerKey).signTypedData({
      domain: tollgateDomain(f.deployment.chainId, f.deployment.tollgate),
      types: usageReceiptTypes,
      primaryType: "UsageReceipt",
      message: told,
    });
    row.receipt = { ...row.receipt, receipt: receiptToWire(told), receiptHash: hashReceipt(told), signature };
    const target = file("overcharged.json", JSON.stringify(body));

    const disputer = generatePrivateKey();
    await hre.network.provider.send("hardhat_setBalance", [privateKeyToAddress(disputer), "0x56bc75e2d63100000"]);
    const balanceOf = async () =>
      (await f.h.client.readContract({ address: f.deployment.tollgate, abi: tollgateAbi, functionName: "accountOf", args: [f.buyer] })).balance;
    const before = await balanceOf();
    const awardOf = async () => f.h.client.readContract({ address: f.deployment.tollgate, abi: tollgateAbi, functionName: "disputeAwardOf", args: [f.buyer] });

    disputerEnv = { TOLLGATE_PRIVATE_KEY: disputer };
    const result = await audit(target, "--dispute");
    expect(result.code, result.out + result.err).to.equal(1);
    expect(result.out).to.match(new RegExp(`proven \\(settled-record-mismatch\\) signer ${f.h.signer}, sequence 1: tx 0x[0-9a-f]{64}`));
    // The charged buyer is the receipt's: awarded what it paid beyond the receipt, then the penalty,
    // DISPUTE_PENALTY_BPS (10%) of what the bond holds after the refund. Into its award bucket, claimable
    // BOND_WITHDRAWAL_DELAY after the proof, not into its spendable balance.
    const refund = original.cost - told.cost;
    const penalty = ((USD(100) - refund) * 1_000n) / 10_000n;
    expect(refund).to.be.greaterThan(0n);
    const after = await balanceOf();
    expect(after).to.equal(before);
    const [awarded, claimableAt] = await awardOf();
    expect(awarded).to.equal(refund + penalty);
    const proofTime = (await f.h.client.getBlock({ blockTag: "latest" })).timestamp;
    expect(claimableAt).to.equal(proofTime + (await f.h.client.readContract({ address: f.deployment.tollgate, abi: tollgateAbi, functionName: "BOND_WITHDRAWAL_DELAY" })));
    expect(result.out).to.include(`claimable from ${formatTimestamp(claimableAt)} (unix ${claimableAt}) with \`tollgate buyer claim-awards\``);
    const [available] = await f.h.client.readContract({ address: f.deployment.tollgate, abi: tollgateAbi, functionName: "bondOf", args: [providerId] });
    expect(available).to.equal(USD(100) - refund - penalty);
    const proven = await f.h.client.readContract({ address: f.deployment.tollgate, abi: tollgateAbi, functionName: "isFraudProven", args: [f.h.signer, 1n] });
    expect(proven).to.equal(true);
    const signer = await f.h.client.readContract({ address: f.deployment.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [f.h.signer] });
    expect(signer.compromised).to.equal(true);

    // The same proof again is refused by the contract, named, and changes nothing.
    const again = await audit(target, "--dispute", "--json");
    expect(again.code).to.equal(1);
    const json = JSON.parse(again.out);
    expect(json.disputes).to.have.length(1);
    expect(json.disputes[0]).to.deep.include({ status: "refused", errorName: "DisputeAlreadyProven" });
    expect(await balanceOf()).to.equal(after);
    expect(await awardOf()).to.deep.equal([awarded, claimableAt]);
  });
});
