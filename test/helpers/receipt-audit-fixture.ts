/**
 * A buyer with a history to audit: a gateway (content retention as asked) on Hardhat's in-process chain,
 * chat calls plain and streamed and an embedding through the real `openai` client, settled by the real
 * oracle in batches of three, then one more call left unsettled. Exports are fetched from the gateway's
 * `GET /v1/usage` as a buyer would; the chain's batches come from `auditSettlements`.
 */
import { type Address, type Hex } from "viem";
import { auditSettlements, type AuditedBatch } from "../../client";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayHarness, type GatewayHarness } from "./gateway-harness";
import { startOracleHarness } from "./oracle-harness";

export interface ReceiptAuditFixture {
  h: GatewayHarness;
  key: string;
  buyer: Address;
  deployment: { chainId: number; tollgate: Address };
  /** Sequences the chain settled, and the one left unsettled. */
  settledCount: number;
  unsettledSequence: bigint;
  exportText(query?: string): Promise<string>;
  batches(): Promise<AuditedBatch[]>;
  close(): Promise<void>;
}

export async function startReceiptAuditFixture(options: { retainContent: boolean; calls?: number }): Promise<ReceiptAuditFixture> {
  const h = await startGatewayHarness({ config: { store: { path: "usage.sqlite", retainContent: options.retainContent } } });
  const buyerSigner = h.market.buyers[0];
  await h.deposit(buyerSigner, USD(50));
  const { key } = await h.createKey(buyerSigner);
  const openai = h.openai(key);
  const calls = options.calls ?? 5;
  for (let i = 0; i < calls; i++) {
    await openai.chat.completions.create({ model: "small-model", messages: [{ role: "user", content: `question ${i}: what is ${i} squared?` }], max_tokens: 24 });
  }
  // A stream (billed from its usage chunk) and an embedding, so both response shapes are exported.
  const stream = await openai.chat.completions.create({ model: "large-model", messages: [{ role: "user", content: "stream a short answer" }], max_tokens: 32, stream: true });
  for await (const chunk of stream) void chunk;
  await openai.embeddings.create({ model: "embed-model", input: ["one sentence to embed", "and another"] });

  const { oracle } = await startOracleHarness(h, { oracle: { batch: { maxRecords: 3, maxAgeMs: 60_000 } } });
  try {
    await oracle.settleAll();
  } finally {
    await oracle.close();
  }
  const settledCount = calls + 2;
  await openai.chat.completions.create({ model: "small-model", messages: [{ role: "user", content: "one more, not settled yet" }], max_tokens: 16 });

  const deployment = { chainId: h.config.chain.deployment.chainId, tollgate: h.config.chain.deployment.tollgate };
  return {
    h,
    key,
    buyer: buyerSigner.address as Address,
    deployment,
    settledCount,
    unsettledSequence: BigInt(settledCount),
    async exportText(query = "") {
      const response = await fetch(`${h.url}/v1/usage?${query}`, { headers: { authorization: `Bearer ${key}` } });
      if (response.status !== 200) throw new Error(`GET /v1/usage?${query}: ${response.status} ${await response.text()}`);
      return response.text();
    },
    async batches() {
      return (await auditSettlements(h.client, { ...deployment }, { signer: h.signer })).batches;
    },
    close: () => h.close(),
  };
}

/** A 32-byte value that is not any hash in play. */
export function otherHash(seed: number): Hex {
  return `0x${seed.toString(16).padStart(64, "0")}`;
}
