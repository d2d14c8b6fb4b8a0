/**
 * Invariant 2 for the oracle, with the oracle as a real OS process over JSON-RPC: it is SIGKILLed after
 * signing a batch, after sending it, and after it was mined but before the store was marked; restarted,
 * every record must end settled exactly once (the chain's batches contiguous, no gap, no repeat, each
 * record marked with the transaction that really settled it). Then the chain's RPC goes away and comes
 * back, a stuck transaction is replaced with higher fees, and a batch that would revert (revoked signer)
 * is reported without blocking another gateway's stream.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import hre from "hardhat";
import OpenAI from "openai";
import { getAddress, type Address, type Hex, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount, privateKeyToAddress } from "viem/accounts";
import { tollgateAbi } from "../../server/chain/abis";
import { merkleProof, verifyMerkleProof } from "../../server/chain/merkle";
import { parseGatewayConfig } from "../../server/config";
import { createGateway, type Gateway } from "../../server/gateway/gateway";
import { createOracle } from "../../server/oracle/oracle";
import { TxJournal } from "../../server/oracle/tx-journal";
import { UsageStore, type StoredUsageRecord } from "../../server/store/usage-store";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { gatewayConfigObject, nonce, startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";
import { killAllProcesses, spawnTsProcess, type ManagedProcess } from "../../scripts/lib/processes";
import { fundGas, oracleConfigFor, startOracleHarness } from "../helpers/oracle-harness";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function chat(harness: { openai(key: string): OpenAI }, key: string, n: number): Promise<void> {
  const client = harness.openai(key);
  for (let i = 0; i < n; i++) {
    await client.chat.completions.create({ model: i % 2 ? "large-model" : "small-model", messages: [{ role: "user", content: `question ${i}` }], max_tokens: 12 });
  }
}

async function waitFor<T>(what: string, read: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface BatchEvent {
  firstSequence: bigint;
  recordCount: bigint;
  contentRoot: Hex;
  txHash: Hex;
  commitment: Hex;
}

async function batchEvents(client: PublicClient, tollgate: Address, signer: Address): Promise<BatchEvent[]> {
  const logs = await client.getContractEvents({ address: tollgate, abi: tollgateAbi, eventName: "BatchSettled", args: { signer }, fromBlock: 0n, strict: true });
  return logs.map((log) => ({
    firstSequence: log.args.firstSequence,
    recordCount: log.args.recordCount,
    contentRoot: log.args.contentRoot,
    commitment: log.args.commitment,
    txHash: log.transactionHash,
  }));
}

/**
 * Every record of the store settled exactly once: the chain's batches for the signer run from 0 with no
 * gap or overlap and cover exactly the store's records; each record is marked with the transaction and
 * commitment of the batch that contains it, and its receipt is a leaf of that batch's content root.
 */
async function expectSettledExactlyOnce(client: PublicClient, tollgate: Address, signer: Address, records: StoredUsageRecord[]): Promise<BatchEvent[]> {
  const events = await batchEvents(client, tollgate, signer);
  let next = 0n;
  for (const event of events) {
    expect(event.firstSequence, "batches are contiguous").to.equal(next);
    next += event.recordCount;
  }
  expect(next, "the chain settled exactly the store's records").to.equal(BigInt(records.length));
  const status = await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] });
  expect(status.nextSequence).to.equal(BigInt(records.length));
  records.forEach((record, index) => expect(record.sequence).to.equal(BigInt(index)));
  for (const event of events) {
    const members = records.slice(Number(event.firstSequence), Number(event.firstSequence + event.recordCount));
    const leaves = members.map((record) => record.receiptHash);
    members.forEach((record, i) => {
      expect(record.settlement, `record ${record.sequence} is marked settled`).to.not.equal(null);
      expect(record.settlement!.txHash).to.equal(event.txHash.toLowerCase());
      expect(record.settlement!.batchId).to.equal(event.commitment);
      expect(verifyMerkleProof(event.contentRoot, record.receiptHash, merkleProof(leaves, i))).to.equal(true);
    });
  }
  return events;
}

