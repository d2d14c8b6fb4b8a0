/**
 * Invariant 2 for the gateway, with the gateway as a real OS process: kill it with SIGKILL in the middle
 * of a burst of metered calls (streaming and not, several buyers, through the official `openai` client),
 * restart it on the same usage store, and check the store against what every client saw:
 *
 * - every call that got a response (a signed receipt) has exactly one record, with the same sequence,
 *   buyer, receipt hash and signature;
 * - the store's sequences run from the chain's next sequence with no gap and no repeat, and the restarted
 *   gateway continues exactly where the store ends (no pre-kill record renumbered or overwritten);
 * - a record whose response was lost in the kill is allowed, but it must belong to a call that was cut off,
 *   and be a whole, validly signed record; a call answered with an error has no record.
 *
 * And group commit (records that finish in the same turn of the event loop share one transaction): the
 * `gateway.after-commit:N` failpoint SIGKILLs the gateway right after a group's COMMIT and before any of its
 * answers is released; every answer a client got still has its record, and the killed group's records are
 * whole although nobody was answered.
 *
 * And graceful shutdown: SIGTERM mid-burst exits 0, every accepted call either completes with a receipt or
 * gets an OpenAI-style 503, and nothing is recorded that the client did not receive.
 *
 * Each call sends its own `x-request-id`, which the gateway keeps as the record's `requestId` and forwards
 * upstream, so every record is matched to exactly one client call, and a pass-through proxy in front of the
 * simulator tells which calls the gateway had accepted and was serving.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import hre from "hardhat";
import OpenAI from "openai";
import { createPublicClient, custom, getAddress, verifyTypedData, type Address, type Hex, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { tollgateDomain, usageReceiptTypes } from "../../server/chain/eip712";
import { MarketplaceReader } from "../../server/chain/marketplace-reader";
import { recordCost } from "../../server/chain/pricing";
import { hashReceipt } from "../../server/chain/usage-batch";
import { apiKeyMessageTypes, gatewayDomain } from "../../server/gateway/api-keys/wallet-messages";
import { parseReceiptHeader, usageReceiptOf, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { UsageStore, type StoredUsageRecord } from "../../server/store/usage-store";
import { startSimulatedUpstream, type SimulatedUpstream } from "../../server/upstream/simulated-upstream";
import { deployMarketplace, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { gatewayConfigObject, nonce } from "../helpers/gateway-harness";
import { killAllProcesses, startGatewayProcess, type GatewayProcess } from "../../scripts/lib/processes";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";

type Buyer = Marketplace["buyers"][number];

interface BuyerKey {
  buyer: Address;
  keyId: string;
  key: string;
}

type Outcome =
  /** Answered and metered: the client holds a signed receipt. */
  | { kind: "receipt"; envelope: ReceiptEnvelope; afterSignal: boolean }
  /** Answered with an OpenAI error (HTTP status, or an error event in a stream). */
  | { kind: "error"; status: number | undefined; type: string | undefined; code: string | null | undefined; message: string }
  /** No answer: the connection was refused, reset or cut mid-stream. */
  | { kind: "cut"; message: string; chunks: number }
  /** A stream that ended cleanly without a receipt chunk: must never happen. */
  | { kind: "no-receipt"; chunks: number };

interface Call {
  id: string;
  /** Which gateway process (0 before the first restart, 1 after it, …) the call was sent to. */
  phase: number;
  buyer: Address;
  keyId: string;
  streaming: boolean;
  outcome?: Outcome;
}

/** The messages and codes along an error's cause chain (fetch hides ECONNREFUSED two levels down). */
function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let e = error as { message?: string; code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    parts.push(e.code ? `${e.message} (${e.code})` : String(e.message ?? e));
  }
  return parts.join(" <- ");
}

/** A fresh gateway signer (authorized on-chain) with its own store directory and config file. */
interface GatewaySite {
  dir: string;
  configPath: string;
  storePath: string;
  signerKey: Hex;
  signer: Address;
  firstSequence: bigint;
}

const BUYERS = 3;
/** CRASH_TEST_VERBOSE=1 prints what each burst saw and how many records lost their response. */
const VERBOSE = process.env.CRASH_TEST_VERBOSE === "1";
const SIM_LATENCY_MS = 40;

