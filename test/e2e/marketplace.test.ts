/**
 * The whole marketplace as `npm run demo` runs it (scripts/marketplace.ts): Ignition deployment, provider,
 * buyer, the simulated upstream, the gateway over HTTP, the oracle, the real `openai` client. Then DESIGN.md's
 * invariants 1-4, checked against chain state and the usage store rather than against anything the
 * marketplace reports about itself:
 *
 *   1. conservation of the vault's tokens, after the flow and after every kind of money leaving it;
 *   2. one record per answered call, each settled once, in contiguous batches, each receipt in its batch's root;
 *   3. no charge past a key's cap, and every charge at the price in force when the call was served;
 *   4. failed and rejected calls cost nothing; an abandoned stream costs what was delivered.
 *
 * The cases share one marketplace and run in order: later ones count on the records earlier ones made. They run
 * twice, on two kinds of chain: Hardhat's in-process network (the demo's default), and Anvil as its own process,
 * which the marketplace reaches only by RPC URL and a deployer key, as it would any EVM chain (Ignition deploys
 * through `scripts/deploy.ts --network rpc`; the gateway and the oracle read and send over HTTP). What a test
 * does to the chain's clock goes through `run.devChain`, the same calls on both nodes.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { decodeFunctionData, encodeFunctionData, getAddress, parseEventLogs, parseUnits, type Address, type Hex, type PrivateKeyAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  auditDeployment,
  collectProtocolFees,
  conservationCheckOf,
  createApiKey,
  depositWithPermit,
  executeWithdrawal,
  mintTestTokens,
  parseReceiptHeader,
  requestWithdrawal,
  scheduleModelPrice,
  withdrawEarnings,
  type AuditedBatch,
  type ConservationCheck,
  type ReceiptEnvelope,
} from "../../client";
import { DEFAULT_PROVIDER_BOND, runMarketplace, type MarketplaceOptions, type MarketplaceRun } from "../../scripts/marketplace";
import { testUsdAbi, tollgateAbi } from "../../server/chain/abis";
import { merkleProof } from "../../server/chain/merkle";
import { recordCost } from "../../server/chain/pricing";
import { usageReceiptOf } from "../../server/chain/receipt-envelope";
import { commitmentPrefix, type UsageBatch } from "../../server/chain/usage-batch";
import { decodeRevertData, revertOf } from "../../server/chain/revert";
import type { StoredUsageRecord } from "../../server/store/usage-store";
import { createOpenAICompatibleUpstream } from "../../server/upstream/openai-compatible";
import { countTokens, startSimulatedUpstream, type SimulatedUpstream } from "../../server/upstream/simulated-upstream";
import { UpstreamError, type UpstreamAdapter } from "../../server/upstream/types";
import { startAnvil } from "../helpers/anvil";

const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** A chain the marketplace runs on: what `runMarketplace` is told about it, and how to take it down afterwards. */
interface ChainUnderTest {
  name: string;
  start(): Promise<{ chain: MarketplaceOptions["chain"]; stop(): Promise<void> }>;
}

const CHAINS: ChainUnderTest[] = [
  { name: "Hardhat's in-process network", start: async () => ({ chain: undefined, stop: async () => {} }) },
  {
    name: "Anvil, reached by RPC URL and deployer key",
    start: async () => {
      const anvil = await startAnvil();
      const ignitionDeploymentId = `test-e2e-${process.pid}-${Date.now()}`;
      return {
        chain: { rpcUrl: anvil.url, deployerKey: anvil.keys[0], ignitionDeploymentId },
        stop: async () => {
          await anvil.stop();
          fs.rmSync(path.join(REPO_ROOT, "ignition", "deployments", ignitionDeploymentId), { recursive: true, force: true });
        },
      };
    },
  },
];

/** Failure modes of the simulated upstream (its `x-simulate-failure` header) the gateway can be pointed at, one call at a time. */
type Fault = "500" | "reset" | "midstream";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}

