/**
 * A whole marketplace for gateway tests: contracts on Hardhat's in-process chain, a provider with two
 * chat models and an embeddings model, a credit plan, an authorized gateway key, the simulated upstream,
 * and a gateway listening on a random loopback port, read through the same provider.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre, { ethers } from "hardhat";
import OpenAI from "openai";
import { createPublicClient, custom, getAddress, type Address, type Hex, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { parseGatewayConfig, type GatewayConfig } from "../../server/config";
import { apiKeyMessageTypes, gatewayDomain } from "../../server/gateway/api-keys/wallet-messages";
import { createGateway, type Gateway } from "../../server/gateway/gateway";
import { createOpenAICompatibleUpstream } from "../../server/upstream/openai-compatible";
import { startSimulatedUpstream } from "../../server/upstream/simulated-upstream";
import type { UpstreamRequest } from "../../server/upstream/types";
import { deployMarketplace, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";

export const EMBED_PRICES = { input: 20_000n, cachedInput: 20_000n, output: 0n };
type Signer = Marketplace["buyers"][number];

export interface HarnessOptions {
  /** Extra fields merged into the gateway config file object. */
  config?: Record<string, unknown>;
  simulator?: Parameters<typeof startSimulatedUpstream>[0];
  /** Reuse an existing store directory (restart tests). */
  dir?: string;
}

export interface GatewayHarness {
  market: Marketplace;
  gateway: Gateway;
  url: string;
  sim: Awaited<ReturnType<typeof startSimulatedUpstream>>;
  signerKey: Hex;
  signer: Address;
  dir: string;
  config: GatewayConfig;
  client: PublicClient;
  embedModel: bigint;
  planId: bigint;
  /** The last requests the gateway sent upstream (bodies as sent), newest last. */
  upstreamRequests: UpstreamRequest[];
  deposit(buyer: Signer, amount: bigint): Promise<void>;
  createKey(buyer: Signer, options?: Partial<CreateKeyOptions>): Promise<{ key: string; id: string; body: Record<string, unknown> }>;
  signKeyMessage(buyer: Signer, primaryType: keyof typeof apiKeyMessageTypes, message: Record<string, unknown>): Promise<string>;
  openai(key: string): OpenAI;
  close(): Promise<void>;
}

export interface CreateKeyOptions {
  label: string;
  spendCap: bigint;
  models: string[];
  tags: string[];
  expiresAt: bigint;
}

export function nonce(): Hex {
  return `0x${Buffer.from(ethers.randomBytes(32)).toString("hex")}`;
}

/** A `CreateBudget` message for `buyer`: a daily budget of 1,000,000 base units on `team:support`, no webhook, no degrade. */
export function budgetMessage(buyer: string, overrides: Record<string, unknown> = {}) {
  return {
    buyer,
    label: "",
    scope: "tag",
    target: "team:support",
    period: "day",
    limit: "1000000",
    thresholdsBps: [] as number[],
    webhookUrl: "",
    degradeThresholdBps: 0,
    degradeModel: "",
    issuedAt: String(Math.floor(Date.now() / 1000)),
    nonce: nonce(),
    ...overrides,
  };
}

export function gatewayConfigObject(dir: string, simUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  // Upstreams given in `extra` join the simulated one (whose URL is only known here) rather than replace it.
  const { upstreams, ...rest } = extra as { upstreams?: Record<string, unknown> };
  return {
    chain: { rpcUrl: "http://127.0.0.1:1", deploymentFile: "deployment.json", accountCacheMs: 0, registryRefreshMs: 60_000 },
    providerId: 1,
    store: { path: "usage.sqlite" },
    upstreams: { sim: { baseUrl: simUrl, timeoutMs: 5_000 }, ...upstreams },
    models: [
      { name: "small-model", modelId: 1, upstream: "sim", maxOutputTokens: 512 },
      { name: "large-model", modelId: 2, upstream: "sim", upstreamModel: "large-reasoning", maxOutputTokens: 1024 },
      { name: "embed-model", modelId: 3, kind: "embeddings", upstream: "sim" },
    ],
    limits: { requestsPerMinute: 0 },
    log: { level: "silent" },
    ...rest,
  };
}