describe("gateway crash recovery: SIGKILL / SIGTERM of the gateway process (invariant 2)", function () {
  this.timeout(120_000);

  let market: Marketplace;
  let client: PublicClient;
  let tollgate: Address;
  let chainId: number;
  let sim: SimulatedUpstream;
  /** A pass-through proxy in front of the simulator: records which calls the gateway forwarded upstream. */
  let upstreamProxy: http.Server;
  let upstreamUrl: string;
  const forwarded = new Set<string>();
  let rpc: RpcServer;
  const dirs: string[] = [];
  let callCounter = 0;

  before(async function () {
    market = await deployMarketplace();
    tollgate = getAddress(await market.tollgate.getAddress());
    chainId = Number(market.chainId);
    client = createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
    for (const buyer of market.buyers.slice(0, BUYERS)) {
      await (await market.tollgate.connect(buyer).deposit(buyer.address, USD(200))).wait();
    }
    // Latency before the first byte and between streamed chunks, so calls are in flight when a signal lands.
    sim = await startSimulatedUpstream({ latencyMs: SIM_LATENCY_MS, interTokenDelayMs: 1 });
    upstreamProxy = http.createServer((req, res) => {
      // The gateway forwards each call's request id upstream: proof that it accepted and was serving the call.
      const id = req.headers["x-request-id"];
      if (typeof id === "string") forwarded.add(id);
      const out = http.request({ host: "127.0.0.1", port: sim.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on("error", () => res.destroy());
      res.on("close", () => {
        if (!res.writableFinished) out.destroy();
      });
      req.pipe(out);
    });
    await new Promise<void>((resolve) => upstreamProxy.listen(0, "127.0.0.1", resolve));
    upstreamUrl = `http://127.0.0.1:${(upstreamProxy.address() as AddressInfo).port}/v1`;
    rpc = await startRpcServer(hre.network.provider);
  });

  after(async function () {
    await killAllProcesses();
    await rpc?.close();
    if (upstreamProxy?.listening) {
      upstreamProxy.closeAllConnections();
      await new Promise((resolve) => upstreamProxy.close(resolve));
    }
    await sim?.close();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function newSite(): Promise<GatewaySite> {
    const signerKey = generatePrivateKey();
    const signer = privateKeyToAddress(signerKey);
    await (await market.tollgate.connect(market.provider).setSignerAuthorization(market.providerId, signer, true)).wait();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-crash-"));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId, tollgate }));
    const config = gatewayConfigObject(dir, upstreamUrl, {
      listen: { host: "127.0.0.1", port: 0 },
      chain: { deploymentFile: "deployment.json", accountCacheMs: 1_000, registryRefreshMs: 60_000 },
      models: [
        { name: "small-model", modelId: 1, upstream: "sim", maxOutputTokens: 512 },
        { name: "large-model", modelId: 2, upstream: "sim", upstreamModel: "large-reasoning", maxOutputTokens: 1024 },
      ],
      log: { level: "warn" },
    });
    const configPath = path.join(dir, "tollgate.config.json");
    fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
    const { nextSequence } = await new MarketplaceReader(client, tollgate).signerStatus(signer);
    return { dir, configPath, storePath: path.join(dir, "usage.sqlite"), signerKey, signer, firstSequence: nextSequence };
  }

  function startGateway(site: GatewaySite, env?: Record<string, string>): Promise<GatewayProcess> {
    return startGatewayProcess({ configPath: site.configPath, signerKey: site.signerKey, rpcUrl: rpc.url, env });
  }

  async function createKey(url: string, buyer: Buyer): Promise<BuyerKey> {
    const message = {
      buyer: buyer.address,
      label: "crash test",
      spendCap: "0",
      models: [],
      tags: ["team:crash"],
      expiresAt: "0",
      issuedAt: Math.floor(Date.now() / 1000).toString(),
      nonce: nonce(),
    };
    const types = { CreateApiKey: apiKeyMessageTypes.CreateApiKey.map((field) => ({ ...field })) };
    const signature = await buyer.signTypedData(gatewayDomain(chainId, tollgate) as Record<string, unknown>, types, message);
    const response = await fetch(`${url}/v1/keys`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ message, signature }) });
    const body = (await response.json()) as { key: string; id: string };
    expect(response.status, JSON.stringify(body)).to.equal(201);
    return { buyer: getAddress(buyer.address), keyId: body.id, key: body.key };
  }

  async function nextSequenceOf(gateway: GatewayProcess): Promise<bigint> {
    const health = (await (await fetch(`${gateway.url}/health`)).json()) as { next_sequence: string };
    return BigInt(health.next_sequence);
  }

  /** One metered call through the official client; never throws, the outcome says what happened. */
  async function callOnce(openai: OpenAI, call: Call, index: number, signalSent: () => boolean): Promise<Outcome> {
    const body = {
      model: index % 5 === 0 ? "large-model" : "small-model",
      messages: [{ role: "user" as const, content: `Call ${call.id}: say something about toll roads and metering.` }],
      max_tokens: 16 + (index % 3) * 8,
    };
    const options = { headers: { "x-request-id": call.id } };
    let chunks = 0;
    try {
      if (call.streaming) {
        const stream = await openai.chat.completions.create({ ...body, stream: true }, options);
        let envelope: ReceiptEnvelope | undefined;
        for await (const chunk of stream) {
          chunks++;
          const receipt = (chunk as unknown as { tollgate_receipt?: ReceiptEnvelope }).tollgate_receipt;
          if (receipt) envelope = receipt;
        }
        if (!envelope) return { kind: "no-receipt", chunks };
        return { kind: "receipt", envelope, afterSignal: signalSent() };
      }
      const { data, response } = await openai.chat.completions.create(body, options).withResponse();
      const header = response.headers.get("x-tollgate-receipt");
      if (!header || !data.choices?.length) return { kind: "no-receipt", chunks: 0 };
      return { kind: "receipt", envelope: parseReceiptHeader(header), afterSignal: signalSent() };
    } catch (error) {
      if (error instanceof OpenAI.APIConnectionError) return { kind: "cut", message: describeError(error), chunks };
      if (error instanceof OpenAI.APIError) {
        const detail = error.error as { type?: string; code?: string | null } | undefined;
        return { kind: "error", status: error.status, type: error.type ?? detail?.type, code: error.code ?? detail?.code, message: error.message };
      }
      return { kind: "cut", message: describeError(error), chunks };
    }
  }

  /**
   * `total` calls, `concurrency` at a time, round-robin over the buyers' keys; `streaming(i)` picks the mode.
   * `signalAfter` receipts into the burst, `signal` is sent to the gateway process.
   */
  async function burst(
    gateway: GatewayProcess,
    keys: BuyerKey[],
    options: { phase: number; total: number; concurrency: number; streaming: (i: number) => boolean; signalAfter?: number; signal?: NodeJS.Signals },
  ): Promise<Call[]> {
    const clients = keys.map((k) => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: k.key, maxRetries: 0, timeout: 60_000 }));
    const calls: Call[] = Array.from({ length: options.total }, (_, i) => ({
      id: `crash-${process.pid}-${++callCounter}`,
      phase: options.phase,
      buyer: keys[i % keys.length].buyer,
      keyId: keys[i % keys.length].keyId,
      streaming: options.streaming(i),
    }));
    let receipts = 0;
    let signalled = false;
    let next = 0;
    const worker = async () => {
      while (next < calls.length) {
        const i = next++;
        const call = calls[i];
        call.outcome = await callOnce(clients[i % clients.length], call, i, () => signalled);
        if (call.outcome.kind === "receipt" && ++receipts === options.signalAfter && options.signal) {
          signalled = true;
          gateway.kill(options.signal);
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    if (VERBOSE) console.log(`      phase ${options.phase}: ${summary(calls)}`);
    return calls;
  }

  function summary(calls: Call[]): string {
    const counts = new Map<string, number>();
    for (const call of calls) {
      const o = call.outcome!;
      const label =
        o.kind === "error" ? `error ${o.status ?? "stream"} ${o.code}` : o.kind === "cut" ? (o.chunks > 0 ? "cut mid-stream" : `cut (${/ECONNREFUSED/.test(o.message) ? "refused" : "dropped"})`) : o.kind;
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
    return [...counts].map(([k, v]) => `${k}: ${v}`).join(", ");
  }

  function receiptsOf(calls: Call[]): Array<{ call: Call; envelope: ReceiptEnvelope }> {
    return calls.flatMap((call) => (call.outcome?.kind === "receipt" ? [{ call, envelope: call.outcome.envelope }] : []));
  }

  /** Recomputes the record's receipt hash and checks its signature against the gateway key. */
  async function expectWellFormed(record: StoredUsageRecord, site: GatewaySite, call: Call): Promise<void> {
    const message = usageReceiptOf(record);
    const where = `record ${record.sequence} (request ${record.requestId})`;
    expect(record.signer, where).to.equal(site.signer);
    expect(record.buyer, where).to.equal(call.buyer);
    expect(record.keyId, where).to.equal(call.keyId);
    expect(record.streamed, where).to.equal(call.streaming);
    expect(record.outputTokens, where).to.be.greaterThan(0);
    expect(record.cost, where).to.equal(recordCost(record, { input: record.inputPrice, cachedInput: record.cachedInputPrice, output: record.outputPrice }));
    expect(record.receiptHash, where).to.equal(hashReceipt(message));
    const valid = await verifyTypedData({
      address: site.signer,
      domain: tollgateDomain(chainId, tollgate),
      types: usageReceiptTypes,
      primaryType: "UsageReceipt",
      message,
      signature: record.signature,
    });
    expect(valid, `${where}: signature does not verify against the gateway key`).to.equal(true);
  }

  /**
   * Opens the store the way the gateway does (its signer, the chain's next sequence) and checks it against
   * every call the clients made. `boundaries[k]` is the next sequence the k-th restarted gateway reported.
   * Returns the records whose response never reached the client.
   */
  async function verifyStore(site: GatewaySite, calls: Call[], boundaries: bigint[] = []): Promise<StoredUsageRecord[]> {
    const store = UsageStore.open({ path: site.storePath, signer: site.signer, firstSequence: site.firstSequence });
    let records: StoredUsageRecord[];
    let count: number;
    try {
      records = store.unsettledRecords(site.firstSequence, 1_000_000);
      count = store.recordCount();
    } finally {
      store.close();
    }
    expect(records.length, "every record is unsettled and at or after the chain's next sequence").to.equal(count);

    // Contiguous from the chain's first sequence: no gap, no repeat.
    records.forEach((record, i) => expect(record.sequence, `record #${i}`).to.equal(site.firstSequence + BigInt(i)));

    const callsById = new Map(calls.map((call) => [call.id, call]));
    const recordsById = new Map<string, StoredUsageRecord>();
    const lostResponses: StoredUsageRecord[] = [];
    for (const record of records) {
      const call = callsById.get(record.requestId);
      expect(call, `record ${record.sequence} has request id ${record.requestId}, which no client sent`).to.not.equal(undefined);
      expect(recordsById.has(record.requestId), `request ${record.requestId} has two records`).to.equal(false);
      recordsById.set(record.requestId, record);
      expect(forwarded.has(record.requestId), `record ${record.sequence}: its call never reached the upstream`).to.equal(true);
      await expectWellFormed(record, site, call!);
      // Before a restart's boundary iff sent before that restart: nothing renumbered, nothing overwritten.
      for (let k = 0; k < boundaries.length; k++) {
        expect(record.sequence < boundaries[k], `record ${record.sequence} of phase ${call!.phase} vs restart ${k + 1} at ${boundaries[k]}`).to.equal(call!.phase <= k);
      }
      const outcome = call!.outcome!;
      if (outcome.kind !== "receipt") {
        // Served, but the answer was lost with the process: allowed only for a call that was cut off.
        expect(outcome.kind, `request ${record.requestId} has a record but its client got ${JSON.stringify(outcome)}`).to.equal("cut");
        lostResponses.push(record);
      }
    }

    const receipts = receiptsOf(calls);
    const sequences = new Set(receipts.map((r) => r.envelope.receipt.sequence));
    expect(sequences.size, "two receipts carry the same sequence").to.equal(receipts.length);
    for (const { call, envelope } of receipts) {
      const record = recordsById.get(call.id);
      expect(record, `call ${call.id} got receipt ${envelope.receipt.sequence} but has no record`).to.not.equal(undefined);
      expect(record!.sequence.toString()).to.equal(envelope.receipt.sequence);
      expect(record!.buyer).to.equal(envelope.receipt.buyer);
      expect(record!.receiptHash).to.equal(envelope.receiptHash);
      expect(record!.signature).to.equal(envelope.signature);
      expect(envelope.signer).to.equal(site.signer);
    }
    if (VERBOSE) console.log(`      store: ${records.length} records, ${receipts.length} receipts, ${lostResponses.length} served with the response lost`);
    expect(records.length).to.equal(receipts.length + lostResponses.length);
    expect(records.length).to.be.at.least(receipts.length);
    return lostResponses;
  }

  /** After a restart: a few calls, all answered, continuing the sequence exactly where the store ended. */
  async function callsAfterRestart(gateway: GatewayProcess, keys: BuyerKey[], phase: number): Promise<{ calls: Call[]; boundary: bigint }> {
    const boundary = await nextSequenceOf(gateway);
    const calls = await burst(gateway, keys, { phase, total: 12, concurrency: 4, streaming: (i) => i % 2 === 0 });
    expect(calls.map((c) => c.outcome!.kind), summary(calls)).to.deep.equal(calls.map(() => "receipt"));
    const sequences = receiptsOf(calls)
      .map((r) => BigInt(r.envelope.receipt.sequence))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(sequences).to.deep.equal(calls.map((_, i) => boundary + BigInt(i)));
    return { calls, boundary };
  }

  async function expectKilled(gateway: GatewayProcess, signal: NodeJS.Signals): Promise<void> {
    const status = await gateway.exited;
    expect(status, gateway.output()).to.deep.equal({ code: null, signal });
  }

  async function expectCleanExit(gateway: GatewayProcess): Promise<void> {
    const status = await gateway.stop();
    expect(status, gateway.output()).to.deep.equal({ code: 0, signal: null });
  }

  function expectKillBurst(calls: Call[], signalAfter: number): void {
    const label = summary(calls);
    // Only receipts and cut connections: SIGKILL gives no error answers, and nothing else failed.
    expect(calls.filter((c) => c.outcome!.kind !== "receipt" && c.outcome!.kind !== "cut").map((c) => c.outcome), label).to.deep.equal([]);
    expect(receiptsOf(calls).length, label).to.be.at.least(signalAfter);
    // The kill landed mid-burst, with calls in flight: some were cut on an open connection, not just refused.
    const cut = calls.filter((c) => c.outcome!.kind === "cut") as Array<Call & { outcome: { kind: "cut"; message: string } }>;
    expect(cut.filter((c) => !/ECONNREFUSED/.test(c.outcome.message)).length, label).to.be.greaterThan(0);
  }

  it("SIGKILL during a streaming-heavy burst, restart, SIGKILL during a non-streaming burst, restart: every receipt has exactly one record, no gap, no repeat", async function () {
    const site = await newSite();
    let gateway = await startGateway(site);
    const keys: BuyerKey[] = [];
    for (const buyer of market.buyers.slice(0, BUYERS)) keys.push(await createKey(gateway.url, buyer));

    // Kill 1: three calls in four stream, so most in-flight calls are mid-stream or about to be.
    const first = await burst(gateway, keys, { phase: 0, total: 240, concurrency: 32, streaming: (i) => i % 4 !== 3, signalAfter: 80, signal: "SIGKILL" });
    await expectKilled(gateway, "SIGKILL");
    expectKillBurst(first, 80);

    // Kill 2, on the store the first kill left behind: non-streaming calls only.
    gateway = await startGateway(site);
    const boundary1 = await nextSequenceOf(gateway);
    const second = await burst(gateway, keys, { phase: 1, total: 240, concurrency: 32, streaming: () => false, signalAfter: 100, signal: "SIGKILL" });
    await expectKilled(gateway, "SIGKILL");
    expectKillBurst(second, 100);

    gateway = await startGateway(site);
    const after = await callsAfterRestart(gateway, keys, 2);
    await expectCleanExit(gateway);

    const all = [...first, ...second, ...after.calls];
    const lost = await verifyStore(site, all, [boundary1, after.boundary]);
    // Each restart resumed right after the last record the killed process committed.
    const recordedBefore = (phase: number) => receiptsOf(all.filter((c) => c.phase < phase)).length + lost.filter((r) => all.find((c) => c.id === r.requestId)!.phase < phase).length;
    expect(boundary1).to.equal(site.firstSequence + BigInt(recordedBefore(1)));
    expect(after.boundary).to.equal(site.firstSequence + BigInt(recordedBefore(2)));
  });

  it("SIGKILL between a group commit and its answers: every answer the client got has its record after the restart, and the group that was never answered is whole", async function () {
    const site = await newSite();
    let gateway = await startGateway(site);
    const keys: BuyerKey[] = [];
    for (const buyer of market.buyers.slice(0, BUYERS)) keys.push(await createKey(gateway.url, buyer));
    await expectCleanExit(gateway);

    const threshold = 60;
    gateway = await startGateway(site, { TOLLGATE_FAILPOINTS: `gateway.after-commit:${threshold}` });
    const calls = await burst(gateway, keys, { phase: 0, total: 240, concurrency: 32, streaming: (i) => i % 3 === 0 });
    await expectKilled(gateway, "SIGKILL");
    expect(gateway.output()).to.match(new RegExp(`failpoint gateway.after-commit:${threshold} reached`));
    const label = summary(calls);
    expect(calls.filter((c) => c.outcome!.kind !== "receipt" && c.outcome!.kind !== "cut").map((c) => c.outcome), label).to.deep.equal([]);

    gateway = await startGateway(site);
    const after = await callsAfterRestart(gateway, keys, 1);
    await expectCleanExit(gateway);

    const all = [...calls, ...after.calls];
    // Every receipt a client holds has its record, and every record is whole and validly signed.
    const lost = await verifyStore(site, all, [after.boundary]);
    // The kill came after the commit that crossed the threshold: that many records survived it…
    expect(after.boundary - site.firstSequence >= BigInt(threshold), `${label}; restart at ${after.boundary}`).to.equal(true);
    // …and the last group committed before the kill was never answered: its last record is one with no answer.
    const lastBeforeKill = after.boundary - 1n;
    expect(lost.map((record) => record.sequence), label).to.include(lastBeforeKill);
    expect(receiptsOf(calls).map((r) => BigInt(r.envelope.receipt.sequence))).to.not.include(lastBeforeKill);
  });

  it("SIGTERM during a burst: exits 0, every accepted call is answered with a receipt or a 503, and nothing is recorded that was not received", async function () {
    const site = await newSite();
    const gateway = await startGateway(site);
    const keys: BuyerKey[] = [];
    for (const buyer of market.buyers.slice(0, BUYERS)) keys.push(await createKey(gateway.url, buyer));

    const calls = await burst(gateway, keys, { phase: 0, total: 240, concurrency: 32, streaming: (i) => i % 2 === 0, signalAfter: 80, signal: "SIGTERM" });
    const status = await gateway.exited;
    expect(status, gateway.output()).to.deep.equal({ code: 0, signal: null });
    const label = summary(calls);

    for (const call of calls) {
      const outcome = call.outcome!;
      if (outcome.kind === "error") {
        // Arrived while draining: the OpenAI error shape, retryable.
        expect({ status: outcome.status, type: outcome.type, code: outcome.code }, `${call.id}: ${outcome.message}`).to.deep.equal({
          status: 503,
          type: "server_error",
          code: "shutting_down",
        });
      } else {
        expect(outcome.kind, `${call.id}: ${JSON.stringify(outcome)}`).to.be.oneOf(["receipt", "cut"]);
      }
    }
    // Accepted means the gateway was serving it: every call it forwarded upstream was answered with a receipt.
    const dropped = calls.filter((c) => forwarded.has(c.id) && c.outcome!.kind !== "receipt");
    expect(dropped.map((c) => ({ id: c.id, outcome: c.outcome })), label).to.deep.equal([]);
    const receipts = receiptsOf(calls);
    expect(receipts.length, label).to.be.at.least(80);
    // The calls in flight when the signal came were drained to completion, not dropped.
    expect(receipts.filter((r) => r.call.outcome!.kind === "receipt" && (r.call.outcome as { afterSignal: boolean }).afterSignal).length, label).to.be.greaterThan(0);
    expect(calls.filter((c) => c.outcome!.kind !== "receipt").length, `${label}: the burst outlived the gateway`).to.be.greaterThan(0);

    // A graceful stop loses no response: the store holds exactly the receipts, and calls that were refused
    // or cut before the gateway accepted them (no answer at all) were never served.
    const lost = await verifyStore(site, calls);
    expect(lost.map((r) => r.requestId), label).to.deep.equal([]);
  });
});
