/**
 * The fleet's shared-store logic (server/gateway/fleet/) against a real redis-server: two FleetLedger instances of
 * one provider, as two gateway processes would hold them, checked without a chain (the snapshot's sequences are
 * given). The end-to-end fleet, with three gateway processes and settlement on-chain, is fleet.test.ts.
 */
import { expect } from "chai";
import pino from "pino";
import { Registry } from "prom-client";
import { getAddress, type Address } from "viem";
import { privateKeyToAddress, generatePrivateKey } from "viem/accounts";
import Redis from "ioredis";
import { FleetLedger, type FleetCheck, type FleetReserveResult } from "../../server/gateway/fleet/fleet-ledger";
import { GatewayError } from "../../server/gateway/errors";
import { startRedisServer, type RedisServer } from "../helpers/redis-server";

const BUYER = getAddress("0x00000000000000000000000000000000000b0b01");
const LEASE_MS = 1_000;

interface Instance {
  ledger: FleetLedger;
  signer: Address;
  /** What this instance's store holds unsettled: re-published on rejoin. */
  records: { buyer: Address; sequence: bigint; cost: bigint }[];
}

function check(overrides: Partial<FleetCheck> = {}): FleetCheck {
  return { buyer: BUYER, amount: 100n, buyerLeft: 1_000n, key: { id: "key-1", left: null }, budgets: [], signerNext: new Map(), definitions: "0", ...overrides };
}

function refusedOf(result: FleetReserveResult) {
  expect(result, "the call was reserved").to.have.property("refused");
  return (result as Extract<FleetReserveResult, { refused: unknown }>).refused;
}

