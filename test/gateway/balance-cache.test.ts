/**
 * The gateway's cache of buyers' on-chain snapshots (server/gateway/marketplace-state.ts), against the real
 * chain and with a clock the test moves: when a call is served from the cache, when it waits for a read, and
 * the keep-warm sweep that re-reads a recently seen buyer's snapshot in the background so a buyer who pauses
 * between calls does not wait for the chain on the next one.
 */
import { expect } from "chai";
import pino from "pino";
import type { Address } from "viem";
import { MarketplaceState } from "../../server/gateway/marketplace-state";
import { SpendLedger } from "../../server/gateway/metering/spend-ledger";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

const CACHE_MS = 1_000;
const KEEP_WARM_MS = 60_000;

describe("gateway: buyer snapshot cache and keep-warm", function () {
  let h: GatewayHarness;
  let buyer: GatewayHarness["market"]["buyers"][number];
  let clock: number;
  let reads: Address[];
  /** Every read started, to wait for the background ones. */
  let pending: Promise<unknown>[];
  let state: MarketplaceState;

  before(async function () {
    h = await startGatewayHarness();
    buyer = h.market.buyers[0];
    await h.deposit(buyer, USD(10));
  });
  after(async () => h?.close());

  async function freshState(options: { keepWarmMs?: number; maxWarmBuyers?: number } = {}): Promise<MarketplaceState> {
    clock = 1_000_000;
    reads = [];
    pending = [];
    const created = new MarketplaceState({
      client: h.client,
      tollgate: h.config.chain.deployment.tollgate,
      providerId: h.config.providerId,
      signer: h.signer,
      models: h.config.models,
      accountCacheMs: CACHE_MS,
      registryRefreshMs: 60_000,
      keepWarmMs: options.keepWarmMs ?? KEEP_WARM_MS,
      maxWarmBuyers: options.maxWarmBuyers,
      clock: () => clock,
      ledger: new SpendLedger(),
      logger: pino({ level: "silent" }),
    });
    await created.refresh();
    // Count every chain read of a buyer's snapshot, whoever starts it.
    const read = created.reader.buyerSnapshot.bind(created.reader);
    created.reader.buyerSnapshot = (who, ...rest) => {
      reads.push(who);
      const result = read(who, ...rest);
      pending.push(result);
      return result;
    };
    return created;
  }

  it("serves a fresh snapshot from the cache, a stale one while re-reading it, and waits for an expired one", async function () {
    state = await freshState({ keepWarmMs: 0 });
    const first = await state.snapshot(buyer.address as Address);
    expect(reads).to.have.length(1);
    expect(first.balance).to.equal(USD(10));

    clock += CACHE_MS - 1;
    expect(await state.snapshot(buyer.address as Address)).to.equal(first);
    expect(reads).to.have.length(1);

    // Stale: the call gets the cached numbers at once, and one read starts behind it.
    await h.deposit(buyer, USD(1));
    clock += 2;
    expect(await state.snapshot(buyer.address as Address)).to.equal(first);
    expect(reads).to.have.length(2);
    await Promise.all(pending);
    expect((await state.snapshot(buyer.address as Address)).balance).to.equal(USD(11), "the background read replaced the cached snapshot");
    expect(reads).to.have.length(2);

    // Expired (three lifetimes): the call waits for a read and sees the deposit.
    clock += 3 * CACHE_MS;
    await h.deposit(buyer, USD(1));
    const expired = await state.snapshot(buyer.address as Address);
    expect(reads).to.have.length(3);
    expect(expired.balance).to.equal(USD(12));
  });

  it("keeps a recently seen buyer warm: after a pause far past three lifetimes its call is served without a read, with the chain's latest balance", async function () {
    state = await freshState();
    await state.snapshot(buyer.address as Address);
    expect(reads).to.have.length(1);

    // Young snapshots are left alone.
    clock += CACHE_MS / 2 - 1;
    expect(state.keepWarm()).to.have.length(0);

    // The buyer deposits during a 20-lifetime pause; the sweeps re-read it in the background as it ages.
    await h.deposit(buyer, USD(2));
    const expected = (await state.reader.buyerSnapshot(buyer.address as Address, h.config.providerId, state.creditPlans(), h.signer)).balance;
    reads.length = 1;
    for (let step = 0; step < 40; step++) {
      clock += CACHE_MS / 2;
      await Promise.all(state.keepWarm());
    }
    const backgroundReads = reads.length - 1;
    // One read per half-life, none on the call path.
    expect(backgroundReads).to.equal(40);

    const afterPause = await state.snapshot(buyer.address as Address);
    expect(reads.length - 1).to.equal(backgroundReads, "the call after the pause must not read the chain itself");
    expect(afterPause.balance).to.equal(expected);
  });

  it("lets a buyer go once it has not called for keepWarmMs: its next call waits for a read", async function () {
    state = await freshState({ keepWarmMs: 5 * CACHE_MS });
    await state.snapshot(buyer.address as Address);
    for (let step = 0; step < 24; step++) {
      clock += CACHE_MS / 2;
      await Promise.all(state.keepWarm());
    }
    const readsWhileWarm = reads.length;
    // 12 s after its call the buyer is no longer kept warm: sweeps read nothing more.
    clock += CACHE_MS / 2;
    expect(state.keepWarm()).to.have.length(0);
    expect(reads).to.have.length(readsWhileWarm);
    clock += 4 * CACHE_MS;
    await state.snapshot(buyer.address as Address);
    expect(reads).to.have.length(readsWhileWarm + 1);
  });

  it("keeps at most maxWarmBuyers, letting the least recently seen go first", async function () {
    const [a, b, c] = h.market.buyers;
    state = await freshState({ maxWarmBuyers: 2 });
    for (const who of [a, b, c]) await state.snapshot(who.address as Address);
    expect(reads).to.have.length(3);
    clock += CACHE_MS;
    await Promise.all(state.keepWarm());
    expect(reads.slice(3)).to.have.members([b.address, c.address]);
  });
});
