/**
 * Issue 14, a fleet with one view of what each buyer has spent: three gateway processes of one provider, each with
 * its own signer key (authorized on-chain) and its own SQLite store, share one real redis-server (started here, AOF
 * on). A buyer's API key works on all three, as behind a load balancer. Every test ends the same way: the buyer
 * spends until refused, then every instance's records are settled on-chain, and the chain must find every charge
 * paid in full (no ShortfallRecorded) with less than one reservation left: nothing overdrawn, nothing held for ever.
 *
 * (a) 200 parallel calls round-robin from a buyer who can pay for 100 reservations;
 * (b) one instance SIGKILLed mid-burst: its holds vanish after the lease, its unsettled usage keeps counting;
 * (c) redis-server SIGKILLed mid-burst: new calls get 503 shared_store_unavailable and are not recorded, calls in
 *     flight keep their records, and after the restart every instance re-publishes before serving again.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import hre from "hardhat";
import { createPublicClient, custom, getAddress, type Address, type Hex, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount, privateKeyToAddress } from "viem/accounts";
import { MarketplaceReader } from "../../server/chain/marketplace-reader";
import { recordCost } from "../../server/chain/pricing";
import { signUsageBatch } from "../../server/chain/sign-batch";
import { encodeUsageBatch } from "../../server/chain/usage-batch";
import { generateApiKey } from "../../server/gateway/api-keys/key-material";
import { Tokenizer } from "../../server/gateway/metering/tokenizer";
import { reservedInputTokens } from "../../server/gateway/metering/usage-counts";
import { UsageStore, type StoredUsageRecord } from "../../server/store/usage-store";
import { startSimulatedUpstream, type SimulatedUpstream } from "../../server/upstream/simulated-upstream";
import { deployMarketplace, SMALL_PRICES, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { killAllProcesses, startGatewayProcess, type GatewayProcess } from "../../scripts/lib/processes";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import { gatewayConfigObject } from "../helpers/gateway-harness";
import { startRedisServer, type RedisServer } from "../helpers/redis-server";

const INSTANCES = 3;
/** Long enough that a heartbeat starved of CPU by the rest of the suite does not lose it; short enough to wait out in (b). */
const LEASE_MS = 5_000;
const MAX_TOKENS = 64;
const MESSAGES = [{ role: "user", content: "Tell me about toll roads in one line." }];

interface Site {
  dir: string;
  configPath: string;
  storePath: string;
  signerKey: Hex;
  signer: Address;
}

interface Outcome {
  instance: number;
  status: number;
  code?: string;
}