describe("fleet ledger: the shared store's check-and-reserve (real redis-server)", function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let run = 0;
  const open: FleetLedger[] = [];

  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    for (const ledger of open) await ledger.close();
    await redis?.stop();
  });

  /** Two instances under a fresh prefix: each test starts from an empty fleet. */
  async function fleetOf(count: number, settledGraceMs = 60_000): Promise<Instance[]> {
    const prefix = `test:${++run}:`;
    const instances: Instance[] = [];
    for (let i = 0; i < count; i++) {
      const signer = privateKeyToAddress(generatePrivateKey());
      const records: Instance["records"] = [];
      const ledger = new FleetLedger({
        redisUrl: redis.url,
        instanceId: `gw-${i}`,
        signer,
        leaseMs: LEASE_MS,
        timeoutMs: 1_000,
        prefix,
        settledGraceMs,
        logger: pino({ level: "silent" }),
        registry: new Registry(),
        unsettledRecords: () => records,
      });
      open.push(ledger);
      ledger.start();
      await ledger.whenReady(5_000);
      instances.push({ ledger, signer, records });
    }
    // Let each heartbeat learn every signer.
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS / 3 + 100));
    return instances;
  }

  it("a call held on one instance counts against the buyer on another, and is refused with the others' share named", async () => {
    const [a, b] = await fleetOf(2);
    const held = await a.ledger.reserve(check({ amount: 600n, buyerLeft: 1_000n }));
    expect(held).to.have.property("hold");
    // b alone would see 1,000 spendable; a holds 600, so 500 does not fit, 400 does.
    expect(refusedOf(await b.ledger.reserve(check({ amount: 500n, buyerLeft: 1_000n })))).to.deep.equal({ limit: "buyer", budgetIndex: undefined, others: 600n });
    const fits = await b.ledger.reserve(check({ amount: 400n, buyerLeft: 1_000n }));
    expect(fits).to.have.property("hold");
    // Released on a, the 600 is free again for b.
    a.ledger.release((held as { hold: never }).hold);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await b.ledger.reserve(check({ amount: 600n, buyerLeft: 600n }))).to.have.property("hold");
  });

  it("a buyer whose keys or budgets changed since the instance adopted them is answered stale, and nothing is held", async () => {
    const [a, b] = await fleetOf(2);
    // A key revoked or a budget made on some instance bumps the buyer's version (fleet-definitions.ts).
    await a.ledger.connection.incr(`${a.ledger.prefix}dv:${BUYER.toLowerCase()}`);
    expect(await a.ledger.reserve(check({ amount: 600n, buyerLeft: 1_000n, definitions: "0" }))).to.deep.equal({ stale: "1" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The stale call held nothing: b can take the whole 1,000.
    const whole = await b.ledger.reserve(check({ amount: 1_000n, buyerLeft: 1_000n, definitions: "1" }));
    expect(whole).to.have.property("hold");
    b.ledger.release((whole as { hold: never }).hold);
    // Adopted (version 1): served as before.
    expect(await a.ledger.reserve(check({ amount: 600n, buyerLeft: 1_000n, definitions: "1" }))).to.have.property("hold");
  });

  it("unsettled usage of another signer counts until the snapshot shows that signer's sequence past it", async () => {
    const [a, b] = await fleetOf(2);
    a.ledger.publishUsage({ buyer: BUYER, sequence: 0n, cost: 300n }, []);
    a.ledger.publishUsage({ buyer: BUYER, sequence: 1n, cost: 200n }, []);
    a.ledger.publishUsage({ buyer: BUYER, sequence: 1n, cost: 200n }, []); // published twice: counted once
    await new Promise((resolve) => setTimeout(resolve, 50));
    const signerA = a.signer.toLowerCase();
    expect(refusedOf(await b.ledger.reserve(check({ amount: 501n, buyerLeft: 1_000n }))).others).to.equal(500n);
    // A snapshot where a's sequence 0 is settled: 300 is in its balance already, only 200 remains unsettled.
    const settledOne = new Map([[signerA, 1n]]);
    expect(refusedOf(await b.ledger.reserve(check({ amount: 801n, buyerLeft: 1_000n, signerNext: settledOne }))).others).to.equal(200n);
    // An older snapshot (taken before that settlement) still counts it: nothing was dropped for it.
    expect(refusedOf(await b.ledger.reserve(check({ amount: 501n, buyerLeft: 1_000n, signerNext: new Map([[signerA, 0n]]) }))).others).to.equal(500n);
    // a's own unsettled usage is a's local ledger's business, never counted twice by a.
    expect(await a.ledger.reserve(check({ amount: 1_000n, buyerLeft: 1_000n }))).to.have.property("hold");
  });

  it("settled entries are pruned only after the grace, and pruning never changes what a snapshot counts", async () => {
    const [a, b] = await fleetOf(2, 300);
    const signerA = a.signer.toLowerCase();
    for (let sequence = 0n; sequence < 5n; sequence++) a.ledger.publishUsage({ buyer: BUYER, sequence, cost: 10n }, []);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const later = new Map([[signerA, 3n]]);
    expect(refusedOf(await b.ledger.reserve(check({ amount: 1_000n, buyerLeft: 1_000n, signerNext: later }))).others).to.equal(20n);
    await new Promise((resolve) => setTimeout(resolve, 400));
    // This call prunes sequences 0..2 (grace over) and still counts 20.
    expect(refusedOf(await b.ledger.reserve(check({ amount: 1_000n, buyerLeft: 1_000n, signerNext: later }))).others).to.equal(20n);
    // Pruned for good: even a snapshot without a's sequence now counts only what is left.
    expect(refusedOf(await b.ledger.reserve(check({ amount: 1_000n, buyerLeft: 1_000n }))).others).to.equal(20n);
  });

  it("a busy buyer's settled entries are summed once per snapshot sequence, not walked on every call, and the sums stay exact", async () => {
    const [a, b] = await fleetOf(2, 300);
    const signerA = a.signer.toLowerCase();
    const cost = (sequence: bigint) => 1_000n + sequence;
    const published = new Set<bigint>();
    const publish = (sequence: bigint) => {
      a.ledger.publishUsage({ buyer: BUYER, sequence, cost: cost(sequence) }, []);
      published.add(sequence);
    };
    let prunedBelow = 0n;
    /** What another instance must count: a's entries not pruned, from the snapshot's sequence on. */
    const expected = (next: bigint) => [...published].filter((sequence) => sequence >= next && sequence >= prunedBelow).reduce((sum, sequence) => sum + cost(sequence), 0n);
    // a's connection runs its commands in order: an answered call on it means every publish before it is in.
    const flushed = async () => a.ledger.release((await a.ledger.reserve(check({ amount: 1n, buyer: getAddress("0x00000000000000000000000000000000000b0b02") })) as { hold: never }).hold);
    const othersAt = async (next: bigint) => refusedOf(await b.ledger.reserve(check({ amount: 10n ** 12n, buyerLeft: 10n ** 12n, signerNext: new Map([[signerA, next]]) }))).others;

    for (let sequence = 0n; sequence < 600n; sequence++) if (sequence !== 250n) publish(sequence);
    await flushed();
    const stats = new Redis(redis.url);
    try {
      // A refused call writes nothing but the sum it computes after walking the entries (HSET us:…): counting
      // HSETs counts walks.
      const walks = async () => Number(/cmdstat_hset:calls=(\d+)/.exec(await stats.info("commandstats"))?.[1] ?? 0);
      expect(await othersAt(400n)).to.equal(expected(400n));
      const before = await walks();
      for (let call = 0; call < 5; call++) expect(await othersAt(400n)).to.equal(expected(400n));
      expect(await walks()).to.equal(before, "calls whose snapshot shows a sequence already summed walk no entries");
      expect(await othersAt(410n)).to.equal(expected(410n));
      expect(await walks()).to.equal(before + 1, "a sequence not seen before is walked once");
      expect(await othersAt(410n)).to.equal(expected(410n));
      expect(await walks()).to.equal(before + 1);

      // A late entry below the summed sequence (re-published after a restart) joins its sum: still exact.
      publish(250n);
      await flushed();
      expect(await othersAt(400n)).to.equal(expected(400n));
      expect(await othersAt(300n)).to.equal(expected(300n));

      // After the grace the entries below the first sequence seen (400) are pruned; every kept sum follows.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await othersAt(450n)).to.equal(expected(450n));
      prunedBelow = 400n;
      expect(await othersAt(450n)).to.equal(expected(450n));
      expect(await othersAt(500n)).to.equal(expected(500n));
      expect(await othersAt(0n)).to.equal(expected(0n));
    } finally {
      stats.disconnect();
    }
  });

  it("a record replaces the hold that covered it in one step: the others count its cost, not both, not neither", async () => {
    const [a, b] = await fleetOf(2);
    const held = await a.ledger.reserve(check({ amount: 600n }));
    a.ledger.publishUsage({ buyer: BUYER, sequence: 0n, cost: 150n }, [], (held as { hold: never }).hold);
    a.ledger.release((held as { hold: never }).hold); // the meter's finally: already released, changes nothing
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(refusedOf(await b.ledger.reserve(check({ amount: 1_000n }))).others).to.equal(150n);
  });

  it("a dead instance's holds vanish after its lease, its unsettled usage stays counted", async () => {
    const [a, b] = await fleetOf(2);
    expect(await a.ledger.reserve(check({ amount: 400n }))).to.have.property("hold");
    a.ledger.publishUsage({ buyer: BUYER, sequence: 0n, cost: 100n }, []);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(refusedOf(await b.ledger.reserve(check({ amount: 1_000n }))).others).to.equal(500n);
    await a.ledger.close(); // no release, no more heartbeats: as a SIGKILL leaves it
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS + 200));
    expect(refusedOf(await b.ledger.reserve(check({ amount: 1_000n }))).others).to.equal(100n);
    expect(await b.ledger.reserve(check({ amount: 900n }))).to.have.property("hold");
  });

  it("a key's cap and a budget count what every instance spent and holds", async () => {
    const [a, b] = await fleetOf(2);
    a.ledger.publishUsage({ buyer: BUYER, sequence: 0n, cost: 70n }, [{ part: a.ledger.keyPart("key-1"), spent: 70n }, { part: a.ledger.budgetPart("bud-1", 86_400), spent: 70n }]);
    expect(await a.ledger.reserve(check({ amount: 20n, key: { id: "key-1", left: 1_000n } }))).to.have.property("hold");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(refusedOf(await b.ledger.reserve(check({ amount: 11n, key: { id: "key-1", left: 100n } })))).to.deep.equal({ limit: "key", budgetIndex: undefined, others: 90n });
    const budgets = [{ id: "bud-0", periodStart: 86_400, left: 1_000n }, { id: "bud-1", periodStart: 86_400, left: 80n }];
    expect(refusedOf(await b.ledger.reserve(check({ amount: 11n, budgets })))).to.deep.equal({ limit: "budget", budgetIndex: 1, others: 70n });
    // Another period of the same budget starts from nothing.
    expect(await b.ledger.reserve(check({ amount: 11n, budgets: [{ id: "bud-1", periodStart: 172_800, left: 80n }] }))).to.have.property("hold");
  });

  it("amounts beyond 2^64 are added and compared exactly (18-decimal tokens)", async () => {
    const [a, b] = await fleetOf(2);
    const big = 10n ** 30n + 7n;
    expect(await a.ledger.reserve(check({ amount: big, buyerLeft: big }))).to.have.property("hold");
    a.ledger.publishUsage({ buyer: BUYER, sequence: 0n, cost: 2n ** 70n + 3n }, []);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const others = big + 2n ** 70n + 3n;
    expect(refusedOf(await b.ledger.reserve(check({ amount: 1n, buyerLeft: others }))).others).to.equal(others);
    expect(await b.ledger.reserve(check({ amount: 1n, buyerLeft: others + 1n }))).to.have.property("hold");
  });

  it("with the store down a reservation is refused with shared_store_unavailable; back up, the instance re-publishes first", async () => {
    const [a, b] = await fleetOf(2);
    a.records.push({ buyer: BUYER, sequence: 0n, cost: 250n });
    a.ledger.publishUsage(a.records[0], []);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await redis.kill();
    const error = await a.ledger.reserve(check()).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(GatewayError);
    expect(error).to.include({ status: 503, code: "shared_store_unavailable" });
    expect((error as GatewayError).headers).to.have.property("retry-after");
    // A record made while the store is down is in the instance's own store: re-published on reconnect.
    a.records.push({ buyer: BUYER, sequence: 1n, cost: 50n });
    a.ledger.publishUsage(a.records[1], []);
    await redis.start();
    await a.ledger.whenReady(10_000);
    await b.ledger.whenReady(10_000);
    expect(refusedOf(await b.ledger.reserve(check({ amount: 1_000n }))).others).to.equal(300n);
  });
});
