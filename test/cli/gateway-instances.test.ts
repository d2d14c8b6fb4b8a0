/**
 * `tollgate operator start-gateway --instances 2` and `start-oracle --instances 2` as an operator runs them: the
 * CLI as an OS process, the cluster primary and its two gateway workers as OS processes, Hardhat's chain over
 * JSON-RPC, the simulated upstream, a real redis-server for the fleet section. Checked: the refusals (no fleet
 * section, unauthorized signers) name the fix; `authorize-signers` authorizes every instance key; calls on the one
 * port reach both instances and come back signed by two keys; each instance writes its own store; a SIGKILLed
 * instance is restarted and serves again under its own key and sequence; SIGTERM drains all; one oracle key then
 * settles both stores exactly once and the buyer pays exactly the sum of the records.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import hre, { ethers } from "hardhat";
import { createPublicClient, custom, getAddress, recoverTypedDataAddress, type Address, type Hex, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { runCli } from "../../scripts/cli";
import { deployMarketplace, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { killAllProcesses, spawnTsProcess, type ManagedProcess } from "../../scripts/lib/processes";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import { tollgateAbi } from "../../server/chain/abis";
import { usageReceiptTypes } from "../../server/chain/eip712";
import { parseReceiptHeader, usageReceiptFromEnvelope, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { createApiKey } from "../../client";
import { deriveInstanceSignerKey } from "../../server/gateway-instances/instance-keys";
import { instanceStorePath } from "../../server/gateway-instances/instance-layout";
import { UsageStore, type StoredUsageRecord } from "../../server/store/usage-store";
import { startSimulatedUpstream } from "../../server/upstream/simulated-upstream";
import { fundGas } from "../helpers/oracle-harness";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, read: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A real redis-server on a free port in `dir`, for the config's fleet section. */
async function startRedis(dir: string): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
    child.once("error", (error) => reject(new Error(`cannot run redis-server (install Debian's redis-server): ${error.message}`)));
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { url: `redis://127.0.0.1:${port}`, process: child };
}

/** Runs the `tollgate` command as its own process until it exits. */
function runTollgate(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "scripts/tollgate.ts", ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  // A command still running after the limit is stopped (SIGTERM reaches what it started) and reported with its output.
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    child.kill("SIGTERM");
  }, 90_000);
  const killTimer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({ code, out, err: late ? `${err}\n(still running after 90 s: stopped)` : err });
    }),
  );
}

interface Served {
  status: number;
  envelope?: ReceiptEnvelope;
  body: string;
}