describe("gateway fleet: three gateway processes share one redis-server and never overdraw (issue 14)", function () {
  this.timeout(300_000);

  let market: Marketplace;
  let client: PublicClient;
  let tollgate: Address;
  let chainId: number;
  let sim: SimulatedUpstream;
  let rpc: RpcServer;
  let redis: RedisServer;
  let reservation: bigint;
  const sites: Site[] = [];
  const gateways: GatewayProcess[] = [];
  /** One API key per buyer, present in every instance's store. */
  const keys = new Map<Address, string>();

  before(async function () {
    market = await deployMarketplace();
    tollgate = getAddress(await market.tollgate.getAddress());
    chainId = Number(market.chainId);
    client = createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
    sim = await startSimulatedUpstream({ latencyMs: 40 });
    rpc = await startRpcServer(hre.network.provider);
    redis = await startRedisServer();
    const tokenizer = new Tokenizer();
    const estimate = tokenizer.countChatPromptSync("o200k_base", MESSAGES)!;
    await tokenizer.close();
    reservation = recordCost({ inputTokens: reservedInputTokens(estimate), cachedInputTokens: 0, outputTokens: MAX_TOKENS }, { ...SMALL_PRICES, cachedInput: SMALL_PRICES.input });

    const buyerKeys = market.buyers.slice(0, 3).map((buyer) => ({ buyer: getAddress(buyer.address), ...generateApiKey() }));
    for (let i = 0; i < INSTANCES; i++) {
      const signerKey = generatePrivateKey();
      const signer = privateKeyToAddress(signerKey);
      await (await market.tollgate.connect(market.provider).setSignerAuthorization(market.providerId, signer, true)).wait();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-fleet-"));
      fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId, tollgate }));
      const config = gatewayConfigObject(dir, sim.url, {
        listen: { host: "127.0.0.1", port: 0 },
        models: [{ name: "small-model", modelId: 1, upstream: "sim", maxOutputTokens: 512 }],
        chain: { deploymentFile: "deployment.json", accountCacheMs: 1_000, registryRefreshMs: 60_000 },
        fleet: { redisUrl: redis.url, instanceId: `gw-${i}`, leaseMs: LEASE_MS, timeoutMs: 5_000 },
        log: { level: "warn" },
      });
      const configPath = path.join(dir, "tollgate.config.json");
      fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
      const site = { dir, configPath, storePath: path.join(dir, "usage.sqlite"), signerKey, signer };
      // The same key in every instance's store, as an operator's key replication would leave it.
      const store = openStore(site);
      for (const { buyer, id, keyHash } of buyerKeys) {
        store.insertApiKey({ id, buyer, keyHash, label: "fleet test", spendCap: null, models: null, tags: ["team:fleet"], expiresAt: null, createdAt: Math.floor(Date.now() / 1000) });
      }
      store.close();
      sites.push(site);
    }
    for (const { buyer, key } of buyerKeys) keys.set(buyer, key);
    for (let i = 0; i < INSTANCES; i++) gateways[i] = await startInstance(i);
  });

  after(async function () {
    await killAllProcesses();
    await rpc?.close();
    await sim?.close();
    await redis?.stop();
    for (const site of sites) fs.rmSync(site.dir, { recursive: true, force: true });
  });

  function openStore(site: Site): UsageStore {
    return UsageStore.open({ path: site.storePath, signer: site.signer, firstSequence: 0n, chain: { chainId, contract: tollgate } });
  }

  async function health(gateway: GatewayProcess): Promise<{ status: number; body: { fleet_store?: { state: string } } }> {
    const response = await fetch(`${gateway.url}/health`);
    return { status: response.status, body: (await response.json()) as { fleet_store?: { state: string } } };
  }

  async function untilFleetReady(gateway: GatewayProcess): Promise<void> {
    for (let tries = 0; ; tries++) {
      const { status, body } = await health(gateway);
      if (status === 200 && body.fleet_store?.state === "ready") return;
      if (tries > 200) throw new Error(`instance ${gateway.url} never joined the fleet: ${JSON.stringify(body)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function startInstance(i: number): Promise<GatewayProcess> {
    const gateway = await startGatewayProcess({ configPath: sites[i].configPath, signerKey: sites[i].signerKey, rpcUrl: rpc.url });
    await untilFleetReady(gateway);
    return gateway;
  }

  async function fund(buyer: Address, amount: bigint): Promise<void> {
    const signer = market.buyers.find((candidate) => getAddress(candidate.address) === buyer)!;
    await (await market.token.mint(buyer, amount)).wait();
    await (await market.tollgate.connect(signer).deposit(buyer, amount)).wait();
  }

  async function call(instance: number, key: string): Promise<Outcome> {
    try {
      const response = await fetch(`${gateways[instance].url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "small-model", messages: MESSAGES, max_tokens: MAX_TOKENS }),
      });
      const body = (await response.json()) as { error?: { code?: string } };
      if (response.status === 200) expect(response.headers.get("x-tollgate-receipt"), "a served call carries its receipt").to.be.a("string");
      return { instance, status: response.status, code: body.error?.code };
    } catch {
      return { instance, status: 0 }; // no answer: the instance died
    }
  }

  function burst(key: string, count: number, instances: readonly number[]): Promise<Outcome[]> {
    return Promise.all(Array.from({ length: count }, (_, i) => call(instances[i % instances.length], key)));
  }

  /** Calls in waves until a whole wave is refused for lack of funds: what the fleet lets the buyer spend, spent. */
  async function spendDown(key: string, instances: readonly number[]): Promise<Outcome[]> {
    const all: Outcome[] = [];
    for (;;) {
      const wave = await burst(key, 30, instances);
      all.push(...wave);
      for (const outcome of wave) expect([200, 402], JSON.stringify(outcome)).to.include(outcome.status);
      if (wave.every((outcome) => outcome.status === 402)) return all;
    }
  }

  function recordsOf(buyer: Address): StoredUsageRecord[][] {
    return sites.map((site) => {
      const store = openStore(site);
      try {
        return store.recordsOf(buyer);
      } finally {
        store.close();
      }
    });
  }

  /** Settles every instance's unsettled records on-chain, one batch per signer; returns how many ShortfallRecorded. */
  async function settleAll(): Promise<number> {
    let shortfalls = 0;
    for (const site of sites) {
      const { nextSequence } = await new MarketplaceReader(client, tollgate).signerStatus(site.signer);
      const store = openStore(site);
      const records = store.unsettledRecords(nextSequence, 100_000).filter((record) => record.sequence >= nextSequence);
      store.close();
      if (records.length === 0) continue;
      const batch = encodeUsageBatch(records);
      const signature = await signUsageBatch(privateKeyToAccount(site.signerKey), { chainId: BigInt(chainId), address: tollgate }, batch);
      const receipt = await (await market.tollgate.connect(market.others[0]).settleBatch(batch, signature)).wait();
      shortfalls += receipt!.logs.filter((log) => market.tollgate.interface.parseLog(log)?.name === "ShortfallRecorded").length;
    }
    return shortfalls;
  }

  /** The end of every test: settle everything; no shortfall; what was charged is within the deposit, to less than one reservation. */
  async function expectSettledWithinDeposit(buyer: Address, deposit: bigint, records: StoredUsageRecord[][]): Promise<bigint> {
    const charged = records.flat().reduce((sum, record) => sum + record.cost, 0n);
    const balanceBefore = (await market.tollgate.accountOf(buyer)).balance;
    expect(await settleAll()).to.equal(0);
    const balanceAfter = (await market.tollgate.accountOf(buyer)).balance;
    expect(balanceBefore - balanceAfter, "the chain charged exactly what the records say").to.equal(charged);
    expect(charged <= deposit, `charged ${charged} of ${deposit}`).to.equal(true);
    expect(deposit - charged < reservation, `${deposit - charged} left unspent although one reservation is ${reservation}: a hold leaked or usage counted twice`).to.equal(true);
    return charged;
  }

  it("(a) 200 parallel calls round-robin from a buyer who can pay for 100 reservations: every served call recorded, settled within the deposit", async function () {
    const buyer = getAddress(market.buyers[0].address);
    const key = keys.get(buyer)!;
    const deposit = reservation * 100n + reservation - 1n;
    await fund(buyer, deposit);

    const outcomes = await burst(key, 200, [0, 1, 2]);
    const served = outcomes.filter((outcome) => outcome.status === 200);
    for (const outcome of outcomes.filter((o) => o.status !== 200)) expect(outcome, JSON.stringify(outcome)).to.deep.include({ status: 402, code: "insufficient_funds" });
    // The first 100 fit together (which instance served them is a race: a slow one may find the money held already).
    expect(served.length).to.be.at.least(100);

    const more = await spendDown(key, [0, 1, 2]);
    const records = recordsOf(buyer);
    for (let i = 0; i < INSTANCES; i++) {
      const answered = [...outcomes, ...more].filter((outcome) => outcome.instance === i && outcome.status === 200).length;
      expect(records[i], `instance ${i}: one record per served call`).to.have.length(answered);
    }
    await expectSettledWithinDeposit(buyer, deposit, records);
  });

  it("(b) SIGKILL of one instance mid-burst: its holds expire after the lease, its unsettled usage counts until settled", async function () {
    const buyer = getAddress(market.buyers[1].address);
    const key = keys.get(buyer)!;
    const deposit = reservation * 100n + reservation - 1n;
    await fund(buyer, deposit);

    const running = burst(key, 200, [0, 1, 2]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    gateways[2].kill("SIGKILL");
    const outcomes = await running;
    expect(await gateways[2].exited).to.deep.include({ signal: "SIGKILL" });
    for (const outcome of outcomes.filter((o) => o.status !== 200)) {
      if (outcome.instance === 2) expect([0, 402], JSON.stringify(outcome)).to.include(outcome.status);
      else expect(outcome, JSON.stringify(outcome)).to.deep.include({ status: 402, code: "insufficient_funds" });
    }
    const deadRecords = recordsOf(buyer)[2];
    const deadServed = outcomes.filter((outcome) => outcome.instance === 2 && outcome.status === 200).length;
    // Whatever it answered is recorded (a record whose answer the kill cut off is allowed).
    expect(deadRecords.length).to.be.at.least(deadServed);

    // After the lease the dead instance's holds are gone: the survivors let the buyer spend down to the last reservation,
    // with the dead instance's records (unsettled, in its store) still counted.
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS + 500));
    const more = await spendDown(key, [0, 1]);
    const records = recordsOf(buyer);
    for (const i of [0, 1]) {
      const answered = [...outcomes, ...more].filter((outcome) => outcome.instance === i && outcome.status === 200).length;
      expect(records[i], `instance ${i}: one record per served call`).to.have.length(answered);
    }
    await expectSettledWithinDeposit(buyer, deposit, records);
    // Back for the next test: it re-publishes from its store and serves again.
    gateways[2] = await startInstance(2);
  });

  it("(c) redis-server killed mid-burst: new calls get 503 shared_store_unavailable and cost nothing; after the restart nothing is lost or counted twice", async function () {
    const buyer = getAddress(market.buyers[2].address);
    const key = keys.get(buyer)!;
    const deposit = reservation * 100n + reservation - 1n;
    await fund(buyer, deposit);

    const running = burst(key, 120, [0, 1, 2]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await redis.kill();
    const first = await running;
    // While the store is down: every paid call refused, nothing recorded, /health says why.
    const down = await burst(key, 30, [0, 1, 2]);
    for (const outcome of down) expect(outcome, JSON.stringify(outcome)).to.deep.include({ status: 503, code: "shared_store_unavailable" });
    for (const gateway of gateways) {
      const { status, body } = await health(gateway);
      expect(status).to.equal(503);
      expect(body.fleet_store?.state).to.not.equal("ready");
    }
    for (const outcome of first) {
      if (outcome.status !== 200) expect([402, 503], JSON.stringify(outcome)).to.include(outcome.status);
      if (outcome.status === 503) expect(outcome.code).to.equal("shared_store_unavailable");
    }
    expect(first.some((outcome) => outcome.status === 503), "the kill landed mid-burst").to.equal(true);
    const duringOutage = recordsOf(buyer);

    await redis.start();
    for (const gateway of gateways) await untilFleetReady(gateway);
    const more = await spendDown(key, [0, 1, 2]);
    const records = recordsOf(buyer);
    for (let i = 0; i < INSTANCES; i++) {
      const answered = first.filter((outcome) => outcome.instance === i && outcome.status === 200).length;
      // Calls in flight when the store died were served and recorded; the refused ones left nothing.
      expect(duringOutage[i], `instance ${i}: records when the store died`).to.have.length(answered);
      expect(records[i], `instance ${i}: one record per served call`).to.have.length(answered + more.filter((outcome) => outcome.instance === i && outcome.status === 200).length);
    }
    await expectSettledWithinDeposit(buyer, deposit, records);
  });
});
