/**
 * Issue 14, a fleet with one view of what each buyer has spent: three gateway processes of one provider, each with
 * its own signer key (authorized on-chain) and its own SQLite store, share one real redis-server (started here, AOF
 * on). A buyer's API key, made on one instance (POST /v1/keys), works on all three, as behind a load balancer. Tests (a)-(c) end the same way: the buyer
 * spends until refused, then every instance's records are settled on-chain, and the chain must find every charge
 * paid in full (no ShortfallRecorded) with less than one reservation left: nothing overdrawn, nothing held for ever.
 *
 * (a) 200 parallel calls round-robin from a buyer who can pay for 100 reservations;
 * (b) one instance SIGKILLed mid-burst: its holds vanish after the lease, its unsettled usage keeps counting;
 * (c) redis-server SIGKILLed mid-burst: new calls get 503 shared_store_unavailable and are not recorded, calls in
 *     flight keep their records, and after the restart every instance re-publishes before serving again.
 * (d)-(h) what one instance knows, every instance knows: keys made or revoked, budgets, read sessions, and the
 *     buyer's balance as the reserve check sees it (calls in flight and unsettled usage on the others).
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
import { createApiKey, createBudget, closeSession, getGatewayBalance, listApiKeys, openSession, revokeApiKey, GatewayRequestError, type TollgateClient } from "../../client";
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
  /** Behind `large-model` only: slow enough that a call is still in flight while another instance is asked about it. */
  let slowSim: SimulatedUpstream;
  let rpc: RpcServer;
  let redis: RedisServer;
  let reservation: bigint;
  const sites: Site[] = [];
  const gateways: GatewayProcess[] = [];
  /** One API key per buyer of (a)-(c), made on instance 0 and adopted by the others when first presented. */
  const keys = new Map<Address, string>();

  before(async function () {
    market = await deployMarketplace();
    tollgate = getAddress(await market.tollgate.getAddress());
    chainId = Number(market.chainId);
    client = createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
    sim = await startSimulatedUpstream({ latencyMs: 40 });
    slowSim = await startSimulatedUpstream({ latencyMs: 3_000 });
    rpc = await startRpcServer(hre.network.provider);
    redis = await startRedisServer();
    const tokenizer = new Tokenizer();
    const estimate = tokenizer.countChatPromptSync("o200k_base", MESSAGES)!;
    await tokenizer.close();
    reservation = recordCost({ inputTokens: reservedInputTokens(estimate), cachedInputTokens: 0, outputTokens: MAX_TOKENS }, { ...SMALL_PRICES, cachedInput: SMALL_PRICES.input });

    for (let i = 0; i < INSTANCES; i++) {
      const signerKey = generatePrivateKey();
      const signer = privateKeyToAddress(signerKey);
      await (await market.tollgate.connect(market.provider).setSignerAuthorization(market.providerId, signer, true)).wait();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-fleet-"));
      fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId, tollgate }));
      const config = gatewayConfigObject(dir, sim.url, {
        listen: { host: "127.0.0.1", port: 0 },
        models: [
          { name: "small-model", modelId: 1, upstream: "sim", maxOutputTokens: 512 },
          { name: "large-model", modelId: 2, upstream: "slow", maxOutputTokens: 512 },
        ],
        upstreams: { slow: { baseUrl: slowSim.url, timeoutMs: 10_000 } },
        chain: { deploymentFile: "deployment.json", accountCacheMs: 1_000, registryRefreshMs: 60_000 },
        fleet: { redisUrl: redis.url, instanceId: `gw-${i}`, leaseMs: LEASE_MS, timeoutMs: 5_000 },
        log: { level: "warn" },
      });
      const configPath = path.join(dir, "tollgate.config.json");
      fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
      sites.push({ dir, configPath, storePath: path.join(dir, "usage.sqlite"), signerKey, signer });
    }
    for (let i = 0; i < INSTANCES; i++) gateways[i] = await startInstance(i);
    // Each key is made on instance 0 only; the others learn it from the fleet when it is first presented to them.
    for (const signer of market.buyers.slice(0, 3)) {
      const buyer = getAddress(signer.address);
      keys.set(buyer, (await createApiKey(buyerClient(buyer, 0), { label: "fleet test", tags: ["team:fleet"] })).key);
    }
  });

  function buyerClient(buyer: Address, instance: number): TollgateClient {
    return market.clientOf(buyer, { url: gateways[instance].url });
  }

  after(async function () {
    await killAllProcesses();
    await rpc?.close();
    await sim?.close();
    await slowSim?.close();
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
    // Keys an instance holds keep reading; a new key is refused, since only one instance would know it.
    const known = await getGatewayBalance(buyerClient(buyer, 1), { apiKey: key });
    expect(known.fleet?.state).to.not.equal("ready");
    await expectRefused(createApiKey(buyerClient(buyer, 1), { label: "during the outage" }), 503, "shared_store_unavailable");
    const keysOn1 = openStore(sites[1]);
    expect(keysOn1.listApiKeys(buyer).map((listed) => listed.label), "nothing made on instance 1").to.deep.equal(["fleet test"]);
    keysOn1.close();
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

  /** The buyer's records on every instance, flattened. */
  const allRecordsOf = (buyer: Address) => recordsOf(buyer).flat();

  async function chat(instance: number, key: string, model = "small-model"): Promise<{ status: number; code?: string }> {
    const response = await fetch(`${gateways[instance].url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model, messages: MESSAGES, max_tokens: MAX_TOKENS }),
    });
    const body = (await response.json()) as { error?: { code?: string } };
    return { status: response.status, code: body.error?.code };
  }

  async function expectRefused(action: Promise<unknown>, status: number, code: string): Promise<void> {
    const error = await action.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error, `expected ${status} ${code}`).to.be.instanceOf(GatewayRequestError);
    expect([(error as GatewayRequestError).status, (error as GatewayRequestError).code]).to.deep.equal([status, code]);
  }

  it("(d) a key made on instance 0 serves on 1 and 2 at once; its listing on 2 shows the fleet's spend on it", async function () {
    const buyer = getAddress(market.buyers[3].address);
    await fund(buyer, reservation * 50n);
    const { key, id } = await createApiKey(buyerClient(buyer, 0), { label: "made on 0" });
    expect(await chat(1, key)).to.deep.equal({ status: 200, code: undefined });
    expect(await chat(2, key)).to.deep.equal({ status: 200, code: undefined });
    expect(await chat(0, key)).to.deep.equal({ status: 200, code: undefined });
    const records = recordsOf(buyer);
    expect(records.map((list) => list.length), "one record on each instance").to.deep.equal([1, 1, 1]);
    expect(records.flat().every((record) => record.keyId === id)).to.equal(true);

    const listed = (await listApiKeys(buyerClient(buyer, 2))).find((candidate) => candidate.id === id);
    expect(listed, "instance 2 lists the key made on 0").to.not.equal(undefined);
    expect(listed!.spent, "spent counts every instance's calls").to.equal(records.flat().reduce((sum, record) => sum + record.cost, 0n).toString());

    // A well-formed key nobody made is still a 401 everywhere (looked up in the fleet, not found).
    const stranger = `tg_${"x".repeat(43)}`;
    for (const instance of [0, 1, 2]) expect((await chat(instance, stranger)).status).to.equal(401);
  });

  it("(e) a key revoked on instance 1 (which never saw it) is refused on 0 and 2 on the very next call, and nothing is charged", async function () {
    const buyer = getAddress(market.buyers[4].address);
    await fund(buyer, reservation * 50n);
    const { key, id } = await createApiKey(buyerClient(buyer, 0), { label: "to revoke" });
    // Instances 0 and 2 hold it (cached, as for any call); 1 has never seen it.
    expect((await chat(0, key)).status).to.equal(200);
    expect((await chat(2, key)).status).to.equal(200);
    const before = recordsOf(buyer).map((list) => list.length);

    expect(await revokeApiKey(buyerClient(buyer, 1), { keyId: id })).to.deep.include({ id, revoked: true });
    for (const instance of [0, 2, 1]) expect(await chat(instance, key), `instance ${instance}`).to.deep.equal({ status: 401, code: "invalid_api_key" });
    expect(recordsOf(buyer).map((list) => list.length), "nothing recorded after the revocation").to.deep.equal(before);
    // Revoking it again anywhere: it is no longer active.
    await expectRefused(revokeApiKey(buyerClient(buyer, 2), { keyId: id }), 404, "key_not_found");
  });

  it("(f) a budget made on instance 0 binds instance 1's calls, and refuses on 2 once 1 has spent it", async function () {
    const buyer = getAddress(market.buyers[5].address);
    await fund(buyer, reservation * 50n);
    const { key } = await createApiKey(buyerClient(buyer, 0), { label: "budgeted", tags: ["team:budget"] });
    const limit = reservation * 3n;
    await createBudget(buyerClient(buyer, 0), { scope: "tag", target: "team:budget", period: "month", limit });

    let served = 0;
    for (;;) {
      const outcome = await chat(1, key);
      if (outcome.status !== 200) {
        expect(outcome).to.deep.equal({ status: 402, code: "budget_exceeded" });
        break;
      }
      served++;
      expect(served, "instance 1 kept serving past the budget").to.be.below(10);
    }
    expect(served, "the budget let instance 1 serve what it allows").to.be.at.least(3);
    expect(await chat(2, key), "instance 2 counts what 1 spent").to.deep.equal({ status: 402, code: "budget_exceeded" });
    expect(await chat(0, key), "and so does the instance that made it").to.deep.equal({ status: 402, code: "budget_exceeded" });
    const records = recordsOf(buyer);
    expect([records[0].length, records[2].length]).to.deep.equal([0, 0]);
    const spent = records.flat().reduce((sum, record) => sum + record.cost, 0n);
    expect(spent <= limit, `spent ${spent} of a ${limit} budget`).to.equal(true);
  });

  it("(g) a read session opened on instance 0 reads on 1 and 2; ended on 1, it reads nowhere", async function () {
    const buyer = getAddress(market.buyers[6].address);
    const { token } = await openSession(buyerClient(buyer, 0));
    expect((await getGatewayBalance(buyerClient(buyer, 1), { session: token })).buyer).to.equal(buyer);
    expect(await listApiKeys(buyerClient(buyer, 2), { session: token })).to.be.an("array");
    await closeSession(buyerClient(buyer, 1), { session: token });
    for (const instance of [0, 1, 2]) await expectRefused(getGatewayBalance(buyerClient(buyer, instance), { session: token }), 401, "invalid_api_key");
  });

  it("(h) /v1/balance on instance 0 counts a call in flight on 2 and usage unsettled on 1, as the reserve check does", async function () {
    const buyer = getAddress(market.buyers[7].address);
    await fund(buyer, reservation * 50n);
    const { key } = await createApiKey(buyerClient(buyer, 0), { label: "balance" });
    expect((await chat(1, key)).status).to.equal(200);
    const unsettled = recordsOf(buyer)[1][0].cost;

    const balanceOn0 = async () => {
      const answer = await getGatewayBalance(buyerClient(buyer, 0), { apiKey: key });
      expect(answer.fleet, "fleet mode names the other instances' share").to.not.equal(undefined);
      return answer as typeof answer & { fleet: { state: string; other_instances_unsettled_usage: string; other_instances_open_reservations: string } };
    };
    const slow = chat(2, key, "large-model");
    let seen: Awaited<ReturnType<typeof balanceOn0>> | undefined;
    for (let tries = 0; tries < 100 && !seen; tries++) {
      const answer = await balanceOn0();
      if (answer.fleet.other_instances_open_reservations !== "0") seen = answer;
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(seen, "instance 0 saw the call in flight on 2").to.not.equal(undefined);
    const held = BigInt(seen!.fleet.other_instances_open_reservations);
    expect(seen!.fleet.state).to.equal("ready");
    expect(BigInt(seen!.fleet.other_instances_unsettled_usage)).to.equal(unsettled);
    expect([seen!.unsettled_usage, seen!.open_reservations], "instance 0's own figures").to.deep.equal(["0", "0"]);
    const small = seen!.spendable_by_model.find((entry) => entry.model === "small-model")!;
    expect(BigInt(small.spendable)).to.equal(BigInt(seen!.balance) - unsettled - held);

    expect((await slow).status).to.equal(200);
    const after = await balanceOn0();
    expect(after.fleet.other_instances_open_reservations).to.equal("0");
    expect(BigInt(after.fleet.other_instances_unsettled_usage)).to.equal(allRecordsOf(buyer).reduce((sum, record) => sum + record.cost, 0n));
  });
});
