/**
 * `tollgate audit` end to end, in-process, against Hardhat's chain served over JSON-RPC: a clean marketplace
 * (one batch relayed through a contract) audits clean with exit 0 in every output format; a vault whose
 * tokens no longer match the events exits 1 naming it; an audit that cannot run exits 2 saying why and what
 * to do. The checkpoint file survives a torn write and lets a second run resume.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre, { ethers } from "hardhat";
import { expect } from "chai";
import { encodeAbiParameters, keccak256, numberToHex, type Address } from "viem";
import { runCli } from "../../scripts/cli";
import { CSV_HEADER } from "../../scripts/cli/audit-report";
import { progressLine } from "../../scripts/cli/progress-line";
import { checkpointFile } from "../../scripts/lib/audit-checkpoint-file";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import { BATCH_DATA_PUBLISHED_TOPIC } from "../../client/audit/rpc/batch-sources";
import { startProxy } from "../helpers/provider-proxy";
import { settledMarket, type SettledMarket } from "../helpers/settled-market";

interface CliRun {
  code: number;
  out: string;
  err: string;
}

async function run(args: string[]): Promise<CliRun> {
  let out = "";
  let err = "";
  const code = await runCli(args, { env: {}, stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) } });
  return { code, out, err };
}

describe("tollgate audit", function () {
  let market: SettledMarket;
  let rpc: RpcServer;
  let dir: string;
  let deploymentFile: string;
  let snapshot: string;

  const audit = (...args: string[]) => run(["--rpc", rpc.url, "--deployment", deploymentFile, "audit", "--checkpoint", path.join(dir, "checkpoint.jsonl"), ...args]);

  before(async function () {
    snapshot = (await hre.network.provider.send("evm_snapshot", [])) as string;
    market = await settledMarket();
    rpc = await startRpcServer(hre.network.provider);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-audit-"));
    deploymentFile = path.join(dir, "deployment.json");
    fs.writeFileSync(
      deploymentFile,
      JSON.stringify({
        network: "hardhat",
        chainId: Number(market.market.chainId),
        tollgate: market.tollgate,
        paymentToken: await market.market.token.getAddress(),
        deployBlock: Number(market.deployBlock),
      }),
    );
  });

  after(async function () {
    await rpc?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (snapshot) await hre.network.provider.send("evm_revert", [snapshot]);
  });

  it("audits a clean marketplace clean, the relayed batch included, and exits 0", async function () {
    const result = await audit();
    expect(result.code, result.err + result.out).to.equal(0);
    expect(result.out).to.match(/^Tollgate 0x[0-9a-fA-F]{40} on chain 31337/);
    expect(result.out).to.contain("3 batches (2 from calldata, 1 from event)");
    expect(result.out).to.contain("15 records, 2 buyers, 1 provider");
    expect(result.out).to.contain("Conservation (DESIGN invariant 1): holds");
    for (const section of ["By buyer", "By provider", "By model", "By day"]) expect(result.out).to.contain(section);
    for (const buyer of market.market.buyers.slice(0, 2)) expect(result.out).to.contain(buyer.address);
    expect(result.out).to.contain("Audit clean");
  });

  it("--json prints one object that parses, with the report, no findings and the request count", async function () {
    const result = await audit("--json");
    expect(result.code, result.err).to.equal(0);
    const printed = JSON.parse(result.out);
    expect(printed.ok).to.equal(true);
    expect(printed.findings).to.deep.equal([]);
    expect(printed.counts.batches).to.equal(3);
    expect(printed.counts.records).to.equal(15);
    expect(printed.sources).to.deep.equal({ calldata: 2, event: 1 });
    expect(printed.report.buyers).to.have.length(2);
    expect(printed.conservation.conserved).to.equal(true);
    expect(BigInt(printed.conservation.vaultTokens)).to.equal(await market.market.token.balanceOf(market.tollgate));
    expect(printed.rpc.totalRequests).to.be.greaterThan(0);
    expect(printed.batches.map((batch: { source: string }) => batch.source)).to.deep.equal(["calldata", "event", "calldata"]);
  });

  it("--csv prints the header and a row per buyer, provider, model and day whose sums agree", async function () {
    const result = await audit("--csv");
    expect(result.code, result.err).to.equal(0);
    const [header, ...rows] = result.out.trim().split("\n").map((line) => line.split(","));
    expect(header).to.deep.equal([...CSV_HEADER]);
    const kinds = rows.map((row) => row[0]);
    expect(kinds.filter((kind) => kind === "total")).to.have.length(1);
    expect(kinds.filter((kind) => kind === "buyer")).to.have.length(2);
    expect(kinds).to.include.members(["provider", "model", "day"]);
    const cost = header.indexOf("cost");
    const total = BigInt(rows.find((row) => row[0] === "total")![cost]);
    expect(total > 0n).to.equal(true);
    for (const kind of ["buyer", "provider", "model", "day"]) {
      expect(rows.filter((row) => row[0] === kind).reduce((sum, row) => sum + BigInt(row[cost]), 0n), kind).to.equal(total);
    }
  });

  it("--tollgate with no deployment file finds the deploy block and audits the same", async function () {
    const result = await run(["--rpc", rpc.url, "audit", "--tollgate", market.tollgate, "--no-checkpoint", "--json"]);
    expect(result.code, result.err).to.equal(0);
    const printed = JSON.parse(result.out);
    expect(printed.deployBlock).to.equal(market.deployBlock.toString());
    expect(printed.rpc.deployBlockRequests).to.be.greaterThan(0);
    expect(result.err).to.contain(`Tollgate was deployed in block ${market.deployBlock}`);
  });

  it("filters limit what is reported, not what is replayed", async function () {
    const buyer = market.market.buyers[0].address;
    const result = await audit("--json", "--buyer", buyer);
    expect(result.code, result.err).to.equal(0);
    const printed = JSON.parse(result.out);
    expect(printed.report.buyers.map((row: { buyer: string }) => row.buyer)).to.deep.equal([buyer]);
    expect(printed.conservation.conserved).to.equal(true);
  });

  it("resumes from its checkpoint file on a second run, scanning only new blocks", async function () {
    const file = path.join(dir, "resume.jsonl");
    const first = await audit("--checkpoint", file, "--max-range", "4", "--json");
    expect(first.code, first.err).to.equal(0);
    await hre.network.provider.send("hardhat_mine", ["0x2"]);
    const second = await audit("--checkpoint", file, "--max-range", "4", "--json");
    expect(second.code, second.err).to.equal(0);
    const [a, b] = [JSON.parse(first.out), JSON.parse(second.out)];
    expect(BigInt(b.rpc.resumedFrom)).to.equal(BigInt(a.auditBlock) + 1n);
    expect(b.rpc.requestsByMethod.eth_getLogs).to.equal(3);
    // Block times and batch calldata come from the checkpoint too: the only blocks read are the audit block
    // (pinned, then checked at the end) and the checkpoint's last block (still on the chain? no reorg).
    expect(b.rpc.requestsByMethod.eth_getBlockByNumber).to.equal(3);
    expect(a.rpc.requestsByMethod.eth_getBlockByNumber).to.be.greaterThan(3);
    expect(second.err).to.contain("resuming the scan");
    expect(b.report).to.deep.equal(a.report);
  });

  it("a checkpoint file with a torn last line loads what was whole", async function () {
    const file = path.join(dir, "torn.jsonl");
    const store = checkpointFile(file);
    const log = { address: market.tollgate, blockNumber: 5n, logIndex: 0, transactionHash: keccak256("0x01"), transactionIndex: 0, topics: [keccak256("0x02")], data: "0x" as const };
    const base = { chainId: 31337, tollgate: market.tollgate, deployBlock: 1n, trail: [{ block: 5n, hash: keccak256("0x05") }], blockTimes: [] as [bigint, number][] };
    await store.save({ ...base, scannedTo: 5n, logs: [log] });
    const call = [`${log.transactionHash}:0`, "calldata", "0xabcdef"] as const;
    const second = { ...base, scannedTo: 9n, trail: [...base.trail, { block: 9n, hash: keccak256("0x09") }], logs: [log, { ...log, blockNumber: 8n }], batchCalls: [[...call]] as never };
    await store.save(second);
    const lines = fs.readFileSync(file, "utf8").trim().split("\n");
    expect(lines).to.have.length(2); // a snapshot, then only the new log and batch call appended
    expect(JSON.parse(lines[1]).logs).to.have.length(1);
    expect(await checkpointFile(file).load()).to.deep.equal(second);
    // Killed while appending a third chunk: the torn line is ignored, the second chunk's state stands.
    fs.appendFileSync(file, '{"kind":"chunk","scannedTo":"12","trail":[{"blo');
    const loaded = (await checkpointFile(file).load())!;
    expect(loaded.scannedTo).to.equal(9n);
    expect(loaded.logs.map((l) => l.blockNumber)).to.deep.equal([5n, 8n]);
  });

  it("a vault whose tokens disagree with the events exits 1 and names it", async function () {
    const tampered = (await hre.network.provider.send("evm_snapshot", [])) as string;
    try {
      // The vault's token balance rewritten in storage (OpenZeppelin ERC20's _balances, slot 0): no event says so.
      const token = (await market.market.token.getAddress()) as Address;
      const slot = keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [market.tollgate, 0n]));
      const held = await market.market.token.balanceOf(market.tollgate);
      await hre.network.provider.send("hardhat_setStorageAt", [token, slot, numberToHex(held - 1_000n, { size: 32 })]);
      expect(await market.market.token.balanceOf(market.tollgate)).to.equal(held - 1_000n);
      const result = await audit("--no-checkpoint");
      expect(result.code, result.err).to.equal(1);
      expect(result.out).to.contain("Conservation (DESIGN invariant 1): BROKEN");
      expect(result.out).to.match(/\[not_conserved\]/);
      expect(result.out).to.match(/Audit FAILED: \d+ findings?/);
      const json = await audit("--no-checkpoint", "--json");
      expect(json.code).to.equal(1);
      const printed = JSON.parse(json.out);
      expect(printed.ok).to.equal(false);
      const finding = printed.findings.find((f: { code: string }) => f.code === "not_conserved");
      expect(finding, json.out).to.not.equal(undefined);
      expect([finding.expected, finding.found].map(String)).to.include((held - 1_000n).toString());
    } finally {
      await hre.network.provider.send("evm_revert", [tampered]);
    }
  });

  it("names a batch whose data it cannot read and exits 1, never skipping it; reads through a provider that refuses wide ranges", async function () {
    // A provider that loses BatchDataPublished and refuses more than 5 blocks of logs at once.
    const proxy = await startProxy(rpc.url);
    try {
      proxy.reset({ dropLog: (log) => log.topics[0] === BATCH_DATA_PUBLISHED_TOPIC, maxLogRange: 5n, refusal: "infura" });
      const result = await run(["--rpc", proxy.url, "--deployment", deploymentFile, "audit", "--no-checkpoint", "--json"]);
      expect(result.code, result.err).to.equal(1);
      const printed = JSON.parse(result.out);
      const unreadable = printed.findings.filter((f: { code: string }) => f.code === "batch_data_unavailable");
      expect(unreadable, result.out).to.have.length(1);
      expect(unreadable[0].where.tx).to.equal(market.settlements[1].hash);
      expect(unreadable[0].message).to.contain(market.relay);
      expect(printed.sources).to.deep.equal({ calldata: 2, unavailable: 1 });
      expect(printed.rpc.rangeShrinks).to.be.greaterThan(0);
      expect(result.err).to.contain("the provider refused");
    } finally {
      await proxy.close();
    }
  });

  it("shows progress as a bar redrawn in place on a terminal, and as a few plain lines in a log", function () {
    let tty = "";
    const bar = progressLine({ write: (text: string) => (tty += text), isTTY: true, columns: 200 });
    bar.update("scanning logs: blocks", 50n, 200n, "12 logs");
    bar.note("the provider refused 200 blocks at once; asking for 100");
    bar.update("scanning logs: blocks", 200n, 200n, "40 logs");
    bar.done();
    expect(tty).to.contain("\r\x1b[2K[######------------------]  25% scanning logs: blocks 50/200 · 12 logs");
    // The note clears the bar first, so it is never printed over it.
    expect(tty).to.contain("12 logs\r\x1b[2Kthe provider refused");
    expect(tty).to.contain("[########################] 100% scanning logs: blocks 200/200 · 40 logs");
    expect(tty.endsWith("\r\x1b[2K")).to.equal(true);

    let log = "";
    let clock = 0;
    const plain = progressLine({ write: (text: string) => (log += text) }, () => clock);
    for (let done = 0; done <= 1_000; done++) {
      clock += 1; // a thousand updates within a second: only the phase's start and end get a line
      plain.update("scanning logs: blocks", done, 1_000);
    }
    plain.update("reading blocks for block times", 1, 10);
    expect(log.split("\n").filter(Boolean)).to.deep.equal([
      "0% scanning logs: blocks 0/1,000",
      "100% scanning logs: blocks 1,000/1,000",
      "10% reading blocks for block times 1/10",
    ]);
    expect(log).to.not.contain("\x1b");
  });

  it("exits 2 saying what went wrong and what to do when it cannot run", async function () {
    const unreachable = await run(["--rpc", "http://127.0.0.1:1", "--deployment", deploymentFile, "audit", "--no-checkpoint"]);
    expect(unreachable.code).to.equal(2);
    expect(unreachable.err).to.match(/^error: the audit could not run: /);
    expect(unreachable.err).to.contain("hint:");
    const notTollgate = await run(["--rpc", rpc.url, "audit", "--tollgate", ethers.Wallet.createRandom().address, "--no-checkpoint"]);
    expect(notTollgate.code).to.equal(2);
    expect(notTollgate.err).to.contain("there is no contract at");
    const unknownOption = await audit("--bogus");
    expect(unknownOption.code).to.equal(2);
    expect(unknownOption.err).to.contain("unknown option '--bogus'");
    const badFilter = await audit("--buyer", "0x1234");
    expect(badFilter.code).to.equal(2);
    expect(badFilter.err).to.contain('--buyer "0x1234" is not an address');
  });
});