/**
 * A slow model: each event of `events` becomes available `paceMs` after the previous one was taken. As with a
 * real upstream, a gateway that aborts (its client went away) while waiting gets an abort error, not the event.
 */
async function* paced(events: AsyncIterable<string>, paceMs: number, signal: AbortSignal): AsyncGenerator<string> {
  const iterator = events[Symbol.asyncIterator]();
  try {
    for (;;) {
      await new Promise<void>((resolve, reject) => {
        const aborted = () => {
          clearTimeout(timer);
          reject(new UpstreamError("the client went away", undefined, "aborted"));
        };
        const timer = setTimeout(() => {
          signal.removeEventListener("abort", aborted);
          resolve();
        }, paceMs);
        if (signal.aborted) aborted();
        else signal.addEventListener("abort", aborted, { once: true });
      });
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await iterator.return?.();
  }
}

for (const target of CHAINS) describeMarketplace(target);

function describeMarketplace(target: ChainUnderTest): void {
  describe(`marketplace end to end on ${target.name}: scripts/marketplace.ts against DESIGN invariants 1-4`, function () {
    this.timeout(240_000);

    let stopChain: (() => Promise<void>) | undefined;

    let run: MarketplaceRun;
    let faultServer: SimulatedUpstream;
    const faultAdapters = new Map<Fault, UpstreamAdapter>();
    /** The next upstream call goes to this failure mode instead of the healthy simulator. */
    let nextFault: Fault | undefined;
    /** The next streamed upstream answer arrives one event per this many milliseconds, as from a slow model. */
    let nextPaceMs: number | undefined;
    let dir: string;
    /** Every call that came back with a response and its receipt: the flow's and this test's. */
    const answered: { sequence: bigint; receiptHash: Hex }[] = [];
    /** Sequences of streams the client abandoned: served in part, recorded, never handed a receipt. */
    const abandoned: bigint[] = [];
    /** Records served before and after the scheduled price change took effect. */
    const priceChange: { before: bigint[]; after: bigint[]; effectiveFrom: number } = { before: [], after: [], effectiveFrom: 0 };

    const store = () => run.gateway.ctx.store;
    const amountOf = (value: string) => parseUnits(value, run.token.decimals);

    async function chat(client: OpenAI, model: string, maxTokens: number, content = "How are usage records settled?"): Promise<ReceiptEnvelope> {
      const { response } = await client.chat.completions.create({ model, messages: [{ role: "user", content }], max_tokens: maxTokens }).withResponse();
      const header = response.headers.get("x-tollgate-receipt");
      expect(header, "a metered answer carries its receipt").to.be.a("string");
      const envelope = parseReceiptHeader(header!);
      answered.push({ sequence: BigInt(envelope.receipt.sequence), receiptHash: envelope.receiptHash });
      return envelope;
    }

    async function keySpent(buyer: Address, keyId: string): Promise<bigint> {
      const key = store().listApiKeys(buyer).find((candidate) => candidate.id === keyId);
      expect(key, `key ${keyId}`).to.not.equal(undefined);
      return key!.spent;
    }

    /** The chain audit of the whole deployment: clean, and the vault holding exactly what it owes. */
    async function conserved(): Promise<ConservationCheck> {
      const audit = await auditDeployment(run.client, run.deployment);
      expect(audit.findings.map((finding) => `${finding.code}: ${finding.message}`), "chain audit findings").to.deep.equal([]);
      const check = conservationCheckOf(audit);
      expect(check.held, "vault tokens == balances + pending withdrawals + earnings + fees").to.equal(check.owed);
      expect(check.conserved).to.equal(true);
      return check;
    }

    before(async function () {
      const started = await target.start();
      stopChain = started.stop;
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-e2e-"));
      faultServer = await startSimulatedUpstream();
      for (const fault of ["500", "reset", "midstream"] as const) {
        faultAdapters.set(fault, createOpenAICompatibleUpstream({ name: `faulty-${fault}`, baseUrl: faultServer.url, timeoutMs: 10_000, extraHeaders: { "x-simulate-failure": fault } }));
      }
      run = await runMarketplace({
        rpcPort: 0,
        gatewayPort: 0,
        dataDir: dir,
        deploymentFile: path.join(dir, "deployment.json"),
        calls: 6,
        chain: started.chain,
        log: () => {},
        logLevel: "silent",
        // A short notice, so a price change can take effect while the test watches.
        deploy: { priceNoticeSeconds: 5n },
        wrapUpstream: (healthy) => ({
          name: healthy.name,
          async send(request) {
            const fault = nextFault;
            const paceMs = nextPaceMs;
            nextFault = nextPaceMs = undefined;
            if (fault) return faultAdapters.get(fault)!.send(request);
            const answer = await healthy.send(request);
            if (paceMs === undefined || answer.kind !== "stream") return answer;
            return { ...answer, events: paced(answer.events, paceMs, request.signal) };
          },
          async close() {
            await healthy.close();
            await Promise.all([...faultAdapters.values()].map((adapter) => adapter.close()));
          },
        }),
      });
      for (const call of run.calls) answered.push({ sequence: call.sequence, receiptHash: call.receipt.receiptHash });
    });

    after(async function () {
      await run?.close();
      await faultServer?.close();
      await stopChain?.();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("runs the flow: deposit with permit, credits, a wallet-signed key, streamed and plain calls, settlement, a clean audit", async function () {
      const { summary } = run;
      expect(run.calls).to.have.length(6);
      expect(summary.streamed).to.equal(2);
      expect(summary.models.map((model) => model.calls)).to.deep.equal([3, 3]);
      expect(summary.audit.problems).to.deep.equal([]);
      expect(summary.audit.records).to.equal(6);
      expect(summary.totalCost).to.be.greaterThan(0n);
      // small-model usage came out of credits, large-model usage out of the balance.
      expect(summary.paidWithCredits).to.equal(summary.models[0].cost);
      expect(summary.paidFromBalance).to.equal(summary.models[1].cost);
      expect(summary.buyerBefore.balance - summary.buyerAfter.balance).to.equal(summary.paidFromBalance);
      expect(summary.buyerAfter.credits).to.be.lessThan(summary.buyerBefore.credits);
      expect(summary.protocolFeesAfter).to.be.greaterThan(summary.protocolFeesBefore);
      expect(JSON.parse(fs.readFileSync(run.deploymentFile, "utf8")).tollgate).to.equal(run.deployment.tollgate);
      const check = await conserved();
      expect(check.buyers).to.equal(1);
      // The vault holds the buyer's 25 tUSD deposit and the provider's bond.
      expect(check.bonds).to.equal(amountOf(DEFAULT_PROVIDER_BOND));
      expect(check.held).to.equal(amountOf("25") + check.bonds);
    });

    it("invariant 4: a call the upstream fails (error status, reset, broken stream) costs nothing and leaves no record", async function () {
      const client = run.openai(run.apiKey.key);
      const records = store().recordCount();
      const nextSequence = store().nextSequence();
      const spent = await keySpent(run.buyer.address, run.apiKey.id);

      for (const fault of ["500", "reset"] as const) {
        nextFault = fault;
        const failure = await client.chat.completions.create({ model: "large-model", messages: [{ role: "user", content: `fail with ${fault}` }], max_tokens: 64 }).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure, `upstream ${fault}`).to.be.instanceOf(OpenAI.APIError);
        expect((failure as InstanceType<typeof OpenAI.APIError>).status, `upstream ${fault}`).to.equal(502);
        expect(store().recordCount(), `records after upstream ${fault}`).to.equal(records);
      }

      nextFault = "midstream";
      const stream = await client.chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "break halfway" }], max_tokens: 200, stream: true });
      let chunks = 0;
      const broken = await (async () => {
        for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) chunks++;
      })().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(chunks, "the stream delivered part of an answer before it broke").to.be.greaterThan(0);
      expect(broken, "the client learns the stream failed").to.be.instanceOf(Error);
      expect(store().recordCount()).to.equal(records);
      expect(await keySpent(run.buyer.address, run.apiKey.id)).to.equal(spent);
      expect(faultServer.stats().requests).to.equal(3);

      // The faults were one-offs: the next call is served and metered, with the sequence number no failure took.
      const served = await chat(client, "small-model", 16);
      expect(BigInt(served.receipt.sequence)).to.equal(nextSequence);
      expect(store().recordCount()).to.equal(records + 1);
    });

    it("invariant 4: a rejected call (unknown model, over the key's cap) costs nothing and leaves no record", async function () {
      const records = store().recordCount();
      const unknown = await run
        .openai(run.apiKey.key)
        .chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }], max_tokens: 16 })
        .then(() => undefined, (error: unknown) => error);
      expect(unknown).to.be.instanceOf(OpenAI.APIError);
      expect((unknown as InstanceType<typeof OpenAI.APIError>).status).to.equal(404);

      const capped = await createApiKey(await run.as(run.buyer), { label: "tiny cap", spendCap: 100n });
      const overCap = await run
        .openai(capped.key)
        .chat.completions.create({ model: "large-model", messages: [{ role: "user", content: "a long answer please" }], max_tokens: 500 })
        .then(() => undefined, (error: unknown) => error);
      expect(overCap).to.be.instanceOf(OpenAI.APIError);
      expect((overCap as InstanceType<typeof OpenAI.APIError>).status).to.equal(402);
      expect((overCap as InstanceType<typeof OpenAI.APIError>).code).to.equal("key_spend_cap_reached");

      expect(store().recordCount()).to.equal(records);
      expect(await keySpent(run.buyer.address, capped.id)).to.equal(0n);
    });

    it("invariant 4: a stream the client abandons is charged for the tokens it received, and no more", async function () {
      const client = run.openai(run.apiKey.key);
      const sequence = store().nextSequence();
      const maxTokens = 400;
      // Chunks far enough apart that the client is gone well before the model produces the next one.
      nextPaceMs = 100;
      const stream = await client.chat.completions.create({
        model: "small-model",
        messages: [{ role: "user", content: "Tell me a long story about a ledger." }],
        max_tokens: maxTokens,
        stream: true,
      });
      let received = "";
      let contentChunks = 0;
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta?.content;
        if (!text) continue;
        received += text;
        // Leaving the loop aborts the request: the client has read six tokens' worth of chunks and goes away.
        if (++contentChunks === 6) break;
      }
      await until("the abandoned stream's record", () => store().nextSequence() > sequence);
      const record = store().recordBySequence(sequence)!;
      abandoned.push(sequence);
      expect(record.streamed).to.equal(true);
      expect(record.completed).to.equal(false);
      expect(record.outputTokens).to.equal(countTokens(received));
      expect(record.outputTokens).to.be.greaterThan(0);
      expect(record.outputTokens).to.be.lessThan(maxTokens);
      const prices = { input: record.inputPrice, cachedInput: record.cachedInputPrice, output: record.outputPrice };
      expect(record.cost).to.equal(recordCost(record, prices));
    });

    it("invariant 3: a key with a spend cap is refused before it is charged past its cap", async function () {
      // A second buyer, so settlement and conservation deal with more than one account.
      const secondKey = generatePrivateKey();
      const second = privateKeyToAccount(secondKey);
      const asSecond = await run.as(secondKey, "second buyer");
      await mintTestTokens(asSecond, { amount: amountOf("1") });
      await depositWithPermit(asSecond, { amount: amountOf("1") });
      const cap = amountOf("0.005");
      const key = await createApiKey(asSecond, { label: "capped", spendCap: cap, tags: ["team:capped"] });
      const client = run.openai(key.key);
      let served = 0;
      let refusal: InstanceType<typeof OpenAI.APIError> | undefined;
      for (let i = 0; i < 30 && !refusal; i++) {
        try {
          await chat(client, "large-model", 100, `question ${i} for the capped key`);
          served++;
        } catch (error) {
          if (!(error instanceof OpenAI.APIError)) throw error;
          refusal = error;
        }
      }
      expect(served, "calls served under the cap").to.be.greaterThan(1);
      expect(refusal?.status).to.equal(402);
      expect(refusal?.code).to.equal("key_spend_cap_reached");
      const charged = store()
        .recordsOf(second.address, { keyId: key.id })
        .reduce((sum, record) => sum + record.cost, 0n);
      expect(store().recordsOf(second.address, { keyId: key.id })).to.have.length(served);
      expect(charged).to.be.greaterThan(0n);
      expect(charged).to.be.at.most(cap);
      expect(await keySpent(second.address, key.id)).to.equal(charged);
    });

    it("invariant 3: a price change scheduled mid-run applies only to calls served once it is in force", async function () {
      const small = run.models.find((model) => model.name === "small-model")!;
      const newPrices = { input: small.prices.input * 3n, cachedInput: small.prices.cachedInput * 3n, output: small.prices.output * 3n };
      const scheduled = await scheduleModelPrice(await run.as(run.provider), { modelId: small.modelId, prices: newPrices });
      priceChange.effectiveFrom = Number(scheduled.effectiveFrom);
      await run.gateway.ctx.state.refresh();
      const client = run.openai(run.apiKey.key);

      for (let i = 0; i < 2; i++) {
        const receipt = await chat(client, "small-model", 32, `before the change ${i}`);
        expect(Number(receipt.receipt.servedAt)).to.be.lessThan(priceChange.effectiveFrom);
        expect(BigInt(receipt.receipt.outputPrice)).to.equal(small.prices.output);
        priceChange.before.push(BigInt(receipt.receipt.sequence));
      }
      await until(
        "the new price to take effect",
        async () => {
          // The gateway tells the time by the latest block when the chain runs ahead of the wall clock (earlier
          // tests in this process may have fast-forwarded it), and an idle development chain mines no blocks.
          await run.devChain!.mine();
          await run.gateway.ctx.state.refresh();
          return run.gateway.ctx.state.now() >= priceChange.effectiveFrom;
        },
        30_000,
        500,
      );
      for (let i = 0; i < 2; i++) {
        const receipt = await chat(client, "small-model", 32, `after the change ${i}`);
        expect(Number(receipt.receipt.servedAt)).to.be.at.least(priceChange.effectiveFrom);
        expect(BigInt(receipt.receipt.outputPrice)).to.equal(newPrices.output);
        priceChange.after.push(BigInt(receipt.receipt.sequence));
      }
    });

    it("invariants 2 and 3: every answered call has one record, settled once in contiguous batches at the price in force when served", async function () {
      await run.settle();
      const tollgate = run.deployment.tollgate;
      const signer = run.gatewaySigner;
      const count = store().recordCount();
      const records: StoredUsageRecord[] = [];
      for (let sequence = 0n; sequence < BigInt(count); sequence++) {
        const record = store().recordBySequence(sequence);
        expect(record, `record ${sequence}`).to.not.equal(undefined);
        records.push(record!);
      }

      // One record per answered call, and none without one.
      const sequences = answered.map((call) => call.sequence);
      expect(new Set(sequences).size, "receipts name distinct sequences").to.equal(sequences.length);
      for (const call of answered) expect(store().recordBySequence(call.sequence)?.receiptHash, `receipt #${call.sequence}`).to.equal(call.receiptHash);
      expect(count, "records == answered calls + abandoned streams").to.equal(answered.length + abandoned.length);

      // Settled exactly once: the chain's sequence, the events and the store agree, with no gap or repeat.
      const onChain = await run.client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] });
      expect(onChain.nextSequence).to.equal(BigInt(count));
      const events = await run.client.getContractEvents({ address: tollgate, abi: tollgateAbi, eventName: "BatchSettled", args: { signer }, fromBlock: BigInt(run.deployment.deployBlock), strict: true });
      expect(events.length).to.be.greaterThan(1);
      let next = 0n;
      for (const event of events) {
        expect(event.args.firstSequence, "each batch starts where the last one ended").to.equal(next);
        expect(event.args.recordCount).to.be.greaterThan(0n);
        const [storedPrefix, settledAt] = await run.client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "batchCommitmentOf", args: [signer, event.args.firstSequence] });
        expect(storedPrefix).to.equal(commitmentPrefix(event.args.commitment));
        expect(settledAt, "the commitment word keeps the settlement's block time").to.equal(Number((await run.client.getBlock({ blockNumber: event.blockNumber })).timestamp));
        for (let sequence = next; sequence < next + event.args.recordCount; sequence++) {
          expect(records[Number(sequence)].settlement?.txHash, `record ${sequence} settled by its batch`).to.equal(event.transactionHash.toLowerCase());
        }
        next += event.args.recordCount;
      }
      expect(next, "batches cover every record").to.equal(BigInt(count));

      // Each receipt is in its batch's content root, as the contract itself verifies.
      const audit = await auditDeployment(run.client, run.deployment, { signer });
      expect(audit.findings.map((finding) => `${finding.code}: ${finding.message}`)).to.deep.equal([]);
      const batchOf = (sequence: bigint): AuditedBatch => audit.batches.find((batch) => sequence >= batch.firstSequence && sequence < batch.firstSequence + batch.recordCount)!;
      for (const record of records) {
        const batch = batchOf(record.sequence);
        const leaves = records.slice(Number(batch.firstSequence), Number(batch.firstSequence + batch.recordCount)).map((r) => r.receiptHash);
        const proof = merkleProof(leaves, Number(record.sequence - batch.firstSequence));
        const receipt = usageReceiptOf(record);
        expect(await run.client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "verifyReceiptSettled", args: [signer, batch.header, receipt, proof] }), `receipt #${record.sequence}`).to.equal(true);
        const inflated = { ...receipt, cost: receipt.cost + 1n };
        expect(await run.client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "verifyReceiptSettled", args: [signer, batch.header, inflated, proof] }), `inflated receipt #${record.sequence}`).to.equal(false);
      }

      // The honest gateway and oracle cannot be slashed: every receipt they really issued agrees with the record
      // and the leaf they settled, so each fraud proof is refused (simulated, as a buyer's client would first).
      const settledBatches = new Map<bigint, UsageBatch>();
      for (const batch of audit.batches) {
        const tx = await run.client.getTransaction({ hash: batch.txHash });
        const call = decodeFunctionData({ abi: tollgateAbi, data: tx.input });
        expect(call.functionName).to.equal("settleBatch");
        settledBatches.set(batch.firstSequence, (call.args as readonly [UsageBatch, Hex])[0]);
      }
      // A raw eth_call to the node: the in-process one directly (through its JSON-RPC server a reverting call takes
      // ~1 s, and viem would retry Hardhat's revert as an internal error), Anvil over HTTP.
      const refusal = async (functionName: "proveSettledRecordMismatch" | "proveContentMismatch" | "proveEquivocation", args: readonly unknown[]) => {
        const data = encodeFunctionData({ abi: tollgateAbi, functionName, args } as never);
        return run.devChain!.request({ method: "eth_call", params: [{ to: tollgate, data }, "latest"] }).then(
          () => "no revert",
          (error: { data?: Hex | { data?: Hex } }) =>
            revertOf(error)?.name ?? decodeRevertData((typeof error.data === "object" ? error.data?.data : error.data) ?? "0x").name,
        );
      };
      for (const record of records) {
        const audited = batchOf(record.sequence);
        const leaves = records.slice(Number(audited.firstSequence), Number(audited.firstSequence + audited.recordCount)).map((r) => r.receiptHash);
        const receipt = usageReceiptOf(record);
        const proof = merkleProof(leaves, Number(record.sequence - audited.firstSequence));
        expect(await refusal("proveSettledRecordMismatch", [receipt, record.signature, settledBatches.get(audited.firstSequence)!]), `record #${record.sequence}`).to.equal("DisputeNoDiscrepancy");
        expect(await refusal("proveContentMismatch", [receipt, record.signature, audited.header, receipt, proof]), `leaf #${record.sequence}`).to.equal("DisputeNoDiscrepancy");
        expect(await refusal("proveEquivocation", [receipt, record.signature, receipt, record.signature]), `receipt #${record.sequence}`).to.equal("DisputeNoDiscrepancy");
      }

      // Every charge is the cost at the epoch in force when the call was served, read from the chain.
      const epochsOf = new Map<number, { effectiveFrom: number; input: bigint; cachedInput: bigint; output: bigint }[]>();
      for (const model of run.models) {
        const view = await run.client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "modelOf", args: [model.modelId] });
        const epochs = [];
        for (let index = 0n; index < view.epochCount; index++) {
          epochs.push(await run.client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "priceEpochOf", args: [model.modelId, index] }));
        }
        epochsOf.set(model.modelId, epochs);
      }
      for (const record of records) {
        const epochs = epochsOf.get(record.modelId)!;
        let inForce = -1;
        epochs.forEach((epoch, index) => {
          if (epoch.effectiveFrom <= record.servedAt) inForce = index;
        });
        expect(record.priceEpoch, `record ${record.sequence}'s epoch`).to.equal(inForce);
        expect(record.cost, `record ${record.sequence}'s cost`).to.equal(recordCost(record, epochs[inForce]));
      }
      expect(priceChange.before).to.have.length(2);
      expect(priceChange.after).to.have.length(2);
      for (const sequence of priceChange.before) expect(records[Number(sequence)].priceEpoch, `record ${sequence} before the change`).to.equal(0);
      for (const sequence of priceChange.after) expect(records[Number(sequence)].priceEpoch, `record ${sequence} after the change`).to.equal(1);
    });

    it("invariant 1: the vault holds exactly what it owes as buyers withdraw, the provider takes its earnings and fees are swept", async function () {
      const tollgate = run.deployment.tollgate;
      const token = run.deployment.paymentToken;
      const asBuyer = await run.as(run.buyer);
      const before = await conserved();
      expect(before.buyers).to.equal(2);

      const amount = amountOf("5");
      await requestWithdrawal(asBuyer, { amount });
      const requested = await conserved();
      expect(requested.pendingWithdrawals).to.equal(before.pendingWithdrawals + amount);
      expect(requested.held).to.equal(before.held);

      await run.devChain!.increaseTime(run.deployment.parameters.withdrawalDelaySeconds + 1);
      await run.devChain!.mine();
      const walletBefore = await run.client.readContract({ address: token, abi: testUsdAbi, functionName: "balanceOf", args: [run.buyer.address] });
      await executeWithdrawal(asBuyer);
      const withdrawn = await conserved();
      expect(await run.client.readContract({ address: token, abi: testUsdAbi, functionName: "balanceOf", args: [run.buyer.address] })).to.equal(walletBefore + amount);
      expect(withdrawn.held).to.equal(before.held - amount);
      expect(withdrawn.pendingWithdrawals).to.equal(before.pendingWithdrawals);

      expect(withdrawn.providerEarnings).to.be.greaterThan(0n);
      await withdrawEarnings(await run.as(run.provider), { providerId: run.providerId });
      const paidOut = await conserved();
      expect(paidOut.providerEarnings).to.equal(0n);
      expect(paidOut.held).to.equal(withdrawn.held - withdrawn.providerEarnings);

      expect(paidOut.protocolFees).to.be.greaterThan(0n);
      // Anyone may sweep the fees to the treasury; the buyer does it here.
      await collectProtocolFees(asBuyer);
      const swept = await conserved();
      expect(swept.protocolFees).to.equal(0n);
      expect(swept.held).to.equal(swept.buyerBalances + swept.pendingWithdrawals + swept.bonds);
      expect(swept.bonds).to.equal(amountOf(DEFAULT_PROVIDER_BOND));
      expect(getAddress(run.deployment.parameters.treasury)).to.equal(run.operator);
    });
  });
}
