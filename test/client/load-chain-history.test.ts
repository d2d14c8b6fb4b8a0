/**
 * `loadChainHistory` over Hardhat's chain served over JSON-RPC, straight and behind a proxy that behaves like
 * a hosted provider: it refuses log ranges wider than N blocks in a provider's words, answers 429s and
 * 503s, drops connections, drops chosen logs, and counts every request. The loader must adapt, recover, and
 * give the same history as a straight load; resume from a checkpoint asking only for what it lacked; notice a
 * reorganisation between runs; find the deploy block alone; and read every batch from wherever it is.
 */
import hre, { ethers } from "hardhat";
import { expect } from "chai";
import { createPublicClient, http as httpTransport, toEventSelector, type Address, type Hex, type PublicClient } from "viem";
import { deposit } from "../../client";
import { batchKey, type ChainHistory } from "../../client/audit/chain-history";
import { ChainHistoryLoadError, loadChainHistory, memoryCheckpointStore, type LoadChainHistoryParameters } from "../../client/audit/load-chain-history";
import { BATCH_DATA_PUBLISHED_TOPIC, BATCH_SETTLED_TOPIC } from "../../client/audit/rpc/batch-sources";
import { countingTransport } from "../../client/audit/rpc/counting-transport";
import { classifyRpcError } from "../../client/audit/rpc/provider-errors";
import { backoffDelay } from "../../client/audit/rpc/retry";
import { rpcStateReader } from "../../client/audit/rpc-state-reader";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import { ALCHEMY_TOO_LARGE, STALL_MS, startProxy, type Fault, type Proxy } from "../helpers/provider-proxy";
import { settledMarket, type SettledMarket } from "../helpers/settled-market";

const TRANSFER_TOPIC = toEventSelector("Transfer(address,address,uint256)");

function clientOf(url: string): PublicClient {
  return createPublicClient({ transport: httpTransport(url, { timeout: 2_000 }) }) as PublicClient;
}

/** No real waiting in tests: backoff is checked by its formula, not by the clock. */
const noWait: Pick<LoadChainHistoryParameters, "sleep"> = { sleep: async () => {} };

/** The parts of a history two loads must agree on. */
function essence(history: ChainHistory) {
  return {
    chainId: history.chainId,
    tollgate: history.tollgate,
    credits: history.credits,
    paymentToken: history.paymentToken,
    deployBlock: history.deployBlock,
    auditBlock: history.auditBlock,
    logs: history.logs,
    blockTimes: [...history.blockTimes].sort(([a], [b]) => (a < b ? -1 : 1)),
    batches: [...history.batches].sort(([a], [b]) => (a < b ? -1 : 1)),
  };
}