export async function startGatewayHarness(options: HarnessOptions = {}): Promise<GatewayHarness> {
  const market = await deployMarketplace();
  const { tollgate, provider } = market;
  await (await tollgate.connect(provider).listModel(market.providerId, "embed-model", EMBED_PRICES)).wait();
  const embedModel = 3n;
  // A plan: 1 USD per credit, worth 1 USD of small-model usage, never expires.
  await (await tollgate.connect(provider).defineCreditPlan(market.providerId, USD(1), USD(1), [market.smallModel], 0)).wait();
  const planId = await tollgate.creditPlanCount();

  const signerKey = generatePrivateKey();
  const signer = privateKeyToAddress(signerKey);
  await (await tollgate.connect(provider).setSignerAuthorization(market.providerId, signer, true)).wait();

  const sim = await startSimulatedUpstream(options.simulator ?? {});
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-gateway-"));
  const tollgateAddress = getAddress(await tollgate.getAddress());
  fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId: Number(market.chainId), tollgate: tollgateAddress }));
  const config = parseGatewayConfig(gatewayConfigObject(dir, sim.url, options.config), { TOLLGATE_GATEWAY_SIGNER_KEY: signerKey }, dir);
  const client = createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
  // The real adapter, recording what the gateway sends so tests can check pass-through and rewriting.
  const upstreamRequests: UpstreamRequest[] = [];
  const adapter = createOpenAICompatibleUpstream({ name: "sim", baseUrl: sim.url, timeoutMs: config.upstreams.sim.timeoutMs });
  const recording = {
    name: adapter.name,
    send(request: UpstreamRequest) {
      upstreamRequests.push(request);
      if (upstreamRequests.length > 100) upstreamRequests.shift();
      return adapter.send(request);
    },
    close: () => adapter.close(),
  };
  const gateway = await createGateway({ config, client, upstreams: { sim: recording } });
  const url = await gateway.listen(0, "127.0.0.1");
  const domain = gatewayDomain(Number(market.chainId), tollgateAddress);

  const signKeyMessage = async (buyer: Signer, primaryType: keyof typeof apiKeyMessageTypes, message: Record<string, unknown>) => {
    const types = { [primaryType]: apiKeyMessageTypes[primaryType].map((field) => ({ ...field })) };
    return buyer.signTypedData(domain as Record<string, unknown>, types, message);
  };

  return {
    market,
    gateway,
    url,
    sim,
    signerKey,
    signer,
    dir,
    config,
    client,
    embedModel,
    planId,
    upstreamRequests,
    async deposit(buyer, amount) {
      await (await tollgate.connect(buyer).deposit(buyer.address, amount)).wait();
    },
    signKeyMessage,
    async createKey(buyer, keyOptions = {}) {
      const message = {
        buyer: buyer.address,
        label: keyOptions.label ?? "test key",
        spendCap: (keyOptions.spendCap ?? 0n).toString(),
        models: keyOptions.models ?? [],
        tags: keyOptions.tags ?? ["team:test"],
        expiresAt: (keyOptions.expiresAt ?? 0n).toString(),
        issuedAt: Math.floor(Date.now() / 1000).toString(),
        nonce: nonce(),
      };
      const signature = await signKeyMessage(buyer, "CreateApiKey", message);
      const response = await fetch(`${url}/v1/keys`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ message, signature }) });
      const body = (await response.json()) as Record<string, unknown>;
      if (response.status !== 201) throw new Error(`creating a key failed: ${response.status} ${JSON.stringify(body)}`);
      return { key: body.key as string, id: body.id as string, body };
    },
    openai(key) {
      return new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
    },
    async close() {
      await gateway.close();
      await sim.close();
    },
  };
}