/** One chat call on a fresh connection (no keep-alive), so the primary's round-robin picks an instance per call. */
function chatOnce(url: string, key: string, question: string): Promise<Served> {
  const body = JSON.stringify({ model: "small-model", messages: [{ role: "user", content: question }], max_tokens: 12 });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/chat/completions`,
      { method: "POST", agent: false, headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => {
          const header = res.headers["x-tollgate-receipt"];
          resolve({ status: res.statusCode ?? 0, body: text, envelope: typeof header === "string" ? parseReceiptHeader(header) : undefined });
        });
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

/** The receipt's EIP-712 signature recovers to the signer it names. */
async function checkedSigner(envelope: ReceiptEnvelope): Promise<Address> {
  const recovered = await recoverTypedDataAddress({
    domain: envelope.domain,
    types: usageReceiptTypes,
    primaryType: "UsageReceipt",
    message: usageReceiptFromEnvelope(envelope),
    signature: envelope.signature,
  });
  expect(recovered, "the receipt's signature recovers to its signer").to.equal(getAddress(envelope.signer));
  return recovered;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("tollgate operator start-gateway --instances / start-oracle --instances", function () {
  this.timeout(300_000);
  let market: Marketplace;
  let rpc: RpcServer;
  let sim: Awaited<ReturnType<typeof startSimulatedUpstream>>;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let client: PublicClient;
  let dir: string;
  let tollgate: Address;
  let chainId: number;
  let buyer: Address;
  let fleetConfig: string;
  let plainConfig: string;
  let deploymentFile: string;
  /** Every pid the fleet ever had, so a failed test still leaves no process behind. */
  const pids = new Set<number>();

  const baseKey = generatePrivateKey();
  const instanceKeys = [1, 2].map((index) => deriveInstanceSignerKey(baseKey, index));
  const signers = instanceKeys.map((key) => privateKeyToAddress(key));
  const storePaths = () => [1, 2].map((index) => instanceStorePath(path.join(dir, "usage.sqlite"), index));
  /** Made through the one port once the fleet runs (POST /v1/keys): whichever instance made it, both serve it. */
  let apiKey = "";
  const served: { signer: Address; envelope: ReceiptEnvelope }[] = [];

  const providerKey = (): Hex => {
    const accounts = hre.network.config.accounts as { mnemonic: string; path: string };
    // The fixture's provider is Hardhat's account 2 (owner, treasury, provider, buyers…).
    return ethers.HDNodeWallet.fromPhrase(accounts.mnemonic, "", `${accounts.path}/2`).privateKey as Hex;
  };

  function writeConfig(file: string, extra: Record<string, unknown>): string {
    const config = {
      chain: { rpcUrl: rpc.url, deploymentFile: "deployment.json", accountCacheMs: 0, registryRefreshMs: 60_000 },
      providerId: Number(market.providerId),
      listen: { host: "127.0.0.1", port: 0 },
      store: { path: "usage.sqlite" },
      upstreams: { sim: { baseUrl: sim.url, timeoutMs: 5_000 } },
      models: [{ name: "small-model", modelId: Number(market.smallModel), upstream: "sim", maxOutputTokens: 64 }],
      limits: { requestsPerMinute: 0 },
      log: { level: "warn" },
      oracle: { pollMs: 50, batch: { maxRecords: 3, maxAgeMs: 0 }, retry: { initialMs: 50, maxMs: 500 }, listen: { port: 0 }, journalPath: "oracle-journal.json" },
      ...extra,
    };
    const target = path.join(dir, file);
    fs.writeFileSync(target, JSON.stringify(config, null, 2));
    return target;
  }

  /** The records an instance's store holds for the buyer, read while the instance may be running (WAL allows it). */
  async function storeRecords(index: number): Promise<StoredUsageRecord[]> {
    const signer = signers[index - 1];
    const status = await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] });
    const store = UsageStore.open({ path: storePaths()[index - 1], signer, firstSequence: status.nextSequence, chain: { chainId, contract: tollgate } });
    try {
      return store.recordsOf(buyer, { limit: 1000 }).sort((a, b) => Number(a.sequence - b.sequence));
    } finally {
      store.close();
    }
  }

  async function callUntil(url: string, done: () => boolean, maxCalls: number): Promise<void> {
    for (let i = 0; i < maxCalls && !done(); i++) {
      const answer = await chatOnce(url, apiKey, `question ${served.length}`);
      expect(answer.status, answer.body).to.equal(200);
      expect(answer.envelope, "a metered answer carries its receipt").to.not.equal(undefined);
      served.push({ signer: await checkedSigner(answer.envelope!), envelope: answer.envelope! });
    }
  }

  const servedBy = (signer: Address) => served.filter((s) => s.signer === signer);

  before(async () => {
    market = await deployMarketplace();
    rpc = await startRpcServer(hre.network.provider);
    client = createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
    sim = await startSimulatedUpstream({});
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-instances-"));
    redis = await startRedis(dir);
    tollgate = getAddress(await market.tollgate.getAddress());
    chainId = Number(market.chainId);
    deploymentFile = path.join(dir, "deployment.json");
    fs.writeFileSync(deploymentFile, JSON.stringify({ network: "hardhat", chainId, tollgate, paymentToken: await market.token.getAddress() }));
    fleetConfig = writeConfig("fleet.config.json", { fleet: { redisUrl: redis.url } });
    plainConfig = writeConfig("plain.config.json", {});

    const buyerSigner = market.buyers[0];
    buyer = getAddress(buyerSigner.address);
    await (await market.tollgate.connect(buyerSigner).deposit(buyer, USD(50))).wait();
  });

  after(async () => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
    await killAllProcesses();
    redis?.process.kill("SIGKILL");
    await rpc?.close();
    await sim?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const gatewayEnv = () => ({ TOLLGATE_GATEWAY_SIGNER_KEY: baseKey, TOLLGATE_RPC_URL: rpc.url });

  it("refuses 2 instances without a fleet section, explaining the overspend and what to add, before starting any", async () => {
    const result = await runTollgate(["operator", "start-gateway", "--instances", "2", "--config", plainConfig], gatewayEnv());
    expect(result.code, result.err).to.equal(1);
    expect(result.err).to.contain("2 instances need a shared store");
    expect(result.err).to.contain("up to 2x its balance");
    expect(result.err).to.contain('"fleet": { "redisUrl"');
    // Refused before any instance was planned or started.
    expect(result.out).to.not.contain("instance 1: signer");
    expect(result.out).to.not.contain('"event":"listening"');
  });

  it("refuses instance signers the provider has not authorized, naming each and the command; authorize-signers then authorizes both", async () => {
    const refused = await runTollgate(["operator", "start-gateway", "--instances", "2", "--config", fleetConfig], gatewayEnv());
    expect(refused.code, refused.err).to.equal(1);
    expect(refused.out).to.contain(`instance 1: signer ${signers[0]}`);
    expect(refused.out).to.contain(`instance 2: signer ${signers[1]}`);
    expect(refused.err).to.contain(`instance 1 (signer ${signers[0]}): never authorized`);
    expect(refused.err).to.contain(`instance 2 (signer ${signers[1]}): never authorized`);
    expect(refused.err).to.contain(`tollgate operator authorize-signers --instances 2 --provider ${market.providerId}`);

    const cli = async (args: string[], env: Record<string, string>) => {
      let out = "";
      let err = "";
      const code = await runCli(["--rpc", rpc.url, "--deployment", deploymentFile, ...args], { env, stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) } });
      return { code, out, err };
    };
    const args = ["operator", "authorize-signers", "--instances", "2", "--provider", String(market.providerId)];
    const dry = await cli([...args, "--dry-run"], { TOLLGATE_GATEWAY_SIGNER_KEY: baseKey });
    expect(dry.code, dry.err).to.equal(0);
    expect(dry.out).to.contain(`instance 2: signer ${signers[1]}: never authorized`);
    expect(dry.out).to.contain("2 of 2 instance signer(s) need authorizing");
    for (const signer of signers) expect((await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] })).authorized).to.equal(false);

    const done = await cli(args, { TOLLGATE_GATEWAY_SIGNER_KEY: baseKey, TOLLGATE_PRIVATE_KEY: providerKey() });
    expect(done.code, done.err).to.equal(0);
    for (const signer of signers) {
      const view = await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] });
      expect([view.authorized, view.providerId]).to.deep.equal([true, Number(market.providerId)]);
    }
  });

  it("an instance that cannot start stops the others and the command exits non-zero, naming the instance", async () => {
    // Instance 2's store path is a directory: that instance cannot open its store, and the fleet must not run with a hole.
    const storePath = path.join(dir, "broken", "usage.sqlite");
    fs.mkdirSync(instanceStorePath(storePath, 2), { recursive: true });
    const result = await runTollgate(["operator", "start-gateway", "--instances", "2", "--config", fleetConfig], { ...gatewayEnv(), TOLLGATE_STORE_PATH: storePath });
    expect(result.code, result.err).to.equal(1);
    expect(result.err).to.contain(`instance 2 (signer ${signers[1]}) exited with code 1 before it listened`);
    expect(result.err).to.contain("the gateway exited with code 1");
    // No instance of it is left running: no process on this machine holds one of its store paths in its environment.
    const holders = fs.readdirSync("/proc").filter((entry) => {
      if (!/^\d+$/.test(entry)) return false;
      try {
        return fs.readFileSync(`/proc/${entry}/environ`, "utf8").includes(`${path.dirname(storePath)}${path.sep}usage.instance-`);
      } catch {
        return false;
      }
    });
    expect(holders, "instances left running").to.deep.equal([]);
  });

  it("serves on one port from 2 instances, each signing with its own key into its own store; a SIGKILLed instance is restarted and serves again; SIGTERM drains all", async () => {
    const fleet: ManagedProcess = await spawnTsProcess({
      script: "scripts/tollgate.ts",
      name: "start-gateway --instances 2",
      args: ["operator", "start-gateway", "--instances", "2", "--config", fleetConfig],
      env: gatewayEnv(),
      isReady: (line) => line.event === "listening" && Array.isArray(line.instances),
      startTimeoutMs: 120_000,
    });
    const ready = fleet.ready as { url: string; pid: number; instances: { index: number; signer: Address; pid: number }[] };
    pids.add(ready.pid);
    for (const instance of ready.instances) pids.add(instance.pid);
    expect(ready.instances.map((i) => [i.index, i.signer])).to.deep.equal([
      [1, signers[0]],
      [2, signers[1]],
    ]);
    // Each instance answers /health 200 only once it has joined the fleet store: wait until both have.
    await waitFor("both instances joined the fleet store", async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const response = await fetch(`${ready.url}/health`, { headers: { connection: "close" } });
        const body = (await response.json()) as { signer: string };
        if (response.status !== 200) return false;
        seen.add(body.signer);
      }
      return seen.size === 2;
    });
    // One key, made on whichever instance the port hands the request to: the fleet shares it (no copying of stores).
    apiKey = (await createApiKey(market.clientOf(buyer, { url: ready.url }), { label: "fleet key" })).key;

    // Calls on the one port reach both instances; each receipt is signed by the instance that served it.
    await callUntil(ready.url, () => servedBy(signers[0]).length >= 2 && servedBy(signers[1]).length >= 2, 40);
    expect(servedBy(signers[0]).length, "instance 1 served").to.be.at.least(2);
    expect(servedBy(signers[1]).length, "instance 2 served").to.be.at.least(2);
    expect(served.every((s) => signers.includes(s.signer))).to.equal(true);

    // Each instance's records are in its own store, numbered from 0, and nowhere else.
    for (const index of [1, 2]) {
      const records = await storeRecords(index);
      const mine = servedBy(signers[index - 1]);
      expect(records.map((r) => r.receiptHash)).to.deep.equal(mine.map((s) => s.envelope.receiptHash));
      expect(records.map((r) => r.sequence)).to.deep.equal(mine.map((_, i) => BigInt(i)));
    }

    // SIGKILL instance 2: the primary restarts it under the same key and store.
    const killed = ready.instances[1].pid;
    process.kill(killed, "SIGKILL");
    const restarted = await waitFor("instance 2 restarted", () => {
      const line = fleet
        .output()
        .split("\n")
        .find((text) => text.includes('"event":"instance-restarted"'));
      return line ? (JSON.parse(line) as { index: number; pid: number; signer: Address }) : undefined;
    });
    pids.add(restarted.pid);
    expect([restarted.index, restarted.signer]).to.deep.equal([2, signers[1]]);
    expect(restarted.pid).to.not.equal(killed);
    expect(alive(ready.instances[0].pid), "instance 1 kept running").to.equal(true);

    const before = servedBy(signers[1]).length;
    await callUntil(ready.url, () => servedBy(signers[1]).length > before, 40);
    const after = servedBy(signers[1]);
    expect(after.length, "the restarted instance serves again").to.equal(before + 1);
    expect(after[before].envelope.receipt.sequence, "its sequence carries on from its store").to.equal(String(before));
    expect((await storeRecords(2)).map((r) => r.receiptHash)).to.deep.equal(after.map((s) => s.envelope.receiptHash));

    // SIGTERM to the command: the primary stops every instance gracefully and everything exits 0.
    const exit = await fleet.stop(60_000);
    expect(exit, fleet.output().slice(-4000)).to.deep.equal({ code: 0, signal: null });
    await waitFor("every fleet process gone", () => [...pids].every((pid) => !alive(pid)), 10_000);
  });

  it("start-oracle --instances 2 settles both instances' stores with one oracle key, each record once, the buyer paying exactly their sum", async () => {
    expect(served.length, "the previous test served calls").to.be.at.least(5);
    const counts = await Promise.all([1, 2].map(async (index) => (await storeRecords(index)).length));
    const records = [...(await storeRecords(1)), ...(await storeRecords(2))];
    const total = records.reduce((sum, r) => sum + r.cost, 0n);
    expect(total > 0n).to.equal(true);
    const balanceBefore = (await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "accountOf", args: [buyer] })).balance;

    const oracleKey = generatePrivateKey();
    await fundGas(privateKeyToAddress(oracleKey));
    // Both gateway instances are stopped: their stores are all the oracle needs.
    const oracle = await spawnTsProcess({
      script: "scripts/tollgate.ts",
      name: "start-oracle --instances 2",
      args: ["operator", "start-oracle", "--instances", "2", "--config", fleetConfig],
      env: { TOLLGATE_ORACLE_KEY: oracleKey, TOLLGATE_GATEWAY_SIGNER_KEY: baseKey, TOLLGATE_RPC_URL: rpc.url },
      isReady: (line) => line.event === "listening" && Array.isArray(line.streams),
      startTimeoutMs: 120_000,
    });
    expect(oracle.ready.streams).to.deep.equal(signers);
    expect(oracle.ready.sender).to.equal(privateKeyToAddress(oracleKey));

    for (const [i, signer] of signers.entries()) {
      await waitFor(`signer ${i + 1} settled`, async () => {
        const view = await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] });
        return view.nextSequence === BigInt(counts[i]);
      });
    }
    const exit = await oracle.stop(30_000);
    expect(exit.code, oracle.output().slice(-4000)).to.equal(0);

    for (const [i, signer] of signers.entries()) {
      const batches = await client.getContractEvents({ address: tollgate, abi: tollgateAbi, eventName: "BatchSettled", args: { signer }, fromBlock: 0n, strict: true });
      let next = 0n;
      for (const batch of batches) {
        expect(batch.args.firstSequence, "batches are contiguous, none repeated").to.equal(next);
        next += batch.args.recordCount;
      }
      expect(next).to.equal(BigInt(counts[i]));
      // One oracle key sent every batch, and its nonces never repeated.
      const senders = await Promise.all(batches.map((b) => client.getTransaction({ hash: b.transactionHash })));
      expect(new Set(senders.map((tx) => tx.from.toLowerCase()))).to.deep.equal(new Set([privateKeyToAddress(oracleKey).toLowerCase()]));
    }
    const allBatches = await client.getContractEvents({ address: tollgate, abi: tollgateAbi, eventName: "BatchSettled", fromBlock: 0n, strict: true });
    const nonces = await Promise.all(allBatches.map(async (b) => (await client.getTransaction({ hash: b.transactionHash })).nonce));
    expect(new Set(nonces).size).to.equal(nonces.length);

    const balanceAfter = (await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "accountOf", args: [buyer] })).balance;
    expect(balanceBefore - balanceAfter, "the buyer paid exactly the records' sum").to.equal(total);
    const shortfalls = await client.getContractEvents({ address: tollgate, abi: tollgateAbi, eventName: "ShortfallRecorded", fromBlock: 0n });
    expect(shortfalls).to.have.length(0);
    for (const index of [1, 2]) expect((await storeRecords(index)).every((r) => r.settlement !== null), `instance ${index}'s records marked settled`).to.equal(true);
  });
});