describe("loadChainHistory", function () {
  let market: SettledMarket;
  let rpc: RpcServer;
  let proxy: Proxy;
  let direct: Awaited<ReturnType<typeof loadChainHistory>>;

  before(async function () {
    market = await settledMarket();
    rpc = await startRpcServer(hre.network.provider);
    proxy = await startProxy(rpc.url);
    direct = await loadChainHistory(clientOf(rpc.url), { tollgate: market.tollgate, deployBlock: market.deployBlock });
  });

  after(async function () {
    await proxy?.close();
    await rpc?.close();
  });

  beforeEach(function () {
    proxy.reset();
  });

  it("gathers every log in chain order, each block's time, and each batch from its calldata or its event", async function () {
    const history = direct;
    const client = clientOf(rpc.url);
    expect(history.tollgate).to.equal(market.tollgate);
    expect(history.credits).to.equal(await market.market.tollgate.credits());
    expect(history.paymentToken).to.equal(await market.market.token.getAddress());
    expect(history.auditBlock).to.equal(await client.getBlockNumber());
    expect(history.deployBlock).to.equal(market.deployBlock);
    for (let i = 1; i < history.logs.length; i++) {
      const [p, q] = [history.logs[i - 1], history.logs[i]];
      expect(p.blockNumber < q.blockNumber || (p.blockNumber === q.blockNumber && p.logIndex < q.logIndex), `log ${i} in order`).to.equal(true);
    }
    // Every log of Tollgate and its credits token, and every payment-token transfer in or out, and no other.
    const everything = await client.getLogs({ fromBlock: market.deployBlock, toBlock: history.auditBlock });
    const token = history.paymentToken.toLowerCase();
    const ours = everything.filter(
      (log) =>
        [history.tollgate, history.credits].includes(ethers.getAddress(log.address) as Address) ||
        (log.address.toLowerCase() === token &&
          log.topics[0] === TRANSFER_TOPIC &&
          [log.topics[1], log.topics[2]].some((topic) => topic && BigInt(topic) === BigInt(history.tollgate))),
    );
    expect(history.logs.map((log) => `${log.blockNumber}:${log.logIndex}`)).to.deep.equal(ours.map((log) => `${log.blockNumber}:${log.logIndex}`));
    expect(history.logs.some((log) => log.address === history.paymentToken)).to.equal(true);
    for (const log of history.logs) {
      const block = await client.getBlock({ blockNumber: log.blockNumber });
      expect(history.blockTimes.get(log.blockNumber)).to.equal(Number(block.timestamp));
    }
    const settledLogs = history.logs.filter((log) => log.topics[0] === BATCH_SETTLED_TOPIC);
    expect(settledLogs.map((log) => log.transactionHash)).to.deep.equal(market.settlements.map((s) => s.hash));
    expect(history.batches.size).to.equal(3);
    for (const [i, log] of settledLogs.entries()) {
      const source = history.batches.get(batchKey(log))!;
      // The relayed batch from BatchDataPublished, the direct ones from their transaction's calldata.
      expect(source.kind).to.equal(market.settlements[i].relayed ? "event" : "calldata");
      if (source.kind === "unavailable") throw new Error(source.reason);
      expect(source.batch.firstSequence).to.equal(BigInt(i * 5));
    }
    // One block read per block holding a batch that needed calldata: two direct batches, two blocks.
    expect(history.stats.requestsByMethod.eth_getBlockByNumber).to.be.greaterThanOrEqual(2);
    expect(history.stats.requestsByMethod.eth_getTransactionByHash ?? 0).to.equal(0);
  });

  it("takes block times from the logs when the node adds them, reading only the blocks whose calldata it needs", async function () {
    proxy.reset({ blockTimestamps: true });
    const history = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock });
    expect(essence(history)).to.deep.equal(essence(direct));
    // The audit block when pinned and when checked at the end, and the two blocks of directly sent batches.
    expect(proxy.requests.eth_getBlockByNumber).to.equal(4);
    expect(direct.stats.requestsByMethod.eth_getBlockByNumber).to.be.greaterThan(4);
  });

  it("counts every request it makes, as the provider counts them", async function () {
    const history = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock });
    const served = Object.values(proxy.requests).reduce((sum, n) => sum + n, 0);
    expect(history.stats.requests).to.equal(served);
    expect(history.stats.requestsByMethod).to.deep.equal(proxy.requests);
    // And a counting transport sees the same calls from the outside.
    const counted = countingTransport(httpTransport(proxy.url));
    proxy.reset();
    await loadChainHistory(createPublicClient({ transport: counted.transport }) as PublicClient, { tollgate: market.tollgate, deployBlock: market.deployBlock });
    expect(counted.counter.total).to.equal(Object.values(proxy.requests).reduce((sum, n) => sum + n, 0));
  });

  for (const refusal of ["alchemy", "infura", "quicknode", "ankr", "http413"] as const) {
    it(`narrows its log ranges to what a provider accepts (${refusal}'s refusal) and gets the same history`, async function () {
      proxy.reset({ maxLogRange: 4n, refusal });
      const notices: string[] = [];
      const history = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock }, { maxRange: 64n, onNotice: (n) => notices.push(n) });
      expect(essence(history)).to.deep.equal(essence(direct));
      expect(history.stats.rangeShrinks).to.be.greaterThan(0);
      expect(notices.some((n) => n.includes("refused"))).to.equal(true);
      // Every answered range is within the provider's limit, and together they cover the history without overlap.
      const ranges = proxy.servedLogRanges;
      for (const [from, to] of ranges) expect(to - from + 1n).to.be.at.most(4n);
      const starts = [...new Set(ranges.map(([from]) => from))].sort((x, y) => (x < y ? -1 : 1));
      expect(starts[0]).to.equal(market.deployBlock);
      // It grows back after successes: it kept asking for as much as the provider allows, not one block at a time.
      expect(ranges.filter(([from, to]) => to - from + 1n === 4n).length).to.be.greaterThan(ranges.length / 2);
    });
  }

  it("retries rate limits, server errors and dropped connections with backoff, and gets the same history", async function () {
    proxy.reset({ faults: ["429", "503", "reset", "429", "429", "503"] });
    const waits: number[] = [];
    const history = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock }, { sleep: async (ms) => void waits.push(ms) });
    expect(essence(history)).to.deep.equal(essence(direct));
    expect(history.stats.retries).to.equal(6);
    expect(waits).to.have.length(6);
  });

  it("takes a log query that times out as a range too wide, and narrows it instead of retrying it", async function () {
    proxy.reset({ faults: ["stall"], faultsOn: "eth_getLogs" });
    const impatient = createPublicClient({ transport: httpTransport(proxy.url, { timeout: STALL_MS / 4 }) }) as PublicClient;
    const history = await loadChainHistory(impatient, { tollgate: market.tollgate, deployBlock: market.deployBlock }, { ...noWait, maxRange: 64n });
    expect(essence(history)).to.deep.equal(essence(direct));
    expect(history.stats.rangeShrinks).to.equal(1);
    expect(history.stats.retries).to.equal(0);
  });

  it("backs off exponentially with jitter, capped", function () {
    const policy = { retries: 5, baseDelayMs: 100, maxDelayMs: 1_000 };
    expect([0, 1, 2, 3, 4].map((attempt) => backoffDelay(attempt, policy, () => 0))).to.deep.equal([50, 100, 200, 400, 500]);
    expect([0, 1, 2, 3, 4].map((attempt) => backoffDelay(attempt, policy, () => 0.999999))).to.deep.equal([100, 200, 400, 800, 1_000]);
  });

  it("gives up after a bounded number of retries with an error naming the range and what to do", async function () {
    proxy.reset({ faults: Array<Fault>(50).fill("503"), faultsOn: "eth_getLogs" });
    const error = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock }, { ...noWait, retry: { retries: 3 } }).catch((e) => e);
    expect(error).to.be.instanceOf(ChainHistoryLoadError);
    expect(error.message).to.match(/^eth_getLogs for blocks \d+-\d+ still failed after 4 attempts: /);
    expect(error.hint).to.match(/run again|another RPC/);
    proxy.reset({ maxLogRange: 4n, faults: [], failAfterLogRequests: 0 });
    const ranged = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock }, noWait).catch((e) => e);
    expect(ranged).to.be.instanceOf(ChainHistoryLoadError);
    expect(ranged.message).to.match(/eth_getLogs for blocks \d+-\d+ failed/);
  });

  it("classifies the refusals and failures of common providers", function () {
    const range = [
      { code: -32602, message: ALCHEMY_TOO_LARGE(16n, 4n) },
      { code: -32005, message: "query returned more than 10000 results" },
      { code: -32614, message: "eth_getLogs is limited to a 10000 range" },
      { code: -32600, message: "block range is too wide" },
      { code: -32000, message: "exceed maximum block range: 50000" },
      { code: -32000, message: "Log response size exceeded." },
      { code: -32001, message: "limit exceeded" },
      { status: 413, message: "HTTP request failed." },
    ];
    const transient = [
      { status: 429, message: "HTTP request failed." },
      { code: -32005, message: "daily request count exceeded, request rate limited" },
      { status: 502, message: "Bad Gateway" },
      { name: "TimeoutError", message: "The request took too long to respond." },
      { message: "fetch failed", cause: { code: "ECONNRESET", message: "read ECONNRESET" } },
      { code: -32000, message: "header not found" },
    ];
    for (const error of range) expect(classifyRpcError(error).kind, error.message).to.equal("range");
    for (const error of transient) expect(classifyRpcError(error).kind, error.message).to.equal("transient");
    expect(classifyRpcError({ code: -32602, message: "invalid argument 0: hex string without 0x prefix" }).kind).to.equal("fatal");
    expect(classifyRpcError({ code: -32602, message: ALCHEMY_TOO_LARGE(16n, 4n) }).suggestedRange).to.deep.equal({ fromBlock: 16n, toBlock: 19n });
  });

  it("resumes from a checkpoint after a run killed mid-scan, asking only for the blocks it lacked", async function () {
    const checkpoint = memoryCheckpointStore();
    const options = { maxRange: 3n, checkpoint, ...noWait };
    // The provider dies after 4 chunks (3 eth_getLogs a chunk): the run fails, its checkpoint holds what it had.
    proxy.reset({ failAfterLogRequests: 12 });
    const killed = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock }, options).catch((e) => e);
    expect(killed).to.be.instanceOf(ChainHistoryLoadError);
    const saved = checkpoint.current!;
    expect(saved.scannedTo).to.equal(market.deployBlock + 4n * 3n - 1n);
    expect(saved.logs).to.deep.equal(direct.logs.filter((log) => log.blockNumber <= saved.scannedTo));

    proxy.reset();
    const chunks: [bigint, bigint][] = [];
    const resumed = await loadChainHistory(
      clientOf(proxy.url),
      { tollgate: market.tollgate, deployBlock: market.deployBlock },
      { ...options, onProgress: (p) => p.phase === "logs" && chunks.push([p.fromBlock, p.toBlock]) },
    );
    // Progress names what the checkpoint covered, then each chunk in turn, contiguous up to the audit block.
    expect(chunks[0]).to.deep.equal([market.deployBlock, saved.scannedTo]);
    for (let i = 1; i < chunks.length; i++) expect(chunks[i][0]).to.equal(chunks[i - 1][1] + 1n);
    expect(chunks[chunks.length - 1][1]).to.equal(direct.auditBlock);
    expect(essence(resumed)).to.deep.equal(essence(direct));
    expect(resumed.stats.resumedFrom).to.equal(saved.scannedTo + 1n);
    // Only the remainder was asked for: every range starts after the checkpoint, 3 filters per 3-block chunk.
    const remaining = direct.auditBlock - saved.scannedTo;
    expect(proxy.servedLogRanges.every(([from]) => from > saved.scannedTo)).to.equal(true);
    expect(proxy.requests.eth_getLogs).to.equal(3 * Number((remaining + 2n) / 3n));

    // A finished checkpoint: a second run asks for no logs, no block times and no batch calldata again, only
    // the audit block (pinned, then checked at the end).
    expect(checkpoint.current!.batchCalls!.map(([, kind]) => kind)).to.deep.equal(["calldata", "calldata"]);
    proxy.reset();
    const again = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock }, options);
    expect(essence(again)).to.deep.equal(essence(direct));
    expect(proxy.requests.eth_getLogs ?? 0).to.equal(0);
    expect(proxy.requests.eth_getBlockByNumber).to.equal(2);
  });

  it("reuses a longer checkpoint for an audit at an earlier block, asking for no logs", async function () {
    const checkpoint = memoryCheckpointStore();
    const target = { tollgate: market.tollgate, deployBlock: market.deployBlock };
    await loadChainHistory(clientOf(proxy.url), target, { maxRange: 4n, checkpoint });
    const earlier = direct.auditBlock - 6n;
    proxy.reset();
    const again = await loadChainHistory(clientOf(proxy.url), target, { maxRange: 4n, checkpoint, toBlock: earlier });
    expect(proxy.requests.eth_getLogs ?? 0).to.equal(0);
    expect(again.stats.reorg).to.equal(undefined);
    expect(essence(again)).to.deep.equal(essence(await loadChainHistory(clientOf(rpc.url), target, { toBlock: earlier })));
    expect(again.logs.every((log) => log.blockNumber <= earlier)).to.equal(true);
    // And the longer checkpoint is kept, not cut back to the earlier audit.
    expect(checkpoint.current!.scannedTo).to.equal(direct.auditBlock);
  });

  it("finds the deploy block from the chain when it is not given, and says how many requests it took", async function () {
    const history = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate });
    expect(history.deployBlock).to.equal(market.deployBlock);
    expect(essence(history)).to.deep.equal(essence(direct));
    // A binary search: about log2(head) requests, each an eth_getCode (plus the loader's own code check).
    expect(history.stats.deployBlockRequests).to.be.within(1, Math.ceil(Math.log2(Number(history.auditBlock) + 1)) + 2);
    expect(proxy.requests.eth_getCode).to.equal(history.stats.deployBlockRequests + 1);
  });

  it("reports a batch whose data is nowhere as unavailable, with why, and still reads the others", async function () {
    // A provider that loses BatchDataPublished: the relayed batch's transaction went to the relay, not Tollgate.
    proxy.reset({ dropLog: (log) => log.topics[0] === BATCH_DATA_PUBLISHED_TOPIC });
    const history = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock });
    const kinds = history.logs.filter((log) => log.topics[0] === BATCH_SETTLED_TOPIC).map((log) => history.batches.get(batchKey(log))!);
    expect(kinds.map((source) => source.kind)).to.deep.equal(["calldata", "unavailable", "calldata"]);
    const missing = kinds[1];
    if (missing.kind !== "unavailable") throw new Error("expected unavailable");
    expect(missing.reason).to.include(market.relay);
    expect(missing.reason).to.include("not Tollgate");
    expect(missing.reason).to.include("call traces were not tried");

    // Asked to, the loader tries a call trace; Hardhat's node has only its default tracer, and the reason says so.
    proxy.reset({ dropLog: (log) => log.topics[0] === BATCH_DATA_PUBLISHED_TOPIC });
    const traced = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock }, { traces: true });
    const relayed = traced.batches.get(batchKey(history.logs.filter((log) => log.topics[0] === BATCH_SETTLED_TOPIC)[1]))!;
    if (relayed.kind !== "unavailable") throw new Error(`expected unavailable, got ${relayed.kind}`);
    expect(relayed.reason, relayed.reason).to.match(/the node gave no call trace \(.*default tracer/);
    expect(proxy.requests.debug_traceTransaction).to.equal(1);
  });

  it("reports a BatchSettled log that does not decode as unavailable instead of failing the load", async function () {
    proxy.reset({ editLog: (log) => void (log.topics[0] === BATCH_SETTLED_TOPIC && (log.data = "0x1234")) });
    const history = await loadChainHistory(clientOf(proxy.url), { tollgate: market.tollgate, deployBlock: market.deployBlock });
    const sources = history.logs.filter((log) => log.topics[0] === BATCH_SETTLED_TOPIC).map((log) => history.batches.get(batchKey(log))!);
    expect(sources).to.have.length(3);
    for (const source of sources) {
      expect(source.kind).to.equal("unavailable");
      if (source.kind === "unavailable") expect(source.reason).to.contain("does not decode");
    }
  });

  it("reads the contracts' state at the audit block, not at the head", async function () {
    const [a] = market.market.buyers;
    const before = direct.auditBlock;
    const state = rpcStateReader(clientOf(rpc.url), direct);
    const then = await state.account(a.address as Address);
    await deposit(market.market.clientOf(a.address as Address), { amount: USD(1) });
    expect(await state.account(a.address as Address)).to.deep.equal(then);
    expect(await state.vaultTokens()).to.equal(await market.market.token.balanceOf(market.tollgate, { blockTag: Number(before) }));
    expect(await state.earnings(Number(market.market.providerId))).to.equal(await market.market.tollgate.earningsOf(market.market.providerId, { blockTag: Number(before) }));
    expect(await state.protocolFees()).to.equal(await market.market.tollgate.protocolFeesAccrued({ blockTag: Number(before) }));
    expect(await state.signerNextSequence(market.market.gateway.address)).to.equal(15n);
    expect(await state.credits(market.market.buyers[1].address as Address, 1n)).to.equal(await (await ethers.getContractAt("TollgateCredits", direct.credits)).balanceOf(market.market.buyers[1].address, 1n, { blockTag: Number(before) }));
    const now = rpcStateReader(clientOf(rpc.url), { ...direct, auditBlock: BigInt(await ethers.provider.getBlockNumber()) });
    expect((await now.account(a.address as Address)).balance).to.equal(then.balance + USD(1));
    expect(state.requests).to.equal(7);
  });

  it("notices a reorganisation between runs and steps back past it", async function () {
    const snapshot = await hre.network.provider.send("evm_snapshot", []);
    const checkpoint = memoryCheckpointStore();
    const target = { tollgate: market.tollgate, deployBlock: market.deployBlock };
    const [, , c] = market.market.buyers;
    await deposit(market.market.clientOf(c.address as Address), { amount: USD(7) });
    await hre.network.provider.send("hardhat_mine", ["0x3"]);
    const first = await loadChainHistory(clientOf(rpc.url), target, { maxRange: 4n, checkpoint });
    // The chain forgets those blocks and grows others in their place: a different deposit, more blocks.
    await hre.network.provider.send("evm_revert", [snapshot]);
    await deposit(market.market.clientOf(c.address as Address), { amount: USD(9) });
    await hre.network.provider.send("hardhat_mine", ["0x6"]);
    const notices: string[] = [];
    const second = await loadChainHistory(clientOf(rpc.url), target, { maxRange: 4n, checkpoint, onNotice: (n) => notices.push(n) });
    expect(second.stats.reorg, "reorg reported").to.not.equal(undefined);
    expect(second.stats.reorg!.resumedFrom).to.be.at.most(first.auditBlock);
    expect(second.stats.reorg!.checkpointScannedTo).to.equal(first.auditBlock);
    expect(notices.some((n) => n.includes("reorganisation"))).to.equal(true);
    expect(essence(second)).to.deep.equal(essence(await loadChainHistory(clientOf(rpc.url), target)));
    const deposits = (history: ChainHistory) => history.logs.filter((log) => log.address === history.tollgate).length;
    expect(deposits(second)).to.equal(deposits(first));
  });
});