describe("oracle: crash and chain faults", function () {
  this.timeout(180_000);
  let harness: GatewayHarness;
  let rpc: RpcServer;
  let key: string;

  beforeEach(async function () {
    harness = await startGatewayHarness();
    rpc = await startRpcServer(hre.network.provider);
    const buyer = harness.market.buyers[0];
    await harness.deposit(buyer, USD(50));
    key = (await harness.createKey(buyer)).key;
  });
  afterEach(async function () {
    await killAllProcesses();
    await hre.network.provider.request({ method: "evm_setAutomine", params: [true] });
    await rpc.close();
    await harness.close();
  });

  function storeRecords(): StoredUsageRecord[] {
    return harness.gateway.ctx.store.recordsOf(getAddress(harness.market.buyers[0].address), { limit: 1000 });
  }

  function writeOracleConfig(extra: Record<string, unknown> = {}): string {
    const file = path.join(harness.dir, "oracle.config.json");
    const config = {
      chain: { rpcUrl: rpc.url, deploymentFile: "deployment.json" },
      store: { path: "usage.sqlite" },
      log: { level: "info" },
      oracle: { pollMs: 50, batch: { maxRecords: 3, maxAgeMs: 0 }, retry: { initialMs: 50, maxMs: 500 }, listen: { port: 0 }, journalPath: "oracle-journal.json", ...extra },
    };
    fs.writeFileSync(file, JSON.stringify(config));
    return file;
  }

  function startOracleProcess(senderKey: Hex, failpoints: string[] = []): Promise<ManagedProcess> {
    return spawnTsProcess({
      script: "server/oracle/main.ts",
      name: "oracle",
      env: {
        TOLLGATE_CONFIG: writeOracleConfig(),
        TOLLGATE_ORACLE_KEY: senderKey,
        TOLLGATE_GATEWAY_SIGNER_KEY: harness.signerKey,
        TOLLGATE_FAILPOINTS: failpoints.join(","),
      },
      isReady: (line) => line.event === "listening",
    });
  }

  async function newSender(): Promise<Hex> {
    const senderKey = generatePrivateKey();
    await fundGas(privateKeyToAddress(senderKey));
    return senderKey;
  }

  async function nextSequence(): Promise<bigint> {
    return (await harness.client.readContract({ address: harness.config.chain.deployment.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [harness.signer] })).nextSequence;
  }

  /** Restarts the oracle without failpoints and waits until it has settled and marked all `count` records. */
  async function restartAndFinish(senderKey: Hex, count: number): Promise<void> {
    const oracle = await startOracleProcess(senderKey);
    await waitFor("every record settled and marked", () => {
      const records = storeRecords();
      return records.length === count && records.every((record) => record.settlement !== null);
    });
    expect((await oracle.stop()).code).to.equal(0);
  }

  it("killed after signing: nothing was sent; the restart signs the same batch again and settles each record once", async function () {
    await chat(harness, key, 7);
    const senderKey = await newSender();
    const killed = await startOracleProcess(senderKey, ["oracle.after-sign"]);
    expect((await killed.exited).signal).to.equal("SIGKILL");
    expect(killed.output()).to.include("failpoint oracle.after-sign");
    expect(await nextSequence()).to.equal(0n);
    expect(await harness.client.getTransactionCount({ address: privateKeyToAddress(senderKey) })).to.equal(0);

    await restartAndFinish(senderKey, 7);
    const events = await expectSettledExactlyOnce(harness.client, harness.config.chain.deployment.tollgate, harness.signer, storeRecords());
    expect(events.map((e) => Number(e.recordCount))).to.deep.equal([3, 3, 1]);
  });

  it("killed after sending (transaction still in the mempool): the restart finds it in its journal and waits for it instead of sending again", async function () {
    await chat(harness, key, 5);
    const senderKey = await newSender();
    const sender = privateKeyToAddress(senderKey);
    await hre.network.provider.request({ method: "evm_setAutomine", params: [false] });
    const killed = await startOracleProcess(senderKey, ["oracle.after-send"]);
    expect((await killed.exited).signal).to.equal("SIGKILL");
    const journal = new TxJournal(path.join(harness.dir, "oracle-journal.json")).read();
    expect(journal, "the sent transaction was journaled before it was broadcast").to.not.equal(undefined);
    expect(journal!.attempts).to.have.length(1);
    const pendingTx = await harness.client.getTransaction({ hash: journal!.attempts[0].hash });
    expect(pendingTx.blockNumber, "still in the mempool").to.equal(null);
    expect(await nextSequence()).to.equal(0n);

    const restarted = await startOracleProcess(senderKey);
    await sleep(300);
    // While the first transaction waits, the restarted oracle must not have sent a second one for the same records.
    expect(await harness.client.getTransactionCount({ address: sender, blockTag: "pending" })).to.equal(1);
    await hre.network.provider.request({ method: "evm_setAutomine", params: [true] });
    await hre.network.provider.request({ method: "evm_mine", params: [] });
    await waitFor("every record settled and marked", () => storeRecords().every((record) => record.settlement !== null) || undefined);
    expect((await restarted.stop()).code).to.equal(0);

    const events = await expectSettledExactlyOnce(harness.client, harness.config.chain.deployment.tollgate, harness.signer, storeRecords());
    expect(events[0].txHash).to.equal(journal!.attempts[0].hash, "the journaled transaction is the one that settled the first batch");
    expect(new TxJournal(path.join(harness.dir, "oracle-journal.json")).read()).to.equal(undefined);
  });

  it("killed after mining but before marking: the restart marks the records from the chain's BatchSettled event", async function () {
    await chat(harness, key, 4);
    const senderKey = await newSender();
    const killed = await startOracleProcess(senderKey, ["oracle.after-mine"]);
    expect((await killed.exited).signal).to.equal("SIGKILL");
    expect(await nextSequence()).to.equal(3n);
    expect(storeRecords().filter((record) => record.settlement !== null), "nothing marked before the kill").to.have.length(0);

    await restartAndFinish(senderKey, 4);
    const events = await expectSettledExactlyOnce(harness.client, harness.config.chain.deployment.tollgate, harness.signer, storeRecords());
    expect(events.map((e) => Number(e.recordCount))).to.deep.equal([3, 1]);
  });

  it("the chain's RPC goes away: health says so and nothing is lost; when it is back, settlement resumes", async function () {
    await chat(harness, key, 2);
    const senderKey = await newSender();
    const config = oracleConfigFor(harness, { senderKey, oracle: { batch: { maxRecords: 100, maxAgeMs: 0 }, pollMs: 50, retry: { initialMs: 50, maxMs: 200 } } });
    const oracle = await createOracle({ config: { ...config, rpcUrl: rpc.url } });
    const healthUrl = await oracle.listen(0);
    await oracle.start();
    try {
      await waitFor("the first records settled", () => storeRecords().every((record) => record.settlement !== null) || undefined);
      const port = rpc.port;
      await rpc.close();
      await chat(harness, key, 3); // the gateway reads the chain in-process; only the oracle lost it
      const down = await waitFor("health reporting the outage", async () => {
        const response = await fetch(`${healthUrl}/health`);
        const body = (await response.json()) as { status: string; streams: { state: string }[] };
        // The pass reads withdrawals and then each stream: wait until both have met the outage.
        return body.status === "down" && body.streams[0].state === "rpc_unavailable" ? { code: response.status, body } : undefined;
      });
      expect(down.code).to.equal(503);
      expect(down.body.streams[0].state).to.equal("rpc_unavailable");
      expect(storeRecords().filter((record) => record.settlement === null)).to.have.length(3);

      rpc = await startRpcServer(hre.network.provider, { port });
      await waitFor("settlement after the RPC returned", () => storeRecords().every((record) => record.settlement !== null) || undefined);
      // Health describes the last pass, which may have met the outage before its settlement went through.
      await waitFor("health back to ok", async () => ((await (await fetch(`${healthUrl}/health`)).json()).status === "ok" ? true : undefined));
      const metrics = await (await fetch(`${healthUrl}/metrics`)).text();
      expect(metrics).to.match(/tollgate_oracle_rpc_errors_total [1-9]/);
      expect(metrics).to.match(/tollgate_oracle_records_settled_total\{signer="0x[0-9a-fA-F]{40}"\} 5/);
    } finally {
      await oracle.close();
    }
    await expectSettledExactlyOnce(harness.client, harness.config.chain.deployment.tollgate, harness.signer, storeRecords());
  });

  it("a transaction stuck in the mempool is replaced with the same nonce and higher fees, and only one of them settles", async function () {
    await chat(harness, key, 2);
    const { oracle } = await startOracleHarness(harness, { oracle: { batch: { maxRecords: 100, maxAgeMs: 0 }, gas: { stuckAfterMs: 150, feeBumpPercent: 25 } } });
    await hre.network.provider.request({ method: "evm_setAutomine", params: [false] });
    const settling = oracle.runOnce();
    const journalDir = path.join(harness.dir, "oracle");
    const journal = await waitFor("a fee bump", () => {
      const file = fs.existsSync(journalDir) ? fs.readdirSync(journalDir).find((name) => name.endsWith(".json")) : undefined;
      const entry = file ? new TxJournal(path.join(journalDir, file)).read() : undefined;
      return entry && entry.attempts.length >= 2 ? entry : undefined;
    });
    const [first, second] = journal.attempts;
    expect(BigInt(second.maxFeePerGas) * 100n >= BigInt(first.maxFeePerGas) * 125n).to.equal(true);
    expect(BigInt(second.maxPriorityFeePerGas) * 100n >= BigInt(first.maxPriorityFeePerGas) * 125n).to.equal(true);
    await hre.network.provider.request({ method: "evm_mine", params: [] });
    const [result] = await settling;
    await hre.network.provider.request({ method: "evm_setAutomine", params: [true] });
    await oracle.close();
    expect(result.kind).to.equal("settled");
    const settledBy = (result as { txHash: Hex }).txHash;
    expect(journal.attempts.map((attempt) => attempt.hash)).to.include(settledBy);
    expect(settledBy).to.not.equal(first.hash, "the replacement, not the underpriced original, was mined");
    expect(await (await oracle.metrics.registry.getSingleMetric("tollgate_oracle_fee_bumps_total")!.get()).values[0].value).to.be.greaterThan(0);
    await expectSettledExactlyOnce(harness.client, harness.config.chain.deployment.tollgate, harness.signer, storeRecords());
  });

  it("a nonce taken by a transaction the oracle did not send is reported, and the batch is rebuilt and settled on the next pass", async function () {
    await chat(harness, key, 2);
    const { oracle, senderKey } = await startOracleHarness(harness, { oracle: { batch: { maxRecords: 100, maxAgeMs: 0 } } });
    try {
      await hre.network.provider.request({ method: "evm_setAutomine", params: [false] });
      const pass = oracle.runOnce();
      const journalDir = path.join(harness.dir, "oracle");
      const journal = await waitFor("the batch sent", () => {
        const file = fs.existsSync(journalDir) ? fs.readdirSync(journalDir).find((name) => name.endsWith(".json")) : undefined;
        return file ? new TxJournal(path.join(journalDir, file)).read() : undefined;
      });
      // Someone else with the oracle's key replaces its transaction (same nonce, higher fees) with a plain transfer.
      const account = privateKeyToAccount(senderKey);
      const intruder = await account.signTransaction({
        type: "eip1559",
        chainId: Number(harness.market.chainId),
        nonce: journal.nonce,
        to: account.address,
        value: 0n,
        gas: 21_000n,
        maxFeePerGas: BigInt(journal.attempts[0].maxFeePerGas) * 2n,
        maxPriorityFeePerGas: BigInt(journal.attempts[0].maxPriorityFeePerGas) * 2n,
      });
      await hre.network.provider.request({ method: "eth_sendRawTransaction", params: [intruder] });
      await hre.network.provider.request({ method: "evm_mine", params: [] });
      const [failed] = await pass;
      expect(failed.kind).to.equal("retry");
      expect((failed as { reason: string }).reason).to.include(`nonce ${journal.nonce}`).and.include("did not send");
      expect(oracle.health().streams[0].state).to.equal("error");
      expect(await nextSequence()).to.equal(0n);

      await hre.network.provider.request({ method: "evm_setAutomine", params: [true] });
      const [settled] = await oracle.runOnce({ force: true });
      expect(settled).to.include({ kind: "settled", firstSequence: 0n, lastSequence: 1n });
    } finally {
      await oracle.close();
    }
    await expectSettledExactlyOnce(harness.client, harness.config.chain.deployment.tollgate, harness.signer, storeRecords());
  });

  it("a batch that would revert (revoked signer) is reported with its decoded error and does not block another gateway", async function () {
    const { market } = harness;
    // A second gateway instance on the same deployment, with its own signer key and store.
    const dirB = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-gateway-b-"));
    fs.copyFileSync(path.join(harness.dir, "deployment.json"), path.join(dirB, "deployment.json"));
    const keyB = generatePrivateKey();
    await (await market.tollgate.connect(market.provider).setSignerAuthorization(market.providerId, privateKeyToAddress(keyB), true)).wait();
    const configB = parseGatewayConfig(gatewayConfigObject(dirB, harness.sim.url), { TOLLGATE_GATEWAY_SIGNER_KEY: keyB }, dirB);
    const gatewayB: Gateway = await createGateway({ config: configB, client: harness.client });
    const urlB = await gatewayB.listen(0, "127.0.0.1");
    try {
      const buyer = market.buyers[0];
      const message = {
        buyer: buyer.address, label: "b", spendCap: "0", models: [], tags: [], expiresAt: "0",
        issuedAt: Math.floor(Date.now() / 1000).toString(), nonce: nonce(),
      };
      const signature = await harness.signKeyMessage(buyer, "CreateApiKey", message);
      const created = await fetch(`${urlB}/v1/keys`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ message, signature }) });
      const keyForB = ((await created.json()) as { key: string }).key;

      await chat(harness, key, 2);
      await chat({ openai: (k: string) => new OpenAI({ baseURL: `${urlB}/v1`, apiKey: k, maxRetries: 0 }) }, keyForB, 3);
      await (await market.tollgate.connect(market.provider).setSignerAuthorization(market.providerId, harness.signer, false)).wait();

      const { oracle } = await startOracleHarness(harness, {
        oracle: {
          batch: { maxRecords: 100, maxAgeMs: 0 },
          retry: { initialMs: 60_000, maxMs: 60_000 },
          streams: [
            { storePath: "usage.sqlite", signerKeyEnv: "TOLLGATE_GATEWAY_SIGNER_KEY" },
            { storePath: path.join(dirB, "usage.sqlite"), signerKeyEnv: "GATEWAY_B_SIGNER_KEY" },
          ],
        },
        env: { GATEWAY_B_SIGNER_KEY: keyB },
      });
      try {
        const [a, b] = await oracle.runOnce();
        expect(a.kind).to.equal("rejected");
        expect((a as { revert: { name: string; args: string[] } }).revert.name).to.equal("SettlementUnauthorizedSigner");
        expect((a as { revert: { name: string; args: string[] } }).revert.args).to.deep.equal([harness.signer]);
        expect(b.kind).to.equal("settled");

        const health = oracle.health();
        expect(health.status).to.equal("degraded");
        expect(health.streams[0]).to.include({ state: "blocked", recordsPending: 2 });
        expect(health.streams[0].lastError!.message).to.include("SettlementUnauthorizedSigner").and.include("authorize-signer");
        expect(health.streams[1]).to.include({ state: "idle", recordsPending: 0 });
        expect(await nextSequence()).to.equal(0n);
        expect(storeRecords().every((record) => record.settlement === null), "gateway A's records are untouched").to.equal(true);

        // The provider re-authorizes the key: a forced pass settles A without waiting out the backoff.
        await (await market.tollgate.connect(market.provider).setSignerAuthorization(market.providerId, harness.signer, true)).wait();
        const [again] = await oracle.runOnce({ force: true });
        expect(again.kind).to.equal("settled");
        expect(oracle.health().status).to.equal("ok");
      } finally {
        await oracle.close();
      }
      await expectSettledExactlyOnce(harness.client, harness.config.chain.deployment.tollgate, harness.signer, storeRecords());
      const storeB = UsageStore.open({ path: path.join(dirB, "usage.sqlite"), signer: privateKeyToAddress(keyB), firstSequence: 3n });
      try {
        await expectSettledExactlyOnce(harness.client, harness.config.chain.deployment.tollgate, privateKeyToAddress(keyB), storeB.recordsOf(getAddress(buyer.address), { limit: 100 }));
      } finally {
        storeB.close();
      }
    } finally {
      await gatewayB.close();
    }
  });
});
