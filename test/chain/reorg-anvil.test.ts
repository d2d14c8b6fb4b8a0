/**
 * Real chain reorganisations, made by Anvil (`anvil_reorg`), under the whole marketplace (scripts/marketplace.ts on
 * Anvil by RPC URL: gateway, oracle, buyer, provider). DESIGN invariant 2 says every answered call is settled
 * exactly once; a reorganisation is where an oracle could lose a settlement or make it twice:
 *
 * - one that drops the settling blocks: the oracle, left running on its own, notices the chain no longer has the
 *   records settled and settles them again, each once;
 * - one that re-includes the same settlement transaction in a new block: nothing changes, and the oracle sends nothing.
 *
 * Each is judged from chain state alone (the signer's next sequence, contiguous BatchSettled ranges, the buyer's
 * balance and credits debited once), the chain audit of the whole deployment, and the store against the chain.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { getAddress, type Hex } from "viem";
import { auditDeployment, conservationCheckOf, createTollgateClient, getBuyerPosition, settlementAuditOf, type TollgateClient } from "../../client";
import { runMarketplace, type MarketplaceRun } from "../../scripts/marketplace";
import { auditStoreAgainstChain } from "../../scripts/lib/store-audit";
import { tollgateAbi } from "../../server/chain/abis";
import { startAnvil, type Anvil } from "../helpers/anvil";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe("chain reorganisations on Anvil: the oracle settles every record exactly once", function () {
  this.timeout(180_000);

  let anvil: Anvil;
  let run: MarketplaceRun;
  let reader: TollgateClient;
  let dir: string;
  const ignitionDeploymentId = `test-reorg-${process.pid}-${Date.now()}`;
  /** The buyer's position once the run had settled everything, before any reorganisation. */
  let settled: { balance: bigint; credits: bigint; earnings: bigint; fees: bigint };

  const nextSequence = async () =>
    (await run.client.readContract({ address: run.deployment.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [run.gatewaySigner] })).nextSequence;

  const settlements = () =>
    run.client.getContractEvents({
      address: run.deployment.tollgate,
      abi: tollgateAbi,
      eventName: "BatchSettled",
      args: { signer: run.gatewaySigner },
      fromBlock: BigInt(run.deployment.deployBlock),
      strict: true,
    });

  async function position() {
    const held = await getBuyerPosition(reader, { buyer: run.buyer.address, planIds: [run.planId], providerIds: [] });
    const [earnings, fees] = await Promise.all([
      run.client.readContract({ address: run.deployment.tollgate, abi: tollgateAbi, functionName: "earningsOf", args: [run.providerId] }),
      run.client.readContract({ address: run.deployment.tollgate, abi: tollgateAbi, functionName: "protocolFeesAccrued" }),
    ]);
    return { balance: held.balance, credits: held.credits.find((entry) => entry.planId === run.planId)?.credits ?? 0n, earnings, fees };
  }

  /** Everything a settled-once marketplace shows: one contiguous run of batches covering every record, money moved once, clean audits. */
  async function expectSettledExactlyOnce(): Promise<void> {
    const store = run.gateway.ctx.store;
    const count = BigInt(store.recordCount());
    expect(await nextSequence(), "the signer's next sequence on-chain").to.equal(count);
    let next = 0n;
    for (const event of await settlements()) {
      expect(event.args.firstSequence, "each batch starts where the last ended: no gap, no repeat").to.equal(next);
      for (let sequence = next; sequence < next + event.args.recordCount; sequence++) {
        expect(store.recordBySequence(sequence)?.settlement?.txHash, `record ${sequence} marked settled by the batch the chain has`).to.equal(event.transactionHash.toLowerCase());
      }
      next += event.args.recordCount;
    }
    expect(next, "the batches cover every record once").to.equal(count);
    expect(store.pendingUsage().count, "nothing left unsettled in the store").to.equal(0);
    expect(await position(), "the buyer was debited, and the provider and the protocol credited, once").to.deep.equal(settled);

    const chainAudit = await auditDeployment(run.client, run.deployment, { signer: run.gatewaySigner });
    expect(chainAudit.findings.map((finding) => `${finding.code}: ${finding.message}`), "chain audit findings").to.deep.equal([]);
    expect(conservationCheckOf(chainAudit).conserved, "the vault holds what it owes").to.equal(true);
    expect(await auditStoreAgainstChain(run.client, settlementAuditOf(chainAudit), store, run.gatewaySigner, run.deployment), "the store against the chain").to.deep.equal([]);
  }

  before(async function () {
    anvil = await startAnvil();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-reorg-"));
    run = await runMarketplace({
      chain: { rpcUrl: anvil.url, deployerKey: anvil.keys[0], ignitionDeploymentId },
      rpcPort: 0,
      gatewayPort: 0,
      dataDir: dir,
      deploymentFile: path.join(dir, "deployment.json"),
      calls: 6,
      log: () => {},
      logLevel: "silent",
    });
    expect(run.summary.audit.problems).to.deep.equal([]);
    reader = await createTollgateClient({ publicClient: run.client, deployment: run.deployment, pollingInterval: 50 });
    settled = await position();
    expect(settled.balance, "the buyer paid part of the usage from its balance").to.be.lessThan(run.summary.buyerBefore.balance);
  });

  after(async function () {
    await run?.close();
    await anvil?.stop();
    fs.rmSync(path.join(REPO_ROOT, "ignition", "deployments", ignitionDeploymentId), { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a reorganisation that drops the settling blocks: the oracle settles the same records again, each once, and the audit agrees", async function () {
    await expectSettledExactlyOnce();
    const dropped = await settlements();
    expect(dropped.length, "the run settled in at least one batch").to.be.greaterThan(0);
    const latest = await run.client.getBlockNumber({ cacheTime: 0 });
    const firstSettling = dropped[0].blockNumber;
    // Only the oracle's settlements are in the blocks about to be replaced: the reorganisation undoes settlement and nothing else.
    for (let number = firstSettling; number <= latest; number++) {
      const block = await run.client.getBlock({ blockNumber: number, includeTransactions: true });
      for (const tx of block.transactions) expect(getAddress(tx.from), `block ${number}'s transaction ${tx.hash}`).to.equal(run.oracleSender);
    }

    const depth = Number(latest - firstSettling) + 1;
    await anvil.dev.request({ method: "anvil_reorg", params: [depth, []] });

    // The new chain has the same height and none of the settlements; a dropped transaction is gone, not pending.
    expect(await run.client.getBlockNumber({ cacheTime: 0 })).to.equal(latest);
    for (const event of dropped) {
      expect(await run.client.getTransactionReceipt({ hash: event.transactionHash }).catch(() => null), `settlement ${event.transactionHash}`).to.equal(null);
    }
    const reverted = await position();
    expect(reverted.balance, "the buyer's balance is back to before settlement").to.equal(run.summary.buyerBefore.balance);

    // The oracle keeps running on its own: it notices, and settles again.
    await until("the oracle to settle the dropped records again", async () => (await nextSequence()) === BigInt(run.gateway.ctx.store.recordCount()) && run.gateway.ctx.store.pendingUsage().count === 0);
    // A pass or two more: a second settlement of the same records would show now.
    await run.oracle.runOnce();
    await run.oracle.runOnce();
    await expectSettledExactlyOnce();
    const again = await settlements();
    expect(again.map((event) => event.blockNumber > latest), "every settlement the chain now has is in a block after the reorganisation").to.deep.equal(again.map(() => true));
  });

  it("a reorganisation that re-includes the settlement transaction in a new block: nothing is settled twice, the oracle sends nothing", async function () {
    // Anvil dates every replacement block at the common ancestor's time (and its clock lags the wall clock after a
    // reorganisation), where a real chain's replacement blocks are no earlier than the blocks they replace. So
    // that the re-included settlement executes as it did, the block it is settled after is dated at the call:
    // a fresh call, a block at its serving time, then its settlement (which the chain refuses until then).
    const served = await run.openai(run.apiKey.key).chat.completions.create({ model: "large-model", messages: [{ role: "user", content: "one more, to be reorganised" }], max_tokens: 24 });
    expect(served.usage?.completion_tokens).to.be.greaterThan(0);
    const sequence = BigInt(run.gateway.ctx.store.recordCount()) - 1n;
    const servedAt = run.gateway.ctx.store.recordBySequence(sequence)!.servedAt;
    const head = await run.client.getBlock({ blockTag: "latest" });
    await anvil.dev.request({ method: "evm_setNextBlockTimestamp", params: [Math.max(servedAt, Number(head.timestamp))] });
    await anvil.dev.mine();
    const ancestor = await run.client.getBlock({ blockTag: "latest" });
    await run.settle();
    expect(Number(ancestor.timestamp), "the block before the settlement is no earlier than the call").to.be.at.least(servedAt);
    settled = await position();

    const before = await settlements();
    const last = before.at(-1)!;
    expect(last.args.firstSequence + last.args.recordCount - 1n, "the last batch settles the fresh call").to.equal(sequence);
    expect(last.blockNumber, "settled right after that block").to.equal(ancestor.number + 1n);
    const latest = await run.client.getBlockNumber({ cacheTime: 0 });
    const oracleNonce = await run.client.getTransactionCount({ address: run.oracleSender });
    // The signed settlement exactly as broadcast, put back in the first replacement block.
    const raw = (await anvil.dev.request({ method: "eth_getRawTransactionByHash", params: [last.transactionHash] })) as Hex;

    await anvil.dev.request({ method: "anvil_reorg", params: [Number(latest - ancestor.number), [[raw, 0]]] });

    const after = await settlements();
    expect(after.map((event) => event.transactionHash), "the same settlement transactions").to.deep.equal(before.map((event) => event.transactionHash));
    expect(after.at(-1)!.blockHash, "the settlement is in a replacement block").to.not.equal(last.blockHash);
    expect((await run.client.getTransactionReceipt({ hash: last.transactionHash })).status).to.equal("success");

    await run.oracle.runOnce();
    await run.oracle.runOnce();
    expect(await run.client.getTransactionCount({ address: run.oracleSender }), "the oracle sent no transaction").to.equal(oracleNonce);
    await expectSettledExactlyOnce();
  });
});
